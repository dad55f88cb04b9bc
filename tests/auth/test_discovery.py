"""Lazy, self-healing OIDC discovery: background retries with capped backoff, rate-limited on demand.

The state machine runs on a real event loop with a fake fetch and, where timing matters, a fake
clock; the authenticator cases use a real issuer that is started only after the authenticator.
"""

from __future__ import annotations

import asyncio
import logging

import pytest
from oidc_test_issuer import StaticIssuer
from test_id_tokens import authenticator
from tornado import web

from jupyterhub_platform.auth.discovery import DiscoveryUnavailable, LazyDiscovery, retry_delay
from jupyterhub_platform.devcluster.procs import free_port, wait_for
from jupyterhub_platform.testing import CLIENT_ID

ISSUER = "https://idp.example.org"
DOCUMENT = {
    "issuer": ISSUER,
    "authorization_endpoint": f"{ISSUER}/auth",
    "token_endpoint": f"{ISSUER}/token",
    "jwks_uri": f"{ISSUER}/jwks",
}
log = logging.getLogger("test-discovery")


class Provider:
    """A fake fetch: fails while ``down``; counts calls; ``gate`` can hold a call open."""

    def __init__(self, down: bool = True):
        self.down = down
        self.calls = 0
        self.gate: asyncio.Event | None = None

    async def __call__(self, url: str) -> dict:
        self.calls += 1
        assert url == f"{ISSUER}/.well-known/openid-configuration"
        if self.gate is not None:
            await self.gate.wait()
        if self.down:
            raise ConnectionRefusedError(111, "Connection refused")
        return DOCUMENT


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def discovery(provider, **kwargs) -> tuple[LazyDiscovery, list]:
    seen: list = []
    return LazyDiscovery(ISSUER, provider, seen.append, log=log, **kwargs), seen


def test_backoff_doubles_up_to_the_cap():
    assert [retry_delay(n, 1.0, 60.0) for n in (1, 2, 3, 4, 6, 7, 20)] == [1, 2, 4, 8, 32, 60, 60]


async def test_background_retries_until_the_provider_answers():
    provider = Provider(down=True)
    lazy, seen = discovery(provider, retry_initial=0.01, retry_max=0.04)
    lazy.start()
    await wait_for(lambda: provider.calls >= 4, timeout=5, what="four attempts")
    assert lazy.metadata is None and lazy.failures >= 4
    assert "cannot reach the OIDC issuer" in lazy.last_error
    provider.down = False
    await wait_for(lambda: lazy.metadata is not None, timeout=5, what="discovery after recovery")
    assert [m.token_endpoint for m in seen] == [f"{ISSUER}/token"]
    assert lazy.failures == 0 and lazy._retry is None  # no more background attempts


async def test_a_caller_gets_an_attempt_that_started_after_it_asked():
    provider = Provider(down=True)
    lazy, _ = discovery(provider, retry_initial=0.05, retry_max=60)
    with pytest.raises(DiscoveryUnavailable, match="Connection refused"):
        await lazy.current()  # nothing fetched yet: this attempt runs now
    assert provider.calls == 1
    provider.down = False  # back right after a failed attempt: the next login still works
    assert (await lazy.current()).token_endpoint == f"{ISSUER}/token"
    assert provider.calls == 2


async def test_logins_during_an_outage_are_spaced_and_share_attempts():
    provider = Provider(down=True)
    lazy, _ = discovery(provider, retry_initial=0.05, retry_max=60)
    loop = asyncio.get_running_loop()
    began = loop.time()
    for _ in range(3):  # one after the other: an attempt each, retry_initial apart
        with pytest.raises(DiscoveryUnavailable):
            await lazy.current()
    assert provider.calls == 3 and loop.time() - began >= 0.1
    provider.gate = asyncio.Event()
    burst = [asyncio.ensure_future(lazy.current()) for _ in range(5)]
    await wait_for(lambda: provider.calls == 4, timeout=5, what="one attempt for the burst")
    provider.down = False
    provider.gate.set()
    results = await asyncio.gather(*burst)
    assert {m.authorization_endpoint for m in results} == {f"{ISSUER}/auth"}
    assert provider.calls == 4


async def test_a_failed_refresh_keeps_the_last_metadata():
    provider, clock = Provider(down=False), Clock()
    lazy, seen = discovery(provider, ttl=100, clock=clock)
    first = await lazy.current()
    clock.now += 50
    assert await lazy.current() is first and provider.calls == 1  # fresh: not fetched again
    clock.now += 60
    provider.down = True
    assert await lazy.current() is first and provider.calls == 2  # stale: refreshed, failed
    assert await lazy.current() is first and provider.calls == 2  # next refresh after a TTL
    assert len(seen) == 1


async def test_the_authenticator_builds_without_its_provider_and_heals_when_it_comes():
    issuer = StaticIssuer(CLIENT_ID)  # bound, but nothing answers until it is entered: a hung IdP
    auth = authenticator(
        issuer.issuer,
        login_service="Research login",
        discovery_retry_interval=0.05,
        discovery_retry_max_interval=0.2,
        discovery_timeout=0.5,
    )
    assert auth.metadata is None and auth.authorize_url == ""
    with pytest.raises(web.HTTPError) as refused:
        await auth.provider_metadata()
    assert refused.value.status_code == 503
    message = refused.value.log_message % refused.value.args
    assert f"Research login (127.0.0.1:{issuer.port}) cannot be reached right now" in message
    with issuer:
        await wait_for(lambda: auth.metadata is not None, timeout=10, what="background discovery")
        assert auth.authorize_url == f"{issuer.issuer}/authorize"
        assert auth.jwks.url == f"{issuer.issuer}/jwks"
        assert (await auth.provider_metadata()).token_endpoint == f"{issuer.issuer}/token"


async def test_an_inconsistent_issuer_answers_503_and_says_why_in_the_log(caplog):
    with StaticIssuer(CLIENT_ID) as issuer:
        issuer.advertised_issuer = "http://evil.example"
        auth = authenticator(issuer.issuer, discovery_retry_interval=0)
        caplog.set_level(logging.WARNING)
        with pytest.raises(web.HTTPError) as refused:
            await auth.provider_metadata()
        assert refused.value.status_code == 503
        assert "issuer mismatch" in caplog.text and auth.metadata is None


async def test_an_unreachable_issuer_never_blocks_or_fails_construction():
    auth = authenticator(f"http://127.0.0.1:{free_port()}")
    assert auth.discovery.metadata is None  # built at once; discovery runs in the background
