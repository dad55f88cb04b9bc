"""Light mode: pods answer HTTP from inside the kubelet, no processes (for load tests).

One aiohttp application serves every pod: each pod adds one listening socket on its IP and port,
and a request finds its pod by the address it arrived on. Per pod that costs a socket and a
small dict entry. A pod answers what JupyterHub's health check and the proxy need: any GET under
its base URL (``JUPYTERHUB_SERVICE_PREFIX``), ``/api`` and ``{prefix}api`` with a version, and
``{prefix}api/status``.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

from aiohttp import web

from ..nodeapi import LogOptions
from .podnet import HOST_IP
from .runtime import PodRuntime
from .status import ContainerState, PodState, now_rfc3339

DEFAULT_PORT = 8888
_URL_PORT_RE = re.compile(r"^[a-z]+://[^/:]+:(\d+)")


@dataclass(frozen=True)
class LightTarget:
    """Where a light pod listens and the base URL it serves."""

    port: int
    prefix: str


def _env(container: Mapping, name: str) -> str | None:
    for item in container.get("env") or []:
        if item.get("name") == name and "value" in item:
            return str(item["value"])
    return None


def light_target(pod: Mapping) -> LightTarget:
    """The port (first containerPort, else JUPYTERHUB_SERVICE_URL's, else 8888) and prefix."""
    containers = pod.get("spec", {}).get("containers") or [{}]
    first = containers[0]
    port = next((int(p["containerPort"]) for p in first.get("ports") or []), None)
    if port is None:
        match = _URL_PORT_RE.match(_env(first, "JUPYTERHUB_SERVICE_URL") or "")
        port = int(match.group(1)) if match else DEFAULT_PORT
    prefix = _env(first, "JUPYTERHUB_SERVICE_PREFIX") or "/"
    if not prefix.endswith("/"):
        prefix += "/"
    return LightTarget(port=port, prefix=prefix)


class LightServer:
    """The one HTTP application behind every light pod's socket."""

    def __init__(self) -> None:
        self._pods: dict[tuple[str, int], tuple[str, str]] = {}  # (ip, port) → (prefix, started)
        self._sites: dict[tuple[str, int], web.TCPSite] = {}
        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        self._setup = False

    async def add(self, ip: str, target: LightTarget) -> None:
        if not self._setup:
            await self._runner.setup()
            self._setup = True
        site = web.TCPSite(self._runner, ip, target.port)
        await site.start()
        self._sites[(ip, target.port)] = site
        self._pods[(ip, target.port)] = (target.prefix, now_rfc3339())

    async def remove(self, ip: str, port: int) -> None:
        self._pods.pop((ip, port), None)
        site = self._sites.pop((ip, port), None)
        if site is not None:
            await site.stop()

    async def close(self) -> None:
        if self._setup:
            await self._runner.cleanup()
            self._setup = False
        self._sites.clear()
        self._pods.clear()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        pod = self._pods.get(tuple(sockname[:2])) if sockname else None
        if pod is None:
            raise web.HTTPNotFound()
        prefix, started = pod
        path = request.path
        if path in ("/api", f"{prefix}api"):
            return web.json_response({"version": "2.x"})
        if path == f"{prefix}api/status":
            return web.json_response(
                {"started": started, "last_activity": started, "connections": 0, "kernels": 0}
            )
        if path.startswith(prefix) or path + "/" == prefix:
            return web.Response(text="light-mode pod\n")
        raise web.HTTPNotFound()


class LightPod(PodRuntime):
    """A pod that is Running and Ready as soon as its socket listens."""

    def __init__(self, pod: Mapping, ctx, server: LightServer):
        super().__init__(pod, ctx)
        self.server = server
        self.target = light_target(pod)
        self.ip: str | None = None

    async def run(self) -> None:
        await self.scheduled()
        self.ip = await self.allocate_ip([self.target.port])
        if self.ip is None:
            return
        await self.server.add(self.ip, self.target)
        containers = []
        for container in self.pod.get("spec", {}).get("containers") or []:
            status = ContainerState(container["name"], container.get("image", ""))
            status.run(f"light://{self.ip}")
            status.ready = True
            containers.append(status)
            await self.event("Started", f"Started container {status.name}", container=status.name)
        self.state = PodState(pod_ip=self.ip, host_ip=HOST_IP, containers=containers)
        await self.patch_status()

    async def stop_workloads(self, grace: float) -> None:
        if self.ip is not None:
            await self.server.remove(self.ip, self.target.port)

    def container_log(self, container: str, options: LogOptions) -> AsyncIterator[bytes]:
        """A light pod writes no output: its logs are empty."""
        return _no_output()


async def _no_output() -> AsyncIterator[bytes]:
    return
    yield b""  # (makes this an async generator that ends at once)
