"""The stand-in's edge: sign-in, header injection (websockets too), and the whole chain to a hub."""

from __future__ import annotations

import aiohttp
import cloudflare_fixtures as fixtures
import pytest
from aiohttp import web
from cloudflare_fixtures import make_authenticator
from yarl import URL

from jupyterhub_platform.auth.cloudflare import TOKEN_COOKIE, TOKEN_HEADER
from jupyterhub_platform.devcluster.procs import free_port
from jupyterhub_platform.testing import CloudflareStandIn

pytestmark = pytest.mark.processes  # the stand-in's edge and an upstream server

cf_hub_factory = fixtures.cf_hub_factory


@pytest.fixture
async def upstream():
    """A real HTTP server that reports the Access header and cookies it received (HTTP, websocket)."""

    async def echo(request: web.Request) -> web.Response:
        seen = {"token": request.headers.get(TOKEN_HEADER), "path": request.path_qs}
        return web.json_response({**seen, "cookies": dict(request.cookies)})

    async def ws(request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        await socket.send_str(request.headers.get(TOKEN_HEADER, ""))
        async for message in socket:
            await socket.send_str(f"echo:{message.data}")
        return socket

    app = web.Application()
    app.router.add_get("/hub/ws", ws)
    app.router.add_get("/user/alice/ws", ws)
    app.router.add_route("*", "/{tail:.*}", echo)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


@pytest.fixture
async def edge(tmp_path, upstream):
    standin = CloudflareStandIn(tmp_path / "edge", upstream=upstream)
    await standin.start()
    yield standin
    await standin.stop()


def browser() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def sign_in(
    session: aiohttp.ClientSession, edge: CloudflareStandIn, email: str, redirect: str
) -> str:
    form = {"email": email, "redirect_url": redirect}
    async with session.post(
        f"{edge.url}/cdn-cgi/access/login", data=form, allow_redirects=False
    ) as r:
        assert r.status == 302, await r.text()
        return r.headers["Location"]


async def test_sign_in_then_forward_with_the_header(edge):
    auth = make_authenticator(edge)
    async with browser() as session:
        async with session.get(f"{edge.url}/hub/page?x=1", allow_redirects=False) as r:
            assert r.status == 302
            login = URL(r.headers["Location"])
            assert (login.path, login.query["redirect_url"]) == (
                "/cdn-cgi/access/login",
                "/hub/page?x=1",
            )
        async with session.get(f"{edge.url}{r.headers['Location']}") as r:
            page = await r.text()
            assert "alice@example.org" in page and "platform-admins" in page
        assert await sign_in(session, edge, "alice@example.org", "/hub/page?x=1") == "/hub/page?x=1"
        assert await sign_in(session, edge, "alice@example.org", "//evil.example/") == "/"

        forged = await edge.mint(email="bob@example.org")
        async with session.post(
            f"{edge.url}/hub/echo?y=2", headers={TOKEN_HEADER: forged}, data=b"body"
        ) as r:
            seen = await r.json()
        assert (
            seen["path"] == "/hub/echo?y=2" and seen["token"] != forged
        )  # the client's header is replaced
        assert (await auth.verify_token(seen["token"]))["email"] == "alice@example.org"

        async with session.ws_connect(f"{edge.url}/hub/ws") as socket:
            token = (await socket.receive()).data
            assert (await auth.verify_token(token))["email"] == "alice@example.org"
            await socket.send_str("ping")
            assert (await socket.receive()).data == "echo:ping"

        async with session.get(f"{edge.url}/cdn-cgi/access/logout") as r:
            assert r.status == 200 and "signed out" in (await r.text())
        assert not any(c.key == TOKEN_COOKIE and c.value for c in session.cookie_jar)
        async with session.post(f"{edge.url}/hub/echo") as r:
            assert r.status == 403


async def test_no_access_credential_reaches_paths_outside_the_hub_application(edge):
    """Users' servers live under /user/: nobody's Access token or cookie may reach them."""
    async with browser() as session:
        await sign_in(session, edge, "bob@example.org", "/hub/home")
        cookie = next(c for c in session.cookie_jar if c.key == TOKEN_COOKIE)
        assert cookie["path"] == "/hub"  # the application's path cookie attribute
        bobs = cookie.value
        # Even a CF_Authorization cookie with path "/" (an older session) and a header sent by
        # the client itself are dropped outside the hub's application; other cookies pass.
        session.cookie_jar.update_cookies(
            {TOKEN_COOKIE: bobs, "jupyterhub-user-alice": "c"}, URL(f"{edge.url}/")
        )
        for path in ("/user/alice/proxy/8000/", "/", "/hub/%2e%2e/user/alice/", "/hubx/"):
            async with session.get(f"{edge.url}{path}", headers={TOKEN_HEADER: bobs}) as r:
                seen = await r.json()
            assert seen["token"] is None and TOKEN_COOKIE not in seen["cookies"], (path, seen)
        assert seen["cookies"]["jupyterhub-user-alice"] == "c"
        async with session.ws_connect(
            f"{edge.url}/user/alice/ws", headers={TOKEN_HEADER: bobs}
        ) as socket:
            assert (await socket.receive()).data == ""
        async with session.get(f"{edge.url}/hub/echo") as r:
            assert (await r.json())["token"] == bobs  # the hub's own path still gets it


async def test_whole_chain_edge_proxy_hub(tmp_path, cf_hub_factory):
    edge = CloudflareStandIn(tmp_path / "edge")  # its port is fixed now; the hub needs it first
    hub = await cf_hub_factory(edge)
    edge.upstream = hub.url
    await edge.start()
    try:
        async with browser() as session:
            async with session.get(f"{edge.url}/hub/home", allow_redirects=False) as r:
                assert r.status == 302 and "/cdn-cgi/access/login" in r.headers["Location"]
            await sign_in(session, edge, "bob@example.org", "/hub/home")
            async with session.get(f"{edge.url}/hub/home") as r:
                assert r.status == 200 and str(r.url) == f"{edge.url}/hub/home"
            async with session.get(f"{edge.url}/hub/api/user") as r:
                assert (await r.json())["name"] == "bob@example.org"
        direct = await hub.page(hub.browser(), "/hub/home")  # the hub itself, bypassing the edge
        assert direct.status == 302
        assert (await hub.api("/users/bob@example.org"))["admin"] is True
    finally:
        await edge.stop()
