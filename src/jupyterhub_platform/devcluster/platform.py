"""The whole platform on one machine: emulator + kubelet, OIDC provider, CHP and JupyterHub.

:class:`LocalPlatform` is the one stack behind both ``jupyterhub-platform dev`` and the
end-to-end tests. Each component is a separate process in its own process group, on free ports,
with its log in ``<state-dir>/logs/<component>.log``; stopping the platform stops them newest
first (the hub before the cluster, so the hub never sees its pods vanish under it).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from . import hub_config, idp, proxy
from .cloudflare_standin import CloudflareStandIn
from .procs import ManagedProcess, ProcessGroupSet, free_port, port_is_open, wait_for

LOOPBACK = "127.0.0.1"
AUTH_MODES = ("oidc", "cloudflare")
"""How users log in locally: the development OIDC provider, or a Cloudflare Access stand-in."""
# Grace before SIGKILL: the devcluster must stop its kubelet's pod processes first.
_GRACE = {"devcluster": 20.0, "hub": 10.0}


class PlatformError(RuntimeError):
    """A component failed to start; the message names it and shows the end of its log."""


class DevClusterFiles:
    """Files ``python -m jupyterhub_platform.devcluster`` writes into its state directory.

    The kubeconfig's name is known in advance so the hub can start before the cluster is up.
    """

    READY = "ready.json"
    KUBECONFIG = "kubeconfig.yaml"


@dataclass(frozen=True)
class ClusterHandle:
    """The devcluster process as seen from outside: its API URL and a kubeconfig for it."""

    url: str
    kubeconfig_path: Path
    pid: int


def default_values_path() -> Path:
    """The shipped ``chart-values/values.yaml``: bundled in a wheel, or the source tree's."""
    package = Path(__file__).resolve().parents[1]
    for candidate in (
        package / "_bundled" / "chart-values" / "values.yaml",
        package.parents[1] / "chart-values" / "values.yaml",
    ):
        if candidate.is_file():
            return candidate
    raise PlatformError("chart-values/values.yaml not found; pass a values file explicitly")


def _child_env(**extra: str) -> dict[str, str]:
    """The environment for a component: ours without a surrounding hub's or cluster's settings.

    Running ``dev`` inside a JupyterHub session must not leak that session's tokens, and an
    exported-but-empty ``KUBECONFIG`` breaks kubernetes_asyncio at import time.
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("JUPYTERHUB_", "JPY_", "CONFIGPROXY_")) and k != "KUBECONFIG"
    }
    env.update(extra)
    return env


async def _all(*awaitables: Awaitable[Any]) -> None:
    """Await all; on the first failure cancel the others (asyncio.TaskGroup needs 3.11)."""
    tasks = [asyncio.ensure_future(a) for a in awaitables]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


class LocalPlatform:
    """Start and stop the local platform; use as ``async with LocalPlatform(dir) as p: ...``.

    After :meth:`start`: ``hub_url`` (public, through the proxy), ``hub_api_url``,
    ``admin_token`` (a service token in the ``admin`` role), ``idp_url``, ``cluster``
    (:class:`ClusterHandle`) and ``logs_dir``. ``hub_config_overrides`` is JSON-serialisable
    ``{"Class": {"trait": value}}`` applied after the values file and the local overrides.
    """

    def __init__(
        self,
        state_dir: Path,
        *,
        values_path: Path | None = None,
        kubelet: str = "process",
        hub_config_overrides: dict[str, dict[str, Any]] | None = None,
        port: int = 0,
        auth: str = "oidc",
        startup_timeout: float = 90.0,
        say: Callable[[str], None] = lambda _msg: None,
    ):
        if auth not in AUTH_MODES:
            raise PlatformError(f"auth: {auth!r} is not one of {', '.join(AUTH_MODES)}")
        self.auth = auth
        self.state_dir = Path(state_dir).resolve()
        self.values_path = Path(values_path).resolve() if values_path else default_values_path()
        self.kubelet = kubelet
        self.hub_config_overrides = hub_config_overrides or {}
        self.port = port
        self.startup_timeout = startup_timeout
        self.say = say
        self.logs_dir = self.state_dir / "logs"
        self.secrets_path = self.state_dir / "secrets.json"
        self.processes = ProcessGroupSet()
        self.cluster: ClusterHandle | None = None
        self.hub_url = ""
        self.public_url = ""
        """Where a browser goes: the proxy, or the Cloudflare stand-in's edge in front of it."""
        self.hub_api_url = ""
        self.idp_url = ""
        self.admin_token = ""

    async def __aenter__(self) -> LocalPlatform:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        """Start every component and return once the hub answers through the proxy.

        On any failure everything already started is stopped before the error propagates.
        """
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self.state_dir.chmod(0o700)  # secrets, the hub's database and every home are inside
        chp = await asyncio.to_thread(proxy.ensure_chp, self.state_dir, say=self.say)
        public_port = self.port or free_port(LOOPBACK)
        api_port, hub_port, idp_port = (free_port(LOOPBACK) for _ in range(3))
        self.hub_url = self.public_url = f"http://{LOOPBACK}:{public_port}"
        self.hub_api_url = f"{self.hub_url}/hub/api"
        cluster_dir = self.state_dir / "cluster"
        edge = None
        overrides = self.hub_config_overrides
        if self.auth == "cloudflare":
            # Cloudflare's edge, stood in for locally: it signs users in and adds the Access
            # JWT to every request it forwards to the proxy.
            edge = CloudflareStandIn(self.logs_dir, upstream=self.hub_url)
            overrides = edge.hub_config_overrides()
            # The demo users' addresses are <name>@example.org: their hub names match the IdP's.
            overrides["CloudflareAccessAuthenticator"]["username_from_email"] = "local-part"
            for cls, traits in self.hub_config_overrides.items():
                overrides.setdefault(cls, {}).update(traits)
            self.public_url = edge.url
        endpoints = hub_config.LocalEndpoints(
            hub_port=hub_port,
            proxy_api_url=f"http://{LOOPBACK}:{api_port}",
            idp_url=f"http://{LOOPBACK}:{idp_port}",
            values_path=str(self.values_path),
            secrets_path=str(self.secrets_path),
            extra_files_dir=str(self.state_dir / "hub" / "extra-files"),
            cluster_ready_file=str(cluster_dir / DevClusterFiles.READY),
            startup_timeout=self.startup_timeout,
            ip=LOOPBACK,
            hub_config_overrides=overrides,
        )
        # Build the hub config here first: a bad values file fails now, with a clear message,
        # instead of as a traceback in the hub's log.
        hub_config.hub_config(endpoints)
        self.admin_token = hub_config.admin_token(self.secrets_path)
        proxy_token = hub_config.SecretStore(self.secrets_path).get("proxy.secretToken")

        # Everything starts at once; the hub's config waits for the cluster and the proxy.
        cluster_proc = self._start_cluster(cluster_dir)
        idp_proc, idp_endpoints = idp.start_idp(
            self.processes, host=LOOPBACK, port=idp_port, log_path=self._log("idp")
        )
        self.idp_url = idp_endpoints.base_url
        chp_proc = self.processes.start(
            proxy.chp_argv(
                chp,
                ip=LOOPBACK,
                port=public_port,
                api_ip=LOOPBACK,
                api_port=api_port,
                hub_url=endpoints.hub_url,
            ),
            name="proxy",
            log_path=self._log("proxy"),
            env=_child_env(CONFIGPROXY_AUTH_TOKEN=proxy_token),
        )
        hub_dir = self.state_dir / "hub"
        config_file = hub_config.write_hub_files(hub_dir, endpoints)
        hub_proc = self.processes.start(
            [sys.executable, "-m", "jupyterhub", "-f", str(config_file)],
            name="hub",
            log_path=self._log("hub"),
            cwd=hub_dir,
            env=_child_env(
                KUBECONFIG=str(cluster_dir / DevClusterFiles.KUBECONFIG),
                CONFIGPROXY_AUTH_TOKEN=proxy_token,
            ),
        )
        await _all(
            self._wait_cluster(cluster_proc, cluster_dir),
            idp.seed_users(idp_proc, idp_endpoints, timeout=self.startup_timeout),
            self._wait_port(chp_proc, api_port),
        )
        await self._wait_http(hub_proc, f"{self.hub_url}/hub/health", "the hub through the proxy")
        if edge is not None:
            edge_proc = self.processes.start(
                edge.argv(), name="cloudflare", log_path=self._log("cloudflare"), env=_child_env()
            )
            await self._wait_http(edge_proc, f"{edge.url}/_standin/stats", "the Cloudflare stand-in")

    async def stop(self) -> None:
        """Stop every started process with its process group, newest first."""
        procs = list(self.processes)
        self.processes = ProcessGroupSet()
        for proc in reversed(procs):
            await proc.astop(_GRACE.get(proc.name, 5.0))

    def exited(self) -> ManagedProcess | None:
        """The first component that is no longer running, if any."""
        return next((proc for proc in self.processes if not proc.running()), None)

    def _log(self, component: str) -> Path:
        return self.logs_dir / f"{component}.log"

    def _start_cluster(self, cluster_dir: Path) -> ManagedProcess:
        cluster_dir.mkdir(parents=True, exist_ok=True)
        (cluster_dir / DevClusterFiles.READY).unlink(missing_ok=True)
        return self.processes.start(
            [
                sys.executable,
                "-m",
                "jupyterhub_platform.devcluster",
                "--state-dir",
                str(cluster_dir),
                "--port",
                "0",
                "--kubelet",
                self.kubelet,
                "--private-path",  # no pod may see the platform's state (secrets.json, ...)
                str(self.state_dir),
            ],
            name="devcluster",
            log_path=self._log("devcluster"),
            env=_child_env(PATH=proxy.node_bin_path(self.state_dir)),
        )

    def _check_alive(self, proc: ManagedProcess) -> None:
        if not proc.running():
            raise PlatformError(
                f"{proc.name} exited with code {proc.returncode} during startup; "
                f"log {proc.log_path}:\n{proc.log_tail()}"
            )

    async def _wait(self, proc: ManagedProcess, condition: Callable, what: str) -> Any:
        async def check():
            self._check_alive(proc)
            return await condition() if asyncio.iscoroutinefunction(condition) else condition()

        try:
            return await wait_for(check, timeout=self.startup_timeout, interval=0.1, what=what)
        except TimeoutError as exc:
            raise PlatformError(f"{exc}; log {proc.log_path}:\n{proc.log_tail()}") from exc

    async def _wait_cluster(self, proc: ManagedProcess, cluster_dir: Path) -> None:
        ready = cluster_dir / DevClusterFiles.READY

        def read_ready() -> dict | None:
            try:
                return json.loads(ready.read_text())
            except (OSError, ValueError):
                return None  # not written yet, or half-written

        info = await self._wait(proc, read_ready, "the devcluster's ready.json")
        self.cluster = ClusterHandle(info["url"], Path(info["kubeconfig"]), int(info["pid"]))
        expected = cluster_dir / DevClusterFiles.KUBECONFIG
        if self.cluster.kubeconfig_path != expected:
            raise PlatformError(
                f"the devcluster wrote its kubeconfig to {self.cluster.kubeconfig_path}, but the "
                f"hub was started with KUBECONFIG={expected}"
            )

    async def _wait_port(self, proc: ManagedProcess, port: int) -> None:
        await self._wait(proc, lambda: port_is_open(LOOPBACK, port), f"{proc.name} on port {port}")

    async def _wait_http(self, proc: ManagedProcess, url: str, what: str) -> None:
        async with aiohttp.ClientSession() as session:

            async def ok() -> bool:
                try:
                    async with session.get(url) as resp:
                        return resp.status == 200
                except aiohttp.ClientError:
                    return False

            await self._wait(proc, ok, what)
