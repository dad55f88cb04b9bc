"""A whole development cluster in one process: API server, controllers and (optionally) kubelet."""

from __future__ import annotations

import logging
from pathlib import Path

import yaml
from aiohttp import web

from .apiserver import ApiServer
from .controllers import NODE_NAME, Controllers, node_manifest
from .registry import Registry
from .resources import NAMESPACE, NODE
from .store import Store

log = logging.getLogger(__name__)

KUBELET_MODES = ("process", "light", "none")
BOOTSTRAP_NAMESPACES = ("default", "kube-system", "kube-public")
SHUTDOWN_SECONDS = 2.0


def kubeconfig(url: str, namespace: str = "default") -> dict:
    """A kubeconfig for an unauthenticated cluster at ``url``."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "devcluster", "cluster": {"server": url}}],
        "users": [{"name": "devcluster", "user": {}}],
        "contexts": [{"name": "devcluster",
                      "context": {"cluster": "devcluster", "user": "devcluster", "namespace": namespace}}],
        "current-context": "devcluster",
        "preferences": {},
    }


class DevCluster:
    """The Kubernetes API emulator plus a kubelet, started and stopped together."""

    def __init__(self, state_dir: Path, *, host: str = "127.0.0.1", port: int = 0,
                 kubelet: str = "process"):
        if kubelet not in KUBELET_MODES:
            raise ValueError(f"kubelet mode must be one of {', '.join(KUBELET_MODES)}, not {kubelet!r}")
        self.state_dir = Path(state_dir)
        self.host = host
        self.port = port
        self.kubelet_mode = kubelet
        self.store = Store()
        self.registry = Registry(self.store)
        self.controllers = Controllers(self.registry, kubelet_manages_pods=kubelet != "none")
        self.server = ApiServer(self.registry)
        self.kubeconfig_path = self.state_dir / "kubeconfig.yaml"
        self.url = ""
        self.kubelet = None
        self._runner: web.AppRunner | None = None

    def _bootstrap(self) -> None:
        for name in BOOTSTRAP_NAMESPACES:
            self.registry.create(NAMESPACE, None, {"metadata": {"name": name}})
        self.registry.create(NODE, None, node_manifest(NODE_NAME))

    async def start(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        await self.controllers.start()
        self._bootstrap()
        self._runner = web.AppRunner(self.server.app, access_log=None, handle_signals=False,
                                     shutdown_timeout=SHUTDOWN_SECONDS)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        url_host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        url_host = f"[{url_host}]" if ":" in url_host else url_host
        self.url = f"http://{url_host}:{self.port}"
        self.kubeconfig_path.write_text(yaml.safe_dump(kubeconfig(self.url), sort_keys=False))
        log.info("devcluster API server listening on %s", self.url)
        if self.kubelet_mode != "none":
            from .kubelet import Kubelet  # another module; imported only when wanted

            self.kubelet = Kubelet(self.url, self.state_dir, self.kubelet_mode)
            await self.kubelet.start()

    async def stop(self) -> None:
        """Kubelet first (it stops every pod process through the API), then the server."""
        if self.kubelet is not None:
            await self.kubelet.stop()
            self.kubelet = None
        await self.controllers.stop()
        self.store.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
