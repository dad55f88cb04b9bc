"""The stand-in's edge: what Cloudflare does in front of a hub published through Access.

It follows the production rule of docs/security.md: the hub's Access application covers the
hub's own path (``/hub``) only, and its ``CF_Authorization`` cookie is scoped to that path (the
application's "path cookie attribute"). There, a browser without a valid cookie gets a sign-in
page (pick a demo user or type an email); signing in sets the cookie, and every request is
forwarded to the upstream (the hub's proxy) with ``Cf-Access-Jwt-Assertion`` set from it,
replacing whatever the client sent, websockets included. Everything else — users' servers under
``/user/`` above all — is outside the application: forwarded with no Access token and no
``CF_Authorization`` cookie, so no one's Access credential reaches another user's server (which
the hub's OAuth protects). Only for local development and tests.
"""

from __future__ import annotations

import asyncio
import html

import aiohttp
from aiohttp import WSMsgType, web
from yarl import URL

from jupyterhub_platform.auth.cloudflare_names import LOGIN_PATH, TOKEN_COOKIE, TOKEN_HEADER

from .state import HUB_APP_PATH, AccessState

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
    }
)


def safe_redirect(target: str) -> str:
    """Only same-site paths: the sign-in form must not become an open redirect."""
    return target if target.startswith("/") and not target.startswith("//") else "/"


def sign_in_page(state: AccessState, redirect: str) -> str:
    buttons = "".join(
        f'<button name="email" value="{html.escape(email)}">{html.escape(email)} '
        f"<small>({html.escape(', '.join(user['groups']) or 'no groups')})</small></button><br>"
        for email, user in state.users.items()
    )
    return (
        "<!doctype html><title>Cloudflare Access (local stand-in)</title>"
        "<h1>Sign in</h1><p>This hub is published through Cloudflare Access; locally, this stand-in "
        "plays Cloudflare. Choose who you are:</p>"
        f'<form method="post" action="{LOGIN_PATH}"><input type="hidden" name="redirect_url" '
        f'value="{html.escape(redirect)}">{buttons}</form>'
        f'<form method="post" action="{LOGIN_PATH}"><input type="hidden" name="redirect_url" '
        f'value="{html.escape(redirect)}"><input name="email" placeholder="someone@example.org">'
        "<button>Sign in</button></form>"
    )


# Encoded or dot segments could make the proxy route a "/hub/..." path to a user's server.
AMBIGUOUS_PATH = ("..", "%2e", "%2f", "%5c", "\\")


def in_hub_application(raw_path: str) -> bool:
    """Whether the hub's Access application covers ``raw_path`` (as sent, before decoding)."""
    if any(part in raw_path.lower() for part in AMBIGUOUS_PATH):
        return False
    return raw_path == HUB_APP_PATH or raw_path.startswith(HUB_APP_PATH + "/")


def without_access_cookie(cookie_header: str) -> str:
    """A ``Cookie`` header minus ``CF_Authorization``."""
    pairs = [p.strip() for p in cookie_header.split(";") if p.strip()]
    return "; ".join(p for p in pairs if p.partition("=")[0].strip() != TOKEN_COOKIE)


def forward_headers(request: web.Request, token: str | None) -> dict[str, str]:
    """The request's headers for the upstream: the client's Access header never passes; inside
    the hub's application the verified ``token`` is added, outside it the cookie is dropped too."""
    headers = {}
    for name, value in request.headers.items():
        lower = name.lower()
        if lower in HOP_BY_HOP or lower == TOKEN_HEADER.lower():
            continue
        if lower == "cookie" and token is None:
            value = without_access_cookie(value)
            if not value:
                continue
        headers[name] = value
    if token is not None:
        headers[TOKEN_HEADER] = token
    return headers


def add_edge_routes(app: web.Application, state: AccessState, upstream: str) -> None:
    upstream = upstream.rstrip("/")

    async def on_startup(app: web.Application) -> None:
        app["client"] = aiohttp.ClientSession(
            auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar()
        )

    async def on_cleanup(app: web.Application) -> None:
        await app["client"].close()

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)

    async def sign_in_form(request: web.Request) -> web.Response:
        redirect = safe_redirect(request.query.get("redirect_url", "/"))
        return web.Response(text=sign_in_page(state, redirect), content_type="text/html")

    async def sign_in(request: web.Request) -> web.Response:
        form = await request.post()
        email = str(form.get("email", "")).strip()
        if "@" not in email:
            raise web.HTTPBadRequest(text="enter an email address")
        response = web.HTTPFound(safe_redirect(str(form.get("redirect_url", "/"))))
        token = state.mint({"email": email})
        response.set_cookie(TOKEN_COOKIE, token, path=HUB_APP_PATH, httponly=True, samesite="Lax")
        raise response

    async def forward(request: web.Request) -> web.StreamResponse:
        token = None
        if in_hub_application(request.rel_url.raw_path):
            token = request.cookies.get(TOKEN_COOKIE, "")
            if state.verify(token) is None:
                if request.method in ("GET", "HEAD"):
                    raise web.HTTPFound(URL(LOGIN_PATH).with_query(redirect_url=request.path_qs))
                raise web.HTTPForbidden(text="Cloudflare Access: sign in first")
        headers = forward_headers(request, token)
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await bridge_websocket(request, app["client"], upstream, headers)
        try:
            return await relay(request, app["client"], upstream, headers)
        except aiohttp.ClientConnectionError as exc:
            raise web.HTTPBadGateway(
                text=f"the hub at {upstream} is not answering ({type(exc).__name__})"
            ) from None

    app.router.add_get(LOGIN_PATH, sign_in_form)
    app.router.add_post(LOGIN_PATH, sign_in)
    app.router.add_route("*", "/{tail:.*}", forward)


async def relay(
    request: web.Request, client: aiohttp.ClientSession, upstream: str, headers: dict[str, str]
) -> web.StreamResponse:
    """Forward one HTTP request and stream the answer back unchanged (redirects included)."""
    body = await request.read()
    async with client.request(
        request.method,
        upstream + request.path_qs,
        headers=headers,
        data=body or None,
        allow_redirects=False,
    ) as answer:
        response = web.StreamResponse(status=answer.status, reason=answer.reason)
        for name, value in answer.headers.items():
            if name.lower() not in HOP_BY_HOP:
                response.headers.add(name, value)
        await response.prepare(request)
        async for chunk in answer.content.iter_any():
            await response.write(chunk)
        await response.write_eof()
        return response


async def bridge_websocket(
    request: web.Request, client: aiohttp.ClientSession, upstream: str, headers: dict[str, str]
) -> web.WebSocketResponse:
    """Relay one websocket between the browser and the upstream, both ways, until either closes."""
    headers = {k: v for k, v in headers.items() if not k.lower().startswith("sec-websocket")}
    protocols = [
        p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()
    ]
    async with client.ws_connect(
        upstream + request.path_qs, headers=headers, protocols=protocols
    ) as inner:
        outer = web.WebSocketResponse(protocols=[inner.protocol] if inner.protocol else ())
        await outer.prepare(request)

        async def pump(source, sink) -> None:
            async for message in source:
                if message.type == WSMsgType.TEXT:
                    await sink.send_str(message.data)
                elif message.type == WSMsgType.BINARY:
                    await sink.send_bytes(message.data)
                else:
                    break
            await sink.close()

        await asyncio.gather(pump(outer, inner), pump(inner, outer))
        return outer
