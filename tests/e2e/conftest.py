"""End-to-end fixtures: one local platform per test session, and a browser-like hub user.

Everything is real: JupyterHub, configurable-http-proxy, the OIDC provider, the emulator and the
process kubelet. :class:`hub_user.HubUser` logs in through the IdP the way a browser does (cookies,
redirects, the provider's login form) and reaches its server through the proxy.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
from hub_user import ARTIFACTS, SPAWN_TIMEOUT, HubUser
from kubernetes_asyncio import client as k8s_client
from kubernetes_asyncio import config as k8s_config

from jupyterhub_platform.devcluster.platform import LocalPlatform
from jupyterhub_platform.devcluster.procs import wait_for


@pytest.hookimpl(tryfirst=True)  # before the root conftest reads the marker
def pytest_collection_modifyitems(items):
    for item in items:
        if Path(str(item.fspath)).parent == Path(__file__).parent:
            item.add_marker(pytest.mark.e2e)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def platform(z2jh_chart):
    """The platform under test, on the stock chart's own hub configuration; its state and logs
    stay in test-artifacts/e2e/ for post-mortems."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    state_dir = Path(tempfile.mkdtemp(prefix="platform-", dir=ARTIFACTS))
    print(f"\nlocal platform state and logs: {state_dir}")
    async with LocalPlatform(state_dir, chart=z2jh_chart) as running:
        yield running


@pytest_asyncio.fixture(loop_scope="session")
async def hub(platform):
    """``hub("alice")`` → a :class:`HubUser`; each is stopped and closed after the test."""
    users: list[HubUser] = []

    def make(name: str) -> HubUser:
        user = HubUser(platform.hub_url, name)
        users.append(user)
        return user

    yield make
    for user in users:
        await _stop_quietly(platform, user.name)
        await user.close()


async def _stop_quietly(platform: LocalPlatform, name: str) -> None:
    """Leave no server running for the next test, whatever this one did (admin token)."""
    headers = {"Authorization": f"token {platform.admin_token}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        url = f"{platform.hub_api_url}/users/{name}"
        async with session.delete(f"{url}/server") as resp:
            if resp.status == 404:
                return

        async def gone() -> bool:
            async with session.get(url) as resp:
                return resp.status == 404 or "" not in (await resp.json()).get("servers", {})

        await wait_for(gone, timeout=SPAWN_TIMEOUT, interval=0.25, what=f"{name}'s server to stop")


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def k8s(platform):
    """A kubernetes_asyncio CoreV1Api on the emulator, from the platform's kubeconfig."""
    configuration = k8s_client.Configuration()
    await k8s_config.load_kube_config(
        config_file=str(platform.cluster.kubeconfig_path), client_configuration=configuration
    )
    async with k8s_client.ApiClient(configuration) as api:
        yield k8s_client.CoreV1Api(api)
