"""A whole development cluster in one process: API server, controllers and (optionally) kubelet.

The API server speaks HTTPS with a certificate from a CA made at each start, and requires the
bearer token made at each start; the kubeconfig carries both. The cluster's state directory is
private to its owner (0700): it holds that kubeconfig and every pod's volumes.
"""

from __future__ import annotations

import base64
import logging
import os
import secrets
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import yaml
from aiohttp import web

from . import tls
from .apiserver import ApiServer
from .controllers import NODE_NAME, Controllers, node_manifest
from .registry import Registry
from .resources import NAMESPACE, NODE, SNAPSHOT_CLASS
from .snapshot_controller import SnapshotController
from .snapshots import default_class_manifest
from .store import Store

log = logging.getLogger(__name__)

KUBELET_MODES = ("process", "light", "none")
BOOTSTRAP_NAMESPACES = ("default", "kube-system", "kube-public")
SHUTDOWN_SECONDS = 2.0


def kubeconfig(url: str, token: str, ca_pem: bytes, namespace: str = "default") -> dict:
    """A kubeconfig for the cluster at ``url`` (trusting ``ca_pem``), authenticating with ``token``."""
    cluster = {"server": url, "certificate-authority-data": base64.b64encode(ca_pem).decode()}
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "devcluster", "cluster": cluster}],
        "users": [{"name": "devcluster", "user": {"token": token}}],
        "contexts": [
            {
                "name": "devcluster",
                "context": {"cluster": "devcluster", "user": "devcluster", "namespace": namespace},
            }
        ],
        "current-context": "devcluster",
        "preferences": {},
    }


@dataclass(frozen=True)
class ClusterAccess:
    """The API server's URL, bearer token and CA, for HTTP clients that take no kubeconfig."""

    url: str
    token: str
    ca_pem: bytes

    @classmethod
    def from_kubeconfig(cls, path: Path) -> ClusterAccess:
        config = yaml.safe_load(Path(path).read_text())
        cluster, user = config["clusters"][0]["cluster"], config["users"][0]["user"]
        ca = base64.b64decode(cluster["certificate-authority-data"])
        return cls(cluster["server"], user["token"], ca)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cadata=self.ca_pem.decode())

    def session(self) -> aiohttp.ClientSession:
        """An aiohttp session that authenticates and trusts only the cluster's CA."""
        return aiohttp.ClientSession(
            headers=self.headers, connector=aiohttp.TCPConnector(ssl=self.ssl_context())
        )


class DevCluster:
    """The Kubernetes API emulator plus a kubelet, started and stopped together."""

    def __init__(self, state_dir: Path, *, host: str = "127.0.0.1", port: int = 0,
                 kubelet: str = "process", isolation: str = "auto",
                 private_paths: Sequence[Path] = (), volume_sync_seconds: float = 1.0):  # fmt: skip
        """``isolation``: how the process kubelet isolates pods (see ``kubelet.agent.ISOLATION``);
        ``private_paths``: directories no pod may see besides the state directory (such as the
        local platform's, which holds its secrets); ``volume_sync_seconds``: how often the kubelet
        brings running pods' secret/configMap volumes up to date with their objects."""
        if kubelet not in KUBELET_MODES:
            raise ValueError(
                f"kubelet mode must be one of {', '.join(KUBELET_MODES)}, not {kubelet!r}"
            )
        self.state_dir = Path(state_dir)
        self.host = host
        self.port = port
        self.kubelet_mode = kubelet
        self.isolation = isolation
        self.private_paths = tuple(Path(p) for p in private_paths)
        self.volume_sync_seconds = volume_sync_seconds
        self.token = secrets.token_urlsafe(32)
        """The bearer token the API server requires (in the kubeconfig)."""
        url_host = "127.0.0.1" if host in ("0.0.0.0", "") else host
        self.certificate = tls.generate({url_host, "127.0.0.1", "localhost"})
        self.store = Store()
        self.registry = Registry(self.store)
        self.controllers = Controllers(self.registry, kubelet_manages_pods=kubelet != "none")
        self.snapshots = SnapshotController(self.registry, self.state_dir)
        self.server = ApiServer(self.registry, token=self.token)
        self.kubeconfig_path = self.state_dir / "kubeconfig.yaml"
        self.url = ""
        self.kubelet = None
        self._runner: web.AppRunner | None = None

    def _bootstrap(self) -> None:
        for name in BOOTSTRAP_NAMESPACES:
            self.registry.create(NAMESPACE, None, {"metadata": {"name": name}})
        self.registry.create(NODE, None, node_manifest(NODE_NAME))
        self.registry.create(SNAPSHOT_CLASS, None, default_class_manifest())

    @property
    def access(self) -> ClusterAccess:
        """What a raw HTTP client of the API server needs (available once started)."""
        return ClusterAccess(self.url, self.token, self.certificate.ca_pem)

    async def start(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.state_dir, 0o700)
        await self.controllers.start()
        await self.snapshots.start()
        self._bootstrap()
        self._runner = web.AppRunner(
            self.server.app,
            access_log=None,
            handle_signals=False,
            shutdown_timeout=SHUTDOWN_SECONDS,
        )
        await self._runner.setup()
        site = web.TCPSite(
            self._runner, self.host, self.port, ssl_context=self.certificate.server_context()
        )
        await site.start()
        self.port = self._runner.addresses[0][1]
        url_host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        url_host = f"[{url_host}]" if ":" in url_host else url_host
        self.url = f"https://{url_host}:{self.port}"
        config = kubeconfig(self.url, self.token, self.certificate.ca_pem)
        write_private(self.kubeconfig_path, yaml.safe_dump(config, sort_keys=False))
        log.info("devcluster API server listening on %s", self.url)
        if self.kubelet_mode != "none":
            from .kubelet import Kubelet  # another module; imported only when wanted

            self.kubelet = Kubelet(self.url, self.state_dir, self.kubelet_mode, token=self.token,
                                   ssl=self.access.ssl_context(), isolation=self.isolation,
                                   private_paths=self.private_paths,
                                   volume_sync_seconds=self.volume_sync_seconds)  # fmt: skip
            await self.kubelet.start()
            self.server.node_streams = self.kubelet

    async def stop(self) -> None:
        """Kubelet first (it stops every pod process through the API), then the server."""
        if self.kubelet is not None:
            self.server.node_streams = None
            await self.kubelet.stop()
            self.kubelet = None
        await self.snapshots.stop()
        await self.controllers.stop()
        self.store.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner may read, replacing it atomically."""
    partial = path.with_name(path.name + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(partial, 0o600)
    partial.replace(path)
