"""Issue 10 item 6: a hub user is bound to one (issuer, sub); another subject cannot take it over.

Real hub, real proxy, real oidc-provider-mock: subject ``xs2`` presents ``preferred_username:
Alice``, which normalises to the existing user ``alice``.
"""

from __future__ import annotations

import pytest
from oidc_test_issuer import StaticIssuer
from test_id_tokens import authenticator

from jupyterhub_platform.auth.subject_binding import BINDING_KEY, Identity, may_log_in
from jupyterhub_platform.testing import CLIENT_ID, claims


def test_only_the_bound_identity_may_log_in():
    alice = Identity("https://idp.example", "alice")
    assert may_log_in(None, alice)  # first login binds
    assert may_log_in(alice, Identity("https://idp.example", "alice"))
    assert not may_log_in(alice, Identity("https://idp.example", "xs2"))
    assert not may_log_in(alice, Identity("https://other.example", "alice"))
    assert Identity.from_state({"tokens": "..."}) is None
    assert Identity.from_state(None) is None


def test_auth_state_cannot_be_turned_off():
    """The binding (and the refresh token) live in auth_state: without it nothing is bound."""
    with StaticIssuer(CLIENT_ID) as issuer:
        with pytest.raises(ValueError, match="enable_auth_state cannot be turned off"):
            authenticator(issuer.issuer, enable_auth_state=False)


async def test_a_second_subject_is_refused_until_an_admin_rebinds(provider, hub_factory):
    hub = await hub_factory(provider)
    xs2 = {**claims("xs2", ["researchers", "platform-admins"]), "preferred_username": "Alice"}
    await provider.set_claims("xs2", xs2)

    async with hub.browser() as browser:
        assert (await hub.login(browser, "alice"))[0] == 302
    bound = (await hub.api("/users/alice"))["auth_state"][BINDING_KEY]
    assert bound == {"iss": provider.issuer, "sub": "alice"}

    async with hub.browser() as browser:
        status, body = await hub.login(browser, "xs2")
        assert status == 403
        assert "belongs to another account at the identity provider" in body
        assert (await hub.page(browser, "/hub/home")).status == 302  # no session was made
    assert "Refusing login as alice: it is bound to subject 'alice'" in hub.log()
    alice = await hub.api("/users/alice")
    assert alice["admin"] is False and alice["groups"] == ["researchers"]  # xs2's not applied
    assert alice["auth_state"][BINDING_KEY]["sub"] == "alice"

    # The documented admin action: clear the user's auth_state; the next login binds afresh.
    await hub.api("/users/alice", method="PATCH", body={"auth_state": {}})
    async with hub.browser() as browser:
        assert (await hub.login(browser, "xs2"))[0] == 302
    assert (await hub.api("/users/alice"))["auth_state"][BINDING_KEY]["sub"] == "xs2"
    async with hub.browser() as browser:
        assert (await hub.login(browser, "alice"))[0] == 403  # now the first subject is refused
