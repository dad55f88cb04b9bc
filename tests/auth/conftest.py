"""Fixtures: a real OIDC provider process and real hubs + proxies logging in through it.

The hubs here are plain ``jupyterhub`` processes from :mod:`jupyterhub_platform.testing` (the
authenticator under test and the shipped policy, behind a real configurable-http-proxy) that
never spawn, so no cluster is needed; tests that need the whole platform on the stock chart use
the e2e ``platform`` fixture instead (``test_cloudflare_platform.py``). These fixtures start
processes: tests using them carry the ``processes`` marker (``tests/process_audit.py``).
"""

from __future__ import annotations

import asyncio

import pytest
import pytest_asyncio

from jupyterhub_platform.testing import Hub, Provider, oidc_settings, start_hub


@pytest.fixture
async def provider(tmp_path):
    p = Provider(tmp_path)
    await p.start()
    yield p
    await p.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def shared_provider(tmp_path_factory):
    """One provider for a module's tests that neither stop nor restart it; ``reset_claims``
    (``shared_hubs``) gives each test its users as the provider started with them."""
    p = Provider(tmp_path_factory.mktemp("provider"))
    await p.start()
    yield p
    await p.stop()


@pytest.fixture
async def hubs(tmp_path):
    """``await hubs(name, settings_for[, port])`` starts a hub + proxy; all are stopped afterwards."""
    started: list[Hub] = []

    async def start(name: str, settings_for, port: int | None = None) -> Hub:
        directory = tmp_path / name
        directory.mkdir()
        started.append(await start_hub(directory, settings_for, port))
        return started[-1]

    yield start
    await asyncio.gather(*(h.stop() for h in started))


@pytest.fixture
def hub_factory(hubs):
    """Hubs running ``platform-oidc`` against ``provider`` (extra authenticator settings)."""

    async def make(provider: Provider, name: str = "hub", **authenticator) -> Hub:
        return await hubs(name, lambda url: oidc_settings(provider, url, **authenticator))

    return make
