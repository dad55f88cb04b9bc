"""cloudflare-access in a real hub behind a real proxy, with the stand-in as Cloudflare.

All tests share the module's stand-in (reset for each test); the tests that can share a hub
configuration share a hub (``hub``: fresh for each test, see ``shared_hubs``), the others have a
hub of their own.
"""

from __future__ import annotations

import aiohttp
import cloudflare_fixtures as fixtures
import pytest
import pytest_asyncio
from cloudflare_fixtures import Browser, cloudflare_settings, reset_standin
from shared_hubs import fresh

from jupyterhub_platform.auth.cloudflare import TOKEN_COOKIE, TOKEN_HEADER
from jupyterhub_platform.devcluster.procs import wait_for
from jupyterhub_platform.testing import start_hub

pytestmark = [pytest.mark.processes, pytest.mark.asyncio(loop_scope="session")]

shared_cloudflare = fixtures.shared_cloudflare
cf_hub_factory = fixtures.cf_hub_factory

ACCESS_PAGE = "reached through Cloudflare Access"
SHARED_TRAITS = {"identity_cache_ttl": 1}
"""The shared hub's: identities re-read after a second (group changes and outages show quickly),
the default leeway."""


@pytest_asyncio.fixture(loop_scope="session")
async def cloudflare(shared_cloudflare):
    """The module's stand-in, without outages, its users in their demo groups."""
    await reset_standin(shared_cloudflare)
    yield shared_cloudflare
    await reset_standin(shared_cloudflare)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def shared_hub(shared_cloudflare, tmp_path_factory):
    def settings(url: str) -> dict:
        return cloudflare_settings(shared_cloudflare, **SHARED_TRAITS)

    hub = await start_hub(tmp_path_factory.mktemp("hub"), settings)
    yield hub
    await hub.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def hub(shared_hub, cloudflare):
    """The shared hub (:data:`SHARED_TRAITS`) without users, its log from this test on."""
    async with fresh(shared_hub) as view:
        yield view


async def test_login_from_header_policy_and_refusals(cloudflare, hub):

    async with Browser(hub, await cloudflare.mint(email="alice@example.org")) as alice:
        status, _, r = await alice.get("/hub/home")
        assert status == 200 and len(r.history) == 2  # /hub/home -> /hub/login -> /hub/home
        model = await hub.api("/users/alice@example.org")
        assert (model["admin"], model["groups"]) == (False, ["researchers"])

        await cloudflare.set_user("alice@example.org", ["platform-admins"])  # granted upstream

        async def promoted() -> bool:
            await alice.get("/hub/home")  # the next request re-reads the (expired) identity
            return (await hub.api("/users/alice@example.org"))["admin"]

        await wait_for(promoted, timeout=15, interval=0.3, what="alice made admin")

    async with Browser(hub, await cloudflare.mint(email="bob@example.org")) as bob:
        assert (await bob.get("/hub/home"))[0] == 200
        model = await hub.api("/users/bob@example.org")
        assert model["admin"] is True
        assert set(model["roles"]) == {"user", "admin", "platform-operators"}

    async with Browser(hub, await cloudflare.mint(email="carol@example.org")) as carol:
        status, body, _ = await carol.get("/hub/home")
        assert status == 403 and "not in any group that may use this hub" in body

    async with Browser(hub) as nobody:  # no token: a 403 page, not a redirect loop
        status, body, r = await nobody.get("/hub/home")
        assert status == 403 and ACCESS_PAGE in body and "no Cf-Access-Jwt-Assertion header" in body
        assert len(r.history) == 1

    async with Browser(hub) as cookie_only:  # the cookie is ignored unless enabled
        cookie = {TOKEN_COOKIE: await cloudflare.mint(email="alice@example.org")}
        status, body, _ = await cookie_only.get("/hub/home", cookies=cookie)
        assert status == 403 and ACCESS_PAGE in body

    async with Browser(hub, await cloudflare.mint(email="alice@example.org", ttl=-120)) as expired:
        status, body, _ = await expired.get("/hub/home")
        assert status == 403 and "token expired" in body and "Traceback" not in body

    # Expired 10 s ago: inside the hub's leeway, but get-identity refuses it. Not a 503 outage page.
    async with Browser(
        hub, await cloudflare.mint(email="carol@example.org", iat_offset=-100, ttl=90)
    ) as late:
        status, body, _ = await late.get("/hub/home")
        assert status == 403 and "token expired" in body and ACCESS_PAGE in body

    async with Browser(
        hub, await cloudflare.mint(email="alice@example.org", key="unpublished")
    ) as forged:
        status, body, _ = await forged.get("/hub/home")
        assert status == 403 and "signing key not in the provider" in body

    users = {u["name"] for u in await hub.api("/users")}
    assert users == {"alice@example.org", "bob@example.org"}
    assert "Cloudflare Access login refused: token expired" in hub.log()
    assert "Traceback" not in hub.log()


async def test_identity_switch_logout_and_lost_token(cloudflare, hub):
    alice_token = await cloudflare.mint(email="alice@example.org")
    bob_token = await cloudflare.mint(email="bob@example.org")

    async with Browser(hub, alice_token) as browser:
        assert (await browser.get("/hub/home"))[0] == 200
        status, body, _ = await browser.get("/hub/api/user")  # cookie-authenticated
        assert status == 200 and '"alice@example.org"' in body

        # Same browser, alice's hub cookie, but Access now vouches for bob.
        browser.token = bob_token
        status, body, _ = await browser.get("/hub/api/user")
        assert status == 403 and "alice" not in body  # the API never answers as alice
        status, _, r = await browser.get("/hub/home")  # a page logs bob in instead
        assert status == 200 and "/hub/login" in str(r.history[0].headers["Location"])
        assert '"bob@example.org"' in (await browser.get("/hub/api/user"))[1]
        assert "carries bob@example.org's Access token" in hub.log()

        # The token disappears (request not through Access): the session is not honoured.
        browser.token = None
        status, body, _ = await browser.get("/hub/home")
        assert status == 403 and ACCESS_PAGE in body

        browser.token = bob_token
        status, _, r = await browser.get("/hub/logout", follow=False)
        assert status == 302 and r.headers["Location"] == f"{cloudflare.url}/cdn-cgi/access/logout"
        assert not any(
            c.key == "jupyterhub-hub-login" and c.value for c in browser.session.cookie_jar
        )
    assert "Traceback" not in hub.log()  # dropped sessions are not errors (JupyterHub 6.1 quirk)


async def test_cookie_and_service_tokens_when_enabled(cloudflare, cf_hub_factory):
    hub = await cf_hub_factory(
        cloudflare,
        accept_cookie=True,
        allow_service_tokens=True,
        service_tokens={"ci-client.access": {"name": "ci-bot", "groups": ["researchers"]}},
        username_from_email="local-part",
    )
    async with Browser(hub) as browser:
        cookie = {TOKEN_COOKIE: await cloudflare.mint(email="alice@example.org")}
        status, _, _ = await browser.get("/hub/home", cookies=cookie)
        assert status == 200
        assert (await hub.api("/users/alice"))["groups"] == ["researchers"]

    async with Browser(hub, await cloudflare.mint(common_name="ci-client.access")) as bot:
        assert (await bot.get("/hub/home"))[0] == 200
        assert (await hub.api("/users/ci-bot"))["groups"] == ["researchers"]

    async with Browser(hub, await cloudflare.mint(common_name="stranger.access")) as stranger:
        status, body, _ = await stranger.get("/hub/home")
        assert status == 403 and "stranger.access" in body and "is not mapped to a hub user" in body


async def _api_token(browser: Browser, name: str) -> str:
    """An API token ``name`` makes for themselves, as the token page does (cookie + XSRF)."""
    await browser.get("/hub/token")
    xsrf = next(c.value for c in browser.session.cookie_jar if c.key == "_xsrf")
    url = f"{browser.hub.url}/hub/api/users/{name}/tokens"
    headers = {TOKEN_HEADER: browser.token, "X-XSRFToken": xsrf}
    async with browser.session.post(url, json={"note": "automation"}, headers=headers) as r:
        assert r.status == 201, await r.text()
        return (await r.json())["token"]


async def _status_with(hub, api_token: str, path: str = "/hub/api/users") -> int:
    """A token-authenticated request from outside any browser: no Access header, no cookie."""
    async with aiohttp.ClientSession() as s:
        async with s.get(hub.url + path, headers={"Authorization": f"token {api_token}"}) as r:
            return r.status


async def test_api_tokens_follow_the_owners_access_identity(cloudflare, cf_hub_factory):
    hub = await cf_hub_factory(cloudflare, identity_cache_ttl=1, leeway=0.0)
    async with Browser(hub, await cloudflare.mint(email="bob@example.org")) as bob:
        assert (await bob.get("/hub/home"))[0] == 200
        bobs_token = await _api_token(bob, "bob@example.org")
    assert await _status_with(hub, bobs_token) == 200  # admin: may list users

    await cloudflare.set_user("bob@example.org", [])  # removed from every group at the IdP

    async def refused() -> bool:
        return await _status_with(hub, bobs_token) == 403

    await wait_for(refused, timeout=15, interval=0.3, what="bob's API token refused")
    assert "Refusing bob@example.org's API token: no longer in a group allowed" in hub.log()

    # The kept Access token expires: the hub can no longer re-check, so it refuses (fail closed).
    async with Browser(hub, await cloudflare.mint(email="alice@example.org", ttl=4)) as alice:
        assert (await alice.get("/hub/home"))[0] == 200
        alices_token = await _api_token(alice, "alice@example.org")
    assert await _status_with(hub, alices_token, "/hub/api/user") == 200

    async def stale() -> bool:
        return await _status_with(hub, alices_token, "/hub/api/user") == 403

    await wait_for(stale, timeout=15, interval=0.5, what="alice's API token refused after expiry")
    assert "Refusing alice@example.org's API token: token expired" in hub.log()
    assert "Traceback" not in hub.log()


async def test_an_outage_refuses_requests_but_keeps_the_session(cloudflare, hub):
    """Cloudflare unreachable: no request is honoured unchecked, but nobody is logged out."""
    async with Browser(hub, await cloudflare.mint(email="alice@example.org")) as alice:
        assert (await alice.get("/hub/home"))[0] == 200
        await cloudflare.outage(identity=True)

        async def refused() -> bool:
            return (await alice.get("/hub/api/user"))[0] == 403

        await wait_for(
            refused, timeout=10, interval=0.3, what="a request refused during the outage"
        )
        await cloudflare.outage(identity=False)
        status, body, _ = await alice.get("/hub/api/user")  # the same session, no new login
        assert status == 200 and '"alice@example.org"' in body
    assert "Cannot re-check alice@example.org's hub session: get-identity unavailable" in hub.log()
    assert "alice@example.org's hub session ends" not in hub.log()
