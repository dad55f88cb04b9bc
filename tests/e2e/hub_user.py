"""A browser-like JupyterHub user for the end-to-end tests (cookies, redirects, XSRF)."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from kubernetes_asyncio import client as k8s_client
from kubernetes_asyncio import config as k8s_config
from kubernetes_asyncio.stream import WsApiClient
from skips import missing
from yarl import URL

from jupyterhub_platform.devcluster.platform import LocalPlatform
from jupyterhub_platform.devcluster.procs import wait_for
from jupyterhub_platform.devcluster.proxy import node_bin_path

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "e2e"
"""Platform state, logs and screenshots of e2e runs, kept for post-mortems (gitignored)."""

SPAWN_TIMEOUT = 90.0


def require_programs(*names: str) -> None:
    """Skip, saying what to install, unless the pods' programs are where the kubelet looks.

    Under CI (``CI`` set) a missing program fails instead: CI installs them all, so a skip
    there would hide a broken install step.
    """
    search = f"{os.path.dirname(sys.executable)}{os.pathsep}{node_bin_path(ARTIFACTS)}"
    absent = [name for name in names if shutil.which(name, path=search) is None]
    if absent:
        missing(
            f"{', '.join(absent)} not installed on this machine: "
            "run .ci/install-workspace-tools (as root) to install it"
        )


class HubUser:
    """One user with their own cookie jar, talking to the hub and their server via the proxy."""

    def __init__(self, hub_url: str, name: str):
        self.hub_url = hub_url.rstrip("/")
        self.name = name
        # unsafe=True: keep cookies for an IP-address host such as 127.0.0.1
        self.session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))

    async def close(self) -> None:
        await self.session.close()

    @property
    def server_url(self) -> str:
        return f"{self.hub_url}/user/{self.name}"

    def xsrf_token(self, url: str) -> str | None:
        """The ``_xsrf`` cookie the hub or server set for ``url``'s path, if any."""
        cookie = self.session.cookie_jar.filter_cookies(URL(url)).get("_xsrf")
        return cookie.value if cookie else None

    def _xsrf(self, url: str) -> dict[str, str]:
        """Headers echoing the XSRF cookie, as cookie-authenticated API calls must."""
        token = self.xsrf_token(url)
        return {"X-XSRFToken": token} if token else {}

    async def login(self, tamper: Callable[[str], str] | None = None) -> int:
        """The OIDC login flow; returns the HTTP status of the hub's OAuth callback.

        hub /hub/oauth_login → IdP /oauth2/authorize → POST the login form's ``sub`` →
        redirect back to /hub/oauth_callback with ``code`` and ``state`` → session cookies.
        ``tamper`` changes the authorization URL first (an attacker's or a broken client's).
        """
        async with self.session.get(
            f"{self.hub_url}/hub/oauth_login", allow_redirects=False
        ) as resp:
            assert resp.status == 302, await resp.text()
            authorize = resp.headers["Location"]
        if tamper is not None:
            authorize = tamper(authorize)
        async with self.session.post(
            authorize, data={"sub": self.name}, allow_redirects=False
        ) as resp:
            assert resp.status == 302, await resp.text()
            callback = resp.headers["Location"]
        assert urlsplit(callback).path == "/hub/oauth_callback", callback
        async with self.session.get(callback, allow_redirects=False) as resp:
            status = resp.status
        if status < 400:
            # A hub page sets the _xsrf cookie that cookie-authenticated API calls must echo.
            async with self.session.get(f"{self.hub_url}/hub/home") as resp:
                assert resp.status == 200
        return status

    async def api(self, method: str, path: str, **kwargs: Any) -> aiohttp.ClientResponse:
        """A cookie-authenticated hub REST API call; the response body is read already."""
        url = f"{self.hub_url}/hub/api{path}"
        async with self.session.request(method, url, headers=self._xsrf(url), **kwargs) as resp:
            await resp.read()
            return resp

    async def spawn(self, options: dict | None = None) -> None:
        resp = await self.api("POST", f"/users/{self.name}/server", json=options or {})
        assert resp.status in (201, 202), f"{resp.status}: {await resp.text()}"

    async def spawn_via_form(self, form_data: dict[str, str]) -> None:
        """Submit the spawn page's options form, as a browser would."""
        url = f"{self.hub_url}/hub/spawn/{self.name}"
        data = {**form_data, "_xsrf": self.xsrf_token(url) or ""}
        async with self.session.post(url, data=data) as resp:
            assert resp.status == 200, await resp.text()

    async def wait_ready(self, timeout: float = SPAWN_TIMEOUT) -> None:
        """Poll ``/user/<name>/api/status`` through the proxy until the server answers 200.

        A 403 means the server is up but this browser has no cookie for it yet: open a page,
        which runs the hub's OAuth handshake for the single-user server.
        """
        status_url = f"{self.server_url}/api/status"

        async def ready() -> bool:
            async with self.session.get(status_url, allow_redirects=False) as resp:
                if resp.status == 200:
                    return True
                if resp.status != 403:
                    return False
            async with self.session.get(f"{self.server_url}/lab") as resp:
                await resp.read()
            return False

        await wait_for(ready, timeout=timeout, interval=0.25, what=f"{self.name}'s server")

    async def server(self, method: str, path: str, **kwargs: Any) -> aiohttp.ClientResponse:
        """A call to the user's Jupyter server API through the proxy (cookie + XSRF)."""
        url = f"{self.server_url}/api{path}"
        async with self.session.request(method, url, headers=self._xsrf(url), **kwargs) as resp:
            await resp.read()
            return resp

    async def model(self) -> dict:
        resp = await self.api("GET", f"/users/{self.name}")
        assert resp.status == 200
        return await resp.json()

    async def stop(self, timeout: float = SPAWN_TIMEOUT) -> None:
        """Stop the default server and wait until the hub no longer lists it."""
        resp = await self.api("DELETE", f"/users/{self.name}/server")
        assert resp.status in (202, 204), f"{resp.status}: {await resp.text()}"

        async def stopped() -> bool:
            return "" not in (await self.model()).get("servers", {})

        await wait_for(
            stopped, timeout=timeout, interval=0.25, what=f"{self.name}'s server to stop"
        )


async def launch(user: HubUser) -> float:
    """Log in, spawn, wait for the server; return the seconds it took."""
    began = time.monotonic()
    assert await user.login() == 302
    await user.spawn()
    await user.wait_ready()
    return time.monotonic() - began


async def credentials_get(platform, token: str, path: str) -> tuple[int, dict]:
    """(status, JSON body) of the credentials service's ``api/v1/<path>`` with ``token``."""
    url = f"{platform.hub_url}/services/credentials/api/v1/{path}"
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, headers={"Authorization": f"token {token}"}) as resp,
    ):
        return resp.status, await resp.json(content_type=None)


async def user_pods(k8s, name: str) -> list:
    pods = await k8s.list_namespaced_pod(
        "default", label_selector=f"component=singleuser-server,hub.jupyter.org/username={name}"
    )
    return pods.items


async def exec_in(k8s, pod: str, command: list[str], container: str = "notebook") -> str:
    """``command``'s output (stdout and stderr) in a container of ``pod`` (``pods/exec``)."""
    async with WsApiClient(configuration=k8s.api_client.configuration) as ws_api:
        return await k8s_client.CoreV1Api(ws_api).connect_get_namespaced_pod_exec(
            pod, "default", command=command, container=container, stdout=True, stderr=True
        )


@asynccontextmanager
async def core_api(platform):
    """A kubernetes_asyncio CoreV1Api on ``platform``'s emulator, from its kubeconfig."""
    configuration = k8s_client.Configuration()
    await k8s_config.load_kube_config(
        config_file=str(platform.cluster.kubeconfig_path), client_configuration=configuration
    )
    async with k8s_client.ApiClient(configuration) as api:
        yield k8s_client.CoreV1Api(api)


@asynccontextmanager
async def local_platform(chart: Path, prefix: str, **options: Any):
    """A :class:`LocalPlatform` on ``chart`` whose state and logs stay in test-artifacts/e2e/
    (a new ``<prefix>*`` directory) for post-mortems; ``options`` go to LocalPlatform."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    state_dir = Path(tempfile.mkdtemp(prefix=prefix, dir=ARTIFACTS))
    print(f"\nlocal platform state and logs: {state_dir}")
    async with LocalPlatform(state_dir, chart=chart, **options) as running:
        yield running


@asynccontextmanager
async def hub_users(platform):
    """``make("alice")`` → a :class:`HubUser` on ``platform``; on exit each user's server is
    stopped (whatever the test did, with the admin token) and their session closed."""
    users: list[HubUser] = []

    def make(name: str) -> HubUser:
        user = HubUser(platform.hub_url, name)
        users.append(user)
        return user

    try:
        yield make
    finally:
        for user in users:
            await _stop_quietly(platform, user.name)
            await user.close()


async def _stop_quietly(platform, name: str) -> None:
    """Leave no server running for the next test (admin token)."""
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
