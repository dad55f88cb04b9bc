"""The stand-in's HTTP side: the team-domain endpoints the authenticator calls, and the
``/_standin/`` control API tests drive it with (off unless a control token is given)."""

from __future__ import annotations

import hmac

from aiohttp import web

from jupyterhub_platform.auth.cloudflare_names import (
    CERTS_PATH,
    GET_IDENTITY_PATH,
    LOGOUT_PATH,
    TOKEN_COOKIE,
)

from .edge import add_edge_routes
from .state import HUB_APP_PATH, AccessState, kids

CONTROL_PREFIX = "/_standin/"


def access_routes(state: AccessState) -> web.RouteTableDef:
    """The team-domain endpoints plus the ``/_standin`` control API."""
    routes = web.RouteTableDef()

    @routes.get(CERTS_PATH)
    async def certs(request: web.Request) -> web.Response:
        state.calls["certs"] += 1
        if state.down["certs"]:
            raise web.HTTPServiceUnavailable(text="certs endpoint down (simulated)")
        return web.json_response({"keys": [k.jwk() for k in state.published]})

    @routes.get(GET_IDENTITY_PATH)
    async def get_identity(request: web.Request) -> web.Response:
        state.calls["identity"] += 1
        if state.down["identity"]:
            raise web.HTTPServiceUnavailable(text="get-identity down (simulated)")
        claims = state.verify(request.cookies.get(TOKEN_COOKIE, ""))
        if claims is None:
            raise web.HTTPBadRequest(text=f"no valid {TOKEN_COOKIE} cookie")
        return web.json_response(state.identity(claims))

    @routes.get(LOGOUT_PATH)
    async def logout(request: web.Request) -> web.Response:
        response = web.Response(
            text="<!doctype html><title>Signed out</title><p>You are signed out of Cloudflare Access "
            '(local stand-in). <a href="/">Sign in again</a></p>',
            content_type="text/html",
        )
        response.del_cookie(TOKEN_COOKIE, path=HUB_APP_PATH)
        return response

    @routes.post("/_standin/tokens")
    async def mint(request: web.Request) -> web.Response:
        return web.json_response({"token": state.mint(await request.json())})

    @routes.post("/_standin/rotate")
    async def rotate(request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else {}
        state.rotate(keep_previous=body.get("keep_previous", True))
        return web.json_response(kids(state))

    @routes.post("/_standin/retire-previous")
    async def retire(request: web.Request) -> web.Response:
        state.previous = None  # the overlap window ended
        return web.json_response(kids(state))

    @routes.put("/_standin/users/{email}")
    async def put_user(request: web.Request) -> web.Response:
        body = await request.json()
        state.set_user(
            request.match_info["email"], list(body.get("groups", [])), body.get("identity")
        )
        return web.Response(status=204)

    @routes.put("/_standin/outage")
    async def outage(request: web.Request) -> web.Response:
        state.down.update(
            {k: bool(v) for k, v in (await request.json()).items() if k in state.down}
        )
        return web.json_response(state.down)

    @routes.get("/_standin/stats")
    async def stats(request: web.Request) -> web.Response:
        return web.json_response({"calls": state.calls, **kids(state)})

    return routes


def control_guard(control_token: str | None):
    """Middleware: ``/_standin/*`` needs ``Authorization: Bearer <token>`` and JSON bodies."""

    @web.middleware
    async def guard(request: web.Request, handler):
        if not request.path.startswith(CONTROL_PREFIX):
            return await handler(request)
        if control_token is None:
            raise web.HTTPNotFound(text="the control API is off (no --control-token-file)")
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {control_token}".encode()):
            raise web.HTTPUnauthorized(
                text="the control API needs its bearer token",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if request.can_read_body and request.content_type != "application/json":
            raise web.HTTPUnsupportedMediaType(text="the control API takes application/json bodies")
        return await handler(request)

    return guard


def make_app(
    state: AccessState, upstream: str | None = None, control_token: str | None = None
) -> web.Application:
    app = web.Application(middlewares=[control_guard(control_token)])
    app.add_routes(access_routes(state))
    if upstream:
        add_edge_routes(app, state, upstream)
    return app
