"""The platform-oidc authenticator in a real hub behind a real proxy, against a real provider.

Most tests share the module's provider and one hub (``hub``: fresh for each test, see
``shared_hubs``); the two that stop or restart the provider have a provider and a hub of their own.
"""

from __future__ import annotations

import re

import pytest
import pytest_asyncio
from shared_hubs import fresh, reset_claims

from jupyterhub_platform.auth.subject_binding import BINDING_KEY
from jupyterhub_platform.devcluster.procs import wait_for
from jupyterhub_platform.testing import Provider, oidc_settings, start_hub

pytestmark = [pytest.mark.processes, pytest.mark.asyncio(loop_scope="session")]

JWT = re.compile(r"eyJ[\w-]+\.eyJ[\w-]+\.")


@pytest.fixture
def provider(shared_provider):
    """The module's provider, for the tests that neither stop nor restart it."""
    return shared_provider


@pytest_asyncio.fixture(loop_scope="session")
async def own_provider(tmp_path):
    """A provider of the test's own, to stop or restart."""
    p = Provider(tmp_path)
    await p.start()
    yield p
    await p.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def shared_hub(shared_provider, tmp_path_factory):
    """The shared tests' hub; RP-initiated logout on (only ``test_rp_initiated_logout`` logs out)."""

    def settings(url: str) -> dict:
        return oidc_settings(shared_provider, url, end_session_redirect=True)

    hub = await start_hub(tmp_path_factory.mktemp("hub"), settings)
    yield hub
    await hub.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def hub(shared_hub, shared_provider):
    """The shared hub without users, its log from this test on; the provider's users as at its
    start."""
    await reset_claims(shared_provider)
    async with fresh(shared_hub) as view:
        yield view


def role_names(model: dict) -> set[str]:
    return set(model.get("roles", []))


async def test_alice_bob_carol(provider, hub):
    async with hub.browser() as alice:
        status, _ = await hub.login(alice, "alice")
        assert status == 302
        model = await hub.api("/users/alice")
        assert model["admin"] is False
        assert model["groups"] == ["researchers"]
        assert role_names(model) == {"user"}
        home = await hub.page(alice, "/hub/home")
        assert home.status == 200

    async with hub.browser() as bob:
        status, _ = await hub.login(bob, "bob")
        assert status == 302
        model = await hub.api("/users/bob")
        assert model["admin"] is True
        assert sorted(model["groups"]) == ["platform-admins", "researchers"]
        assert role_names(model) == {"user", "admin", "platform-operators"}
        roles = hub.roles_in_db()  # load_managed_roles defined every policy role at start-up
        assert roles["platform-operators"] == ["read:users", "read:servers", "read:metrics"]
        assert "admin:servers!group=students" in roles["instructors"]

    async with hub.browser() as carol:
        status, body = await hub.login(carol, "carol")
        assert status == 403
        assert "not in any group that may use this hub" in body
        assert "Traceback" not in body
        assert "Refusing carol: no group allowed to log in" in hub.log()
        users = {u["name"] for u in await hub.api("/users")}
        assert "carol" not in users

        await provider.set_groups("carol", ["researchers"])  # granted at the provider
        status, _ = await hub.login(carol, "carol")
        assert status == 302
        assert (await hub.api("/users/carol"))["groups"] == ["researchers"]
    assert not JWT.search(hub.log())  # no ID token ever reaches the log


async def test_refresh_revokes_admin_and_access(provider, hub):
    async with hub.browser() as bob:
        assert (await hub.login(bob, "bob"))[0] == 302
        assert (await hub.api("/users/bob"))["admin"] is True

        await provider.set_groups("bob", ["/researchers"])  # removed from platform-admins

        async def admin_revoked() -> bool:
            await hub.page(bob, "/hub/home")  # a request of bob's drives the refresh
            model = await hub.api("/users/bob")
            return not model["admin"] and role_names(model) == {"user"}

        await wait_for(admin_revoked, timeout=20, interval=0.3, what="bob's admin revoked")
        assert (await hub.api("/users/bob"))["groups"] == ["researchers"]

        await provider.set_groups("bob", ["visitors"])  # removed from every allowed group

        async def logged_out() -> bool:
            return (await hub.page(bob, "/hub/home")).status == 302

        await wait_for(logged_out, timeout=20, interval=0.3, what="bob sent back to login")
        status, body = await hub.login(bob, "bob")
        assert status == 403 and "not in any group" in body
    assert "Traceback" not in hub.log()  # a failed refresh is a clean "log in again"


async def test_a_refresh_without_an_id_token_keeps_the_logins(provider, hub):
    """Credential providers forward the ID token from auth_state: a refresh response without
    one (oidc-provider-mock 0.3, Google) must not lose it."""
    async with hub.browser() as alice:
        assert (await hub.login(alice, "alice"))[0] == 302
        first = (await hub.api("/users/alice"))["auth_state"]
        assert first["id_token"]

        async def refreshed() -> bool:
            await hub.page(alice, "/hub/home")
            state = (await hub.api("/users/alice"))["auth_state"]
            return state["access_token"] != first["access_token"]

        await wait_for(refreshed, timeout=20, interval=0.3, what="alice's tokens refreshed")
        assert (await hub.api("/users/alice"))["auth_state"]["id_token"]


async def test_revoked_refresh_token_forces_new_login(provider, hub):
    async with hub.browser() as alice:
        assert (await hub.login(alice, "alice"))[0] == 302
        await provider.revoke_tokens("alice")

        async def sent_to_login() -> bool:
            r = await hub.page(alice, "/hub/home")
            return r.status == 302 and "login" in r.headers["Location"]

        await wait_for(sent_to_login, timeout=20, interval=0.3, what="alice asked to log in again")
        assert "Refresh for alice refused" in hub.log()
        assert (await hub.login(alice, "alice"))[0] == 302
    assert "Traceback" not in hub.log()


async def test_provider_down(own_provider, hub_factory):
    provider = own_provider
    hub = await hub_factory(provider)
    async with hub.browser() as bob, hub.browser() as alice:
        assert (await hub.login(bob, "bob"))[0] == 302
        callback = await hub.start_login(alice, "alice")  # alice is mid-login when it goes down
        await provider.stop()

        async def bob_still_works() -> bool:
            r = await hub.page(bob, "/hub/home")
            return r.status == 200 and "provider unavailable" in hub.log()

        await wait_for(
            bob_still_works, timeout=20, interval=0.3, what="refresh attempted while down"
        )
        assert (await hub.api("/users/bob"))["admin"] is True

        status, body = await hub.finish_login(alice, callback)
        assert status == 503
        assert "is not reachable right now" in body
        assert "Traceback" not in body

        await provider.start()  # back up: logins work again (with the provider's new key)
        assert (await hub.login(alice, "alice"))[0] == 302


async def test_key_rotation_accepted_after_refetch(own_provider, hub_factory):
    provider = own_provider
    hub = await hub_factory(provider)
    async with hub.browser() as alice:
        assert (await hub.login(alice, "alice"))[0] == 302
    await provider.restart()  # a new process signs with a new key
    async with hub.browser() as alice:
        assert (await hub.login(alice, "alice"))[0] == 302
    assert hub.log().count("Loaded 1 signing key(s)") == 2


async def test_rp_initiated_logout(provider, hub):
    async with hub.browser() as alice:
        assert (await hub.login(alice, "alice"))[0] == 302
        r = await hub.page(alice, "/hub/logout")
        assert r.status == 302
        location = r.headers["Location"]
        assert location.startswith(f"{provider.issuer}/oauth2/end_session?")
        assert "id_token_hint=" in location
        assert "post_logout_redirect_uri=" in location
        async with alice.get(location) as page:  # the provider's logout confirmation
            assert page.status == 200
        assert (await hub.page(alice, "/hub/home")).status == 302  # logged out of the hub
        model = await hub.api("/users/alice")
        # the provider tokens are forgotten; the identity alice is bound to stays
        assert model["auth_state"] == {BINDING_KEY: {"iss": provider.issuer, "sub": "alice"}}
