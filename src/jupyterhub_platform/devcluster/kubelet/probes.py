"""Container readiness on the pod IP.

A container is ready when its ``readinessProbe`` (httpGet or tcpSocket) passes; without one, when
its first ``containerPort`` accepts TCP; without ports, once it started. (KubeSpawner sees a pod
as running only when every container is ready.) Probes are polled quickly rather than every
``periodSeconds`` so local spawns are fast; ``exec`` probes, thresholds and liveness/startup
probes are not emulated.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field

import aiohttp

from .volumes import ContainerConfigError

POLL_INTERVAL = 0.1


@dataclass(frozen=True)
class ReadinessCheck:
    kind: str  # "http" | "tcp" | "started"
    port: int = 0
    path: str = "/"
    scheme: str = "http"
    headers: Mapping[str, str] = field(default_factory=dict)
    initial_delay: float = 0.0
    timeout: float = 1.0


def _port(container: Mapping, value: object) -> int:
    if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        return int(value)
    for port in container.get("ports") or []:
        if port.get("name") == value:
            return int(port["containerPort"])
    raise ContainerConfigError(
        "CreateContainerConfigError",
        f"container {container.get('name')!r}: readinessProbe port {value!r} names no containerPort",
    )


def readiness_check(container: Mapping) -> ReadinessCheck:
    """How to tell that ``container`` is ready (pure)."""
    probe = container.get("readinessProbe") or {}
    timing = {
        "initial_delay": float(probe.get("initialDelaySeconds", 0)),
        "timeout": float(probe.get("timeoutSeconds", 1)),
    }
    if "httpGet" in probe:
        spec = probe["httpGet"]
        return ReadinessCheck(
            kind="http",
            port=_port(container, spec.get("port")),
            path=spec.get("path") or "/",
            scheme=str(spec.get("scheme") or "HTTP").lower(),
            headers={h["name"]: h["value"] for h in spec.get("httpHeaders") or []},
            **timing,
        )
    if "tcpSocket" in probe:
        return ReadinessCheck(
            kind="tcp", port=_port(container, probe["tcpSocket"].get("port")), **timing
        )
    if probe:  # exec / grpc: not emulated
        return ReadinessCheck(kind="started", **timing)
    ports = container.get("ports") or []
    if ports:
        return ReadinessCheck(kind="tcp", port=int(ports[0]["containerPort"]))
    return ReadinessCheck(kind="started")


async def probe_once(check: ReadinessCheck, ip: str, session: aiohttp.ClientSession) -> bool:
    """Whether ``check`` passes against ``ip`` right now."""
    if check.kind == "started":
        return True
    try:
        if check.kind == "tcp":
            _, writer = await asyncio.wait_for(
                asyncio.open_connection(ip, check.port), check.timeout
            )
            writer.close()
            return True
        url = f"{check.scheme}://{ip}:{check.port}{check.path}"
        async with session.get(
            url,
            headers=check.headers,
            allow_redirects=False,
            ssl=False,
            timeout=aiohttp.ClientTimeout(total=check.timeout),
        ) as resp:
            return 200 <= resp.status < 400
    except (OSError, asyncio.TimeoutError, aiohttp.ClientError):
        return False
