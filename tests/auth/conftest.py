"""Fixtures: a real OIDC provider process and real hubs + proxies logging in through it.

Until the e2e harness's ``platform`` fixture exists, the hub here is a plain ``jupyterhub``
process with the ``platform-oidc`` authenticator and the shipped example policy, behind a real
configurable-http-proxy; no spawning happens, so no cluster is needed.
"""

from __future__ import annotations

import asyncio

import pytest

from jupyterhub_platform.auth.harness import Hub, Provider, oidc_settings, start_hub


@pytest.fixture
async def provider(tmp_path):
    p = Provider(tmp_path)
    await p.start()
    yield p
    await p.stop()


@pytest.fixture
async def hub_factory(tmp_path):
    """Start hubs (with extra authenticator settings); stops them and their proxy afterwards."""
    hubs: list[Hub] = []

    async def make(provider: Provider, name: str = "hub", **authenticator) -> Hub:
        directory = tmp_path / name
        directory.mkdir()
        hub = await start_hub(
            directory, lambda url: oidc_settings(provider, url, **authenticator)
        )
        hubs.append(hub)
        return hub

    yield make
    await asyncio.gather(*(h.stop() for h in hubs))
