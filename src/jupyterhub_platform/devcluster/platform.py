"""The whole platform on one machine: emulator + kubelet, OIDC provider, CHP and JupyterHub.

:class:`LocalPlatform` is the one stack behind both ``jupyterhub-platform dev`` and the
end-to-end tests. The hub runs the stock z2jh chart's own configuration (:mod:`.stock_hub`) with
the shipped values plus one local overlay (:mod:`.local_values`). Each component is a separate
process in its own process group, on free ports, with its log in ``<state-dir>/logs/``; stopping
the platform stops them newest first (the hub before the cluster, so the hub never sees its pods
vanish under it).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from jupyterhub_platform.chart.binaries import ensure_helm
from jupyterhub_platform.chart.locate import find_chart
from jupyterhub_platform.chart.values import load_values_file, merge_all, merge_values

from . import idp, proxy
from .backup_store import OVERLAY as BACKUP_OVERLAY
from .backup_store import BackupStore, BackupStoreError, backup_programs
from .cloudflare.process import StandInProcess
from .cluster import ClusterAccess
from .credential_store import OVERLAY as CREDENTIALS_OVERLAY
from .credential_store import CredentialStore, local_policy_values, service_values
from .local_values import (
    ADMIN_TOKEN_KEY,
    PROXY_TOKEN_KEY,
    CloudflareLogin,
    LocalEndpoints,
    OIDCLogin,
    local_values,
)
from .procs import ManagedProcess, ProcessGroupSet, free_port, port_is_open, wait_for
from .secret_store import SecretStore
from .stock_hub import HubLayout, HubProcess, load_existing_secret, prepare_hub

LOOPBACK = "127.0.0.1"
AUTH_MODES = ("oidc", "cloudflare")
"""How users log in locally: the development OIDC provider, or a Cloudflare Access stand-in."""
# Grace before SIGKILL: the devcluster must stop its kubelet's pod processes first.
_GRACE = {"devcluster": 20.0, "hub": 10.0}


class PlatformError(RuntimeError):
    """A component failed to start; the message names it and shows the end of its log."""


class DevClusterFiles:
    """Files ``python -m jupyterhub_platform.devcluster`` writes into its state directory.

    The kubeconfig's name is known in advance, so the hub's environment can name it.
    """

    READY = "ready.json"
    KUBECONFIG = "kubeconfig.yaml"


@dataclass(frozen=True)
class ClusterHandle:
    """The devcluster process as seen from outside: its API URL and a kubeconfig for it."""

    url: str
    kubeconfig_path: Path
    pid: int


SHIPPED_VALUES = ("values.yaml",)
CLOUDFLARE_OVERLAY = "cloudflare-access.yaml"


def shipped_values_dir() -> Path:
    """The shipped ``chart-values/``: bundled in a wheel, or the source tree's."""
    package = Path(__file__).resolve().parents[1]
    for candidate in (package / "_bundled" / "chart-values", package.parents[1] / "chart-values"):
        if (candidate / "values.yaml").is_file():
            return candidate
    raise PlatformError("chart-values/values.yaml not found; pass the values files explicitly")


def default_values_files(auth: str) -> list[Path]:
    """The shipped values a cluster gets: values.yaml, plus the Cloudflare overlay in that mode."""
    names = [*SHIPPED_VALUES, *([CLOUDFLARE_OVERLAY] if auth == "cloudflare" else [])]
    return [shipped_values_dir() / name for name in names]


def _singleuser_cmd() -> list[str]:
    """How the process kubelet starts a user server: this virtualenv's jupyterhub-singleuser.

    Processes run as the local user; as root, Jupyter must be told that is intended.
    """
    return [
        "jupyterhub-singleuser",
        *(["--ServerApp.allow_root=True"] if os.geteuid() == 0 else []),
    ]


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

    After :meth:`start`: ``hub_url`` (public, through the proxy), ``public_url`` (where a browser
    goes), ``hub_api_url``, ``admin_token`` (a service token in the ``admin`` role), ``idp_url``,
    ``cluster`` (:class:`ClusterHandle`) and ``logs_dir``.

    ``values_files`` replace the shipped values (default: ``values.yaml``, plus
    ``cloudflare-access.yaml`` when ``auth="cloudflare"``); ``extra_values`` (chart values) are
    merged over the local overlay, e.g. ``{"hub": {"config": {"KubeSpawner": {...}}}}``.
    ``idp_running=False`` starts everything but the OIDC provider (see :meth:`start_idp`).
    ``backups=True`` adds the shipped ``backup-restic.yaml`` overlay (the backup service, a
    hub-managed service at ``/services/backup/``) and what it needs locally: ``rclone serve s3`` in
    ``<state>/backup-s3/`` (``backup_store``, a :class:`~.backup_store.BackupStore`) and the
    repository Secret in the emulator (docs/backup.md). ``credentials=True`` adds the shipped
    ``credentials.yaml`` overlay (the credentials service at ``/services/credentials/``) and an
    STS + S3 server for its ``s3-sts`` sets (``credential_store``, moto's; docs/credentials.md);
    without it the local policy grants no credential set.
    """

    def __init__(
        self,
        state_dir: Path,
        *,
        chart: Path | None = None,
        values_files: Sequence[Path] | None = None,
        extra_values: dict[str, Any] | None = None,
        existing_secret: Path | None = None,
        kubelet: str = "process",
        port: int = 0,
        auth: str = "oidc",
        idp_running: bool = True,
        backups: bool = False,
        credentials: bool = False,
        startup_timeout: float = 90.0,
        say: Callable[[str], None] = lambda _msg: None,
    ):
        if auth not in AUTH_MODES:
            raise PlatformError(f"auth: {auth!r} is not one of {', '.join(AUTH_MODES)}")
        self.auth = auth
        self.state_dir = Path(state_dir).resolve()
        self.chart = chart
        self.values_files = [Path(f).resolve() for f in values_files or default_values_files(auth)]
        if backups:
            self.values_files.append(shipped_values_dir() / BACKUP_OVERLAY)
        self.backups = backups
        if credentials:
            self.values_files.append(shipped_values_dir() / CREDENTIALS_OVERLAY)
        self.credentials = credentials
        self.credential_store: CredentialStore | None = None
        self.backup_store: BackupStore | None = None
        self.extra_values = extra_values or {}
        self.existing_secret = existing_secret
        self.kubelet = kubelet
        self.port = port
        self.idp_wanted = idp_running and auth == "oidc"
        self.startup_timeout = startup_timeout
        self.say = say
        self.logs_dir = self.state_dir / "logs"
        self.secrets = SecretStore(self.state_dir / "secrets.json")
        self.processes = ProcessGroupSet()
        self._idp = ProcessGroupSet()  # apart: tests stop and restart the provider
        self._hub: HubProcess | None = None  # how the hub was started (restart_hub)
        self._idp_port = 0
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
        chart = find_chart(self.chart)
        existing = load_existing_secret(self.existing_secret) if self.existing_secret else None
        helm = await asyncio.to_thread(ensure_helm, say=self.say)
        chp = await asyncio.to_thread(proxy.ensure_chp, self.state_dir, say=self.say)
        endpoints = LocalEndpoints(
            ip=LOOPBACK,
            hub_port=free_port(LOOPBACK),
            proxy_api_port=free_port(LOOPBACK),
            public_port=self.port or free_port(LOOPBACK),
        )
        self.hub_url = self.public_url = f"http://{LOOPBACK}:{endpoints.public_port}"
        self.hub_api_url = f"{self.hub_url}/hub/api"
        login, edge = self._login()
        cluster_dir = self.state_dir / "cluster"
        backup_rclone = self._backup_store(cluster_dir) if self.backups else None
        if self.credentials:
            self.credential_store = CredentialStore(
                self.state_dir / "credentials-store", free_port(LOOPBACK)
            )
        # Render and lay out the hub first: bad values fail now, with helm's message, before
        # anything runs.
        hub = await asyncio.to_thread(
            prepare_hub,
            HubLayout(self.state_dir / "hub"),
            helm=helm,
            chart=chart,
            values_files=self.values_files,
            overlay=self._overlay(endpoints, login),
            endpoints=endpoints,
            kubeconfig=cluster_dir / DevClusterFiles.KUBECONFIG,
            base_env=_child_env(),
            existing_secret=existing,
        )
        self.admin_token = self.secrets.get(ADMIN_TOKEN_KEY)
        proxy_token = self.secrets.get(PROXY_TOKEN_KEY)

        cluster_proc = self._start_cluster(cluster_dir)
        rclone_proc = self._start_rclone(backup_rclone) if backup_rclone else None
        store_proc = self._start_credential_store() if self.credential_store else None
        chp_proc = self.processes.start(
            proxy.chp_argv(
                chp,
                ip=LOOPBACK,
                port=endpoints.public_port,
                api_ip=LOOPBACK,
                api_port=endpoints.proxy_api_port,
                hub_url=endpoints.hub_url,
            ),
            name="proxy",
            log_path=self._log("proxy"),
            env=_child_env(CONFIGPROXY_AUTH_TOKEN=proxy_token),
        )
        # The hub needs the cluster's kubeconfig and the proxy API; not the identity provider,
        # whose discovery it does lazily.
        idp_ready = asyncio.ensure_future(self.start_idp()) if self.idp_wanted else None
        try:
            await _all(
                self._wait_cluster(cluster_proc, cluster_dir),
                self._wait_port(chp_proc, endpoints.proxy_api_port),
                *([self._wait_port(rclone_proc, self.backup_store.port)] if rclone_proc else []),
                *([self._wait_store(store_proc)] if store_proc else []),
            )
            if self.backup_store is not None:
                await self._put_backup_secret()
            self._hub = hub
            hub_proc = self._start_hub(hub)
            await self._wait_http(
                hub_proc, f"{self.hub_url}/hub/health", "the hub through the proxy"
            )
            if self.backup_store is not None:  # the hub exits if its managed service never answers
                await self._wait_http(
                    hub_proc, f"{self.hub_url}/services/backup/health", "the backup service"
                )
            if self.credential_store is not None:
                await self._wait_http(
                    hub_proc,
                    f"{self.hub_url}/services/credentials/health",
                    "the credentials service",
                )
            if idp_ready is not None:
                await idp_ready
        finally:
            if idp_ready is not None and not idp_ready.done():
                idp_ready.cancel()
                await asyncio.gather(idp_ready, return_exceptions=True)
        if edge is not None:
            edge_proc = self.processes.start(
                edge.argv(), name="cloudflare", log_path=self._log("cloudflare"), env=_child_env()
            )
            await self._wait_http(edge_proc, edge.ready_url, "the Cloudflare stand-in")

    def _login(self) -> tuple[OIDCLogin | CloudflareLogin, StandInProcess | None]:
        """How users log in: the development IdP, or Cloudflare's edge, stood in for locally
        (it signs users in and adds the Access JWT to every request it forwards)."""
        if self.auth == "cloudflare":
            edge = StandInProcess(self.logs_dir, upstream=self.hub_url)
            self.public_url = edge.url
            return CloudflareLogin(edge.url, edge.audience), edge
        self._idp_port = free_port(LOOPBACK)
        self.idp_url = f"http://{LOOPBACK}:{self._idp_port}"
        return OIDCLogin(self.idp_url), None

    def _backup_store(self, cluster_dir: Path) -> Path:
        """Prepare the local backup store (before the hub's values are rendered: they name
        it); returns the rclone program."""
        try:
            rclone, restic = backup_programs()
        except BackupStoreError as exc:
            raise PlatformError(f"backups: {exc}") from None
        self.backup_store = BackupStore.create(
            self.state_dir / "backup-s3", free_port(LOOPBACK), self.secrets.get
        )
        self.extra_values = merge_values(
            self.backup_store.values(
                Path(sys.executable).parent, restic, cluster_dir / DevClusterFiles.KUBECONFIG
            ),
            self.extra_values,
        )
        return rclone

    async def _put_backup_secret(self) -> None:
        """The repository Secret in the hub's namespace (the emulator starts empty)."""
        access = ClusterAccess.from_kubeconfig(self.cluster.kubeconfig_path)
        url = f"{access.url}/api/v1/namespaces/default/secrets"
        async with (
            access.session() as session,
            session.post(url, json=self.backup_store.secret()) as resp,
        ):
            if resp.status != 201:
                raise PlatformError(f"backups: the emulator refused the Secret: {resp.status}")

    def _overlay(self, endpoints: LocalEndpoints, login: OIDCLogin | CloudflareLogin) -> dict:
        """The local values (after the values files), with the caller's ``extra_values``."""
        shipped = merge_all(load_values_file(f) for f in self.values_files)
        local = local_values(
            shipped,
            endpoints,
            login,
            self.secrets.get,
            singleuser_cmd=_singleuser_cmd(),
            service_port=lambda _name: free_port(LOOPBACK),
            bin_dir=Path(sys.executable).parent,
        )
        overlay = merge_values(local, self.extra_values)
        merged = merge_values(shipped, overlay)
        overlay = merge_values(overlay, local_policy_values(merged, self.credential_store))
        if self.credential_store is not None and isinstance(login, OIDCLogin):
            kubeconfig = self.state_dir / "cluster" / DevClusterFiles.KUBECONFIG
            overlay = merge_values(overlay, service_values(merged, login.issuer, kubeconfig))
        return overlay

    def _start_hub(self, hub: HubProcess) -> ManagedProcess:
        return self.processes.start(
            hub.argv, name="hub", log_path=self._log("hub"), cwd=hub.cwd, env=hub.env
        )

    async def restart_hub(self) -> None:
        """Stop the hub and start it again on the same database and configuration, as when a
        hub pod restarts: the proxy and the users' servers keep running (the stock chart sets
        ``cleanup_servers = False``); the hub's managed services restart with it."""
        await self._stop_one("hub")
        proc = self._start_hub(self._hub)
        await self._wait_http(proc, f"{self.hub_url}/hub/health", "the restarted hub")

    async def stop_backup_store(self) -> None:
        """Stop the local S3 store (``backups=True``), as when the storage is down."""
        await self._stop_one("rclone")

    async def start_backup_store(self) -> None:
        """Start the stopped local S3 store again: same port, same data."""
        rclone, _ = backup_programs()
        await self._wait_port(self._start_rclone(rclone), self.backup_store.port)

    def _start_credential_store(self) -> ManagedProcess:
        return self.processes.start(
            self.credential_store.argv(), name="sts-s3", log_path=self._log("sts-s3"),
            env=_child_env(),
        )  # fmt: skip

    async def _wait_store(self, proc: ManagedProcess) -> None:
        await self._wait(proc, self.credential_store.ready_file.is_file, "the STS + S3 server")

    async def stop_credential_store(self) -> None:
        """Stop the STS + S3 server (``credentials=True``), as when the platform's STS is down."""
        await self._stop_one("sts-s3")

    async def start_credential_store(self) -> None:
        """Start the stopped STS + S3 server again on its port (its state starts afresh)."""
        await self._wait_store(self._start_credential_store())

    def _start_rclone(self, rclone: Path) -> ManagedProcess:
        return self.processes.start(
            self.backup_store.argv(rclone), name="rclone", log_path=self._log("rclone")
        )

    async def _stop_one(self, name: str) -> None:
        (proc,) = [p for p in self.processes if p.name == name]
        await proc.astop(_GRACE.get(name, 5.0))
        self.processes.forget(proc)

    async def start_idp(self) -> None:
        """Start the OIDC provider on its fixed port and seed the demo users (its state is memory)."""
        if self.auth != "oidc":
            raise PlatformError("the OIDC provider runs only with auth='oidc'")
        if any(p.running() for p in self._idp):
            return
        proc, endpoints = idp.start_idp(
            self._idp, host=LOOPBACK, port=self._idp_port, log_path=self._log("idp")
        )
        await idp.seed_users(proc, endpoints, timeout=self.startup_timeout)

    async def stop_idp(self) -> None:
        """Stop the OIDC provider (an outage, for tests); the rest keeps running."""
        running, self._idp = list(self._idp), ProcessGroupSet()
        for proc in running:
            await proc.astop(_GRACE.get(proc.name, 5.0))

    async def stop(self) -> None:
        """Stop every started process with its process group, newest first."""
        procs = list(self.processes)
        self.processes = ProcessGroupSet()
        for proc in reversed(procs):
            await proc.astop(_GRACE.get(proc.name, 5.0))
        await self.stop_idp()

    def components(self) -> list[ManagedProcess]:
        return [*self.processes, *self._idp]

    def exited(self) -> ManagedProcess | None:
        """The first component that is no longer running, if any."""
        return next((proc for proc in self.components() if not proc.running()), None)

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
