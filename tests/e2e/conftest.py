"""End-to-end fixtures: one local platform per test session, and a browser-like hub user.

Everything is real: JupyterHub, configurable-http-proxy, the OIDC provider, the emulator and the
process kubelet. :class:`hub_user.HubUser` logs in through the IdP the way a browser does (cookies,
redirects, the provider's login form) and reaches its server through the proxy.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import pytest_asyncio
from browser import chromium
from hub_user import core_api, hub_users, local_platform


@pytest.hookimpl(tryfirst=True)  # before the root conftest reads the marker
def pytest_collection_modifyitems(items):
    for item in items:
        if Path(str(item.fspath)).parent == Path(__file__).parent:
            item.add_marker(pytest.mark.e2e)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def platform(z2jh_chart):
    """The platform under test, on the stock chart's own hub configuration; its state and logs
    stay in test-artifacts/e2e/ for post-mortems."""
    async with local_platform(z2jh_chart, "platform-") as running:
        yield running


@pytest_asyncio.fixture(loop_scope="session")
async def hub(platform):
    """``hub("alice")`` → a :class:`HubUser`; each is stopped and closed after the test."""
    async with hub_users(platform) as make:
        yield make


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def k8s(platform):
    """A kubernetes_asyncio CoreV1Api on the emulator, from the platform's kubeconfig."""
    async with core_api(platform) as api:
        yield api


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def browser():
    """Headless Chromium for a module's browser tests (skips without it, naming the install)."""
    async with chromium() as running:
        yield running
