"""The authenticators' HTTP calls under tornado's curl client, which the stock hub config selects.

z2jh's ``jupyterhub_config.py`` runs ``AsyncHTTPClient.configure(CurlAsyncHTTPClient)``: every
AsyncHTTPClient in the hub is then pycurl's, whose failures look different (HTTP 599 instead of
OSError). Each case runs under both clients.
"""

from __future__ import annotations

import pytest
from oidc_test_issuer import StaticIssuer
from test_id_tokens import authenticator
from tornado.httpclient import AsyncHTTPClient

from jupyterhub_platform.auth.cloudflare_get_identity import IdentityUnavailable, fetch_identity
from jupyterhub_platform.auth.discovery import DiscoveryUnavailable
from jupyterhub_platform.auth.jwks import fetch_json
from jupyterhub_platform.devcluster.procs import free_port
from jupyterhub_platform.testing import CLIENT_ID

CLIENTS = {
    "simple": "tornado.simple_httpclient.SimpleAsyncHTTPClient",
    "curl": "tornado.curl_httpclient.CurlAsyncHTTPClient",
}


@pytest.fixture(params=list(CLIENTS))
def http_client(request):
    saved = AsyncHTTPClient._save_configuration()
    AsyncHTTPClient.configure(CLIENTS[request.param])
    yield request.param
    AsyncHTTPClient._restore_configuration(saved)


async def test_discovery_and_id_token_verification(http_client):
    with StaticIssuer(CLIENT_ID) as issuer:
        auth = authenticator(issuer.issuer)
        assert type(auth.http_client).__name__ == CLIENTS[http_client].rsplit(".", 1)[1]
        claims = await auth.verify_id_token(issuer.mint(), nonce="the-nonce")  # discovery + JWKS
        assert claims["sub"] == "alice"
        assert (await fetch_json(f"{issuer.issuer}/jwks"))["keys"][0]["kid"] == issuer.kid


async def test_an_unreachable_provider_is_unavailable_not_an_error(http_client):
    auth = authenticator(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(DiscoveryUnavailable, match="cannot reach the OIDC issuer"):
        await auth.discovery.current()


async def test_cloudflare_get_identity_down_is_unavailable(http_client):
    with pytest.raises(IdentityUnavailable):
        await fetch_identity(f"http://127.0.0.1:{free_port()}", "a-token", timeout=2)
