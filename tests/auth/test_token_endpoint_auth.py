"""The token endpoint's client authentication follows discovery, for the code exchange and refresh.

Against a real oidc-provider-mock that requires registration: each client is registered with one
method and the provider refuses any other, so a hub that sends the secret the wrong way cannot
log in. The provider's discovery lists no ``token_endpoint_auth_methods_supported``, which means
``client_secret_basic`` (RFC 8414) — the method its 0.3.x refresh grant insists on (issue 9).
"""

from __future__ import annotations

import pytest
from oidc_test_issuer import StaticIssuer
from test_id_tokens import authenticator
from tornado import web

from jupyterhub_platform.auth.client_auth import ClientAuthMethodError, choose_method
from jupyterhub_platform.devcluster.procs import free_port, wait_for
from jupyterhub_platform.testing import CLIENT_ID, Provider, oidc_settings

pytestmark = pytest.mark.jh6_only


@pytest.mark.parametrize(
    ("advertised", "forced", "chosen"),
    [
        ((), "", "client_secret_basic"),  # RFC 8414 §2: the default when the list is absent
        (("client_secret_post",), "", "client_secret_post"),
        (
            ("private_key_jwt", "client_secret_post", "client_secret_basic"),
            "",
            "client_secret_basic",
        ),
        (("client_secret_basic",), "client_secret_post", "client_secret_post"),  # the trait wins
    ],
)
def test_method_follows_discovery_unless_forced(advertised, forced, chosen):
    assert choose_method(advertised, forced) == chosen


def test_a_provider_offering_no_usable_method_is_named():
    with pytest.raises(ClientAuthMethodError, match="accepts only private_key_jwt"):
        choose_method(("private_key_jwt", "tls_client_auth"))


@pytest.mark.parametrize(
    ("advertised", "basic"),
    [(None, True), (["client_secret_post"], False), (["client_secret_basic"], True)],
)
async def test_the_authenticator_applies_the_discovered_method(advertised, basic):
    with StaticIssuer(CLIENT_ID) as issuer:
        if advertised is not None:
            issuer.extra_metadata["token_endpoint_auth_methods_supported"] = advertised
        auth = authenticator(issuer.issuer)
        await auth.provider_metadata()  # discovery is lazy: the method is known once it ran
        assert auth.basic_auth is basic
        headers = auth.build_token_info_request_headers()
        refresh = auth.build_refresh_token_request_params("a-refresh-token")
        assert ("Authorization" in headers) is basic
        assert ("client_secret" in refresh) is not basic


async def test_a_provider_without_a_usable_method_fails_discovery_and_logins_get_503():
    with StaticIssuer(CLIENT_ID) as issuer:
        issuer.extra_metadata["token_endpoint_auth_methods_supported"] = ["private_key_jwt"]
        auth = authenticator(issuer.issuer)
        with pytest.raises(web.HTTPError) as refused:
            await auth.provider_metadata()
        assert refused.value.status_code == 503
        assert "accepts only private_key_jwt" in auth.discovery.last_error
        forced = authenticator(issuer.issuer, token_endpoint_auth_method="client_secret_post")
        await forced.provider_metadata()
        assert forced.basic_auth is False


def test_basic_auth_and_unknown_methods_are_start_up_errors():
    with pytest.raises(ValueError, match="basic_auth cannot be used"):
        authenticator("http://127.0.0.1:9", basic_auth=False)
    with pytest.raises(Exception, match="token_endpoint_auth_method"):
        authenticator("http://127.0.0.1:9", token_endpoint_auth_method="client_secret_jwt")


@pytest.fixture
async def registering_provider(tmp_path):
    p = Provider(tmp_path, require_registration=True)
    await p.start()
    yield p
    await p.stop()


async def hub_for_client(provider, hubs, registered_as: str, **traits):
    """A hub whose client is registered at ``provider`` for the ``registered_as`` method."""
    port = free_port()
    callback = f"http://127.0.0.1:{port}/hub/oauth_callback"
    client_id, secret = await provider.register_client(callback, registered_as)
    traits.update(client_id=client_id, client_secret=secret)
    return await hubs(registered_as, lambda url: oidc_settings(provider, url, **traits), port)


async def test_discovered_method_logs_in_and_refreshes(registering_provider, hubs):
    provider = registering_provider
    hub = await hub_for_client(provider, hubs, "client_secret_basic")
    async with hub.browser() as bob:
        assert (await hub.login(bob, "bob"))[0] == 302
        assert (await hub.api("/users/bob"))["admin"] is True
        await provider.set_groups("bob", ["researchers"])

        async def refreshed() -> bool:  # the refresh grant ran, with the same method
            assert (await hub.page(bob, "/hub/home")).status == 200, hub.log()
            return not (await hub.api("/users/bob"))["admin"]

        await wait_for(refreshed, timeout=20, interval=0.3, what="bob's refresh")
    assert "refused" not in hub.log()


async def test_forced_method_is_used_for_the_code_exchange(registering_provider, hubs):
    hub = await hub_for_client(
        registering_provider,
        hubs,
        "client_secret_post",
        token_endpoint_auth_method="client_secret_post",
    )
    async with hub.browser() as alice:
        assert (await hub.login(alice, "alice"))[0] == 302


async def test_a_method_the_provider_does_not_accept_is_refused_cleanly(registering_provider, hubs):
    # registered for the form body, but discovery (no list) means HTTP Basic
    hub = await hub_for_client(registering_provider, hubs, "client_secret_post")
    async with hub.browser() as alice:
        status, body = await hub.login(alice, "alice")
    assert status == 403
    assert "refused this login" in body and "Traceback" not in body
    assert "token request refused: token endpoint answered 401" in hub.log()
