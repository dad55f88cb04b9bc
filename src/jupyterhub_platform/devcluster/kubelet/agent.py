"""The kubelet: watches all pods over the Kubernetes API and makes them real on this machine.

It is a plain API client (list + watch with resume, re-list on 410 Gone, reconnect on errors),
so it works against any API server. When the server has a Node (and so a scheduler binding pods
to it), the kubelet serves that node and takes the pods bound to it; without nodes it schedules
itself: it takes every pod and posts the ``Scheduled`` event. A pod is started when it has no
``status.podIP`` and no ``deletionTimestamp``; a pod that gets a ``deletionTimestamp`` is stopped
gracefully and then removed with ``gracePeriodSeconds=0``; a pod deleted outright just has its
workloads stopped.

It also serves the API server's ``pods/log`` and ``pods/exec`` for the pods it runs
(:class:`..nodeapi.NodeStreams`). As root it isolates pods (isolation.py) unless told not to.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl as ssl_module
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from ..nodeapi import ExecOptions, ExecSession, LogOptions, NodeStreamError
from .api import ApiClient, ApiError
from .events import EventRecorder
from .isolation import Isolation, unavailable_reason
from .light import LightPod, LightServer
from .podnet import PodNetwork
from .process_pod import ProcessPod
from .runtime import KubeletContext, PodRuntime
from .volume_sync import DEFAULT_SYNC_SECONDS

log = logging.getLogger(__name__)

MODES = ("process", "light")
ISOLATION = ("auto", "namespaces", "none")
"""How process pods are isolated: namespaces and their own users when possible ("auto"),
always ("namespaces": fail if impossible), or never ("none": plain processes of this user)."""
#: longest graceful-termination wait honoured (the Kubernetes default is 30 s)
MAX_GRACE_SECONDS = 30.0
#: grace given to pod processes when the kubelet itself stops, or a pod vanishes without grace
STOP_GRACE_SECONDS = 3.0
_WATCH_SECONDS = 300
_RECONNECT_DELAY = 0.5
_START_TIMEOUT = 30.0


def termination_grace(pod: Mapping) -> float:
    """The grace period of a deleting pod, bounded to [0, MAX_GRACE_SECONDS]."""
    meta, spec = pod.get("metadata", {}), pod.get("spec", {})
    grace = meta.get("deletionGracePeriodSeconds", spec.get("terminationGracePeriodSeconds", 30))
    return min(max(float(grace or 0), 0.0), MAX_GRACE_SECONDS)


class Kubelet:
    """Runs the pods of the API server at ``api_url`` as local processes ("process") or as
    in-process HTTP stubs ("light"), keeping per-pod state under ``state_dir``."""

    def __init__(
        self,
        api_url: str,
        state_dir: Path,
        mode: str = "process",
        *,
        token: str | None = None,
        ssl: ssl_module.SSLContext | None = None,
        isolation: str = "auto",
        private_paths: Sequence[Path] = (),
        volume_sync_seconds: float = DEFAULT_SYNC_SECONDS,
    ):
        """``volume_sync_seconds``: how often running pods' secret/configMap volumes are
        compared with their objects and rewritten when these changed (volume_sync.py)."""
        if mode not in MODES:
            raise ValueError(f"kubelet mode must be one of {MODES}, not {mode!r}")
        if isolation not in ISOLATION:
            raise ValueError(f"kubelet isolation must be one of {ISOLATION}, not {isolation!r}")
        if not volume_sync_seconds > 0:
            raise ValueError(
                f"kubelet volume_sync_seconds must be positive, not {volume_sync_seconds!r}"
            )
        self.mode = mode
        self.state_dir = Path(state_dir)
        self.api = ApiClient(api_url, token, ssl=ssl)
        node = socket.gethostname()
        self.ctx = KubeletContext(
            api=self.api,
            events=EventRecorder(self.api, node),
            network=PodNetwork(),
            state_dir=self.state_dir,
            node_name=node,
            scheduler=True,
            isolation=self._isolation(isolation, private_paths) if mode == "process" else None,
            api_port=urlsplit(api_url).port or 80,
            volume_sync_seconds=volume_sync_seconds,
        )
        self.light = LightServer() if mode == "light" else None
        self.pods: dict[str, PodRuntime] = {}  # by uid
        self._resource_version = ""
        self._watch_task: asyncio.Task | None = None
        self._live = asyncio.Event()
        #: how many times the pod watch was (re)opened, for diagnostics
        self.watch_connections = 0
        self._tasks: set[asyncio.Task] = set()

    def _isolation(self, wanted: str, private_paths: Sequence[Path]) -> Isolation | None:
        if wanted == "none":
            return None
        reason = unavailable_reason()
        if reason is None:
            return Isolation(self.state_dir, private_paths)
        if wanted == "namespaces":
            raise RuntimeError(f"kubelet: pods cannot be isolated: {reason}")
        log.warning(
            "kubelet: pods run as plain processes of this user, without isolation: %s", reason
        )
        return None

    async def start(self) -> None:
        """List the pods, take the new ones, and return once the watch is live."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        nodes = (await self.api.request("GET", "/api/v1/nodes")).get("items") or []
        if nodes:
            self.ctx.node_name = self.ctx.events.host = nodes[0]["metadata"]["name"]
            self.ctx.scheduler = False
        await self._relist()
        self._watch_task = asyncio.create_task(self._watch_loop(), name="kubelet watch")
        live = asyncio.create_task(self._live.wait())
        done, _ = await asyncio.wait(
            {live, self._watch_task}, timeout=_START_TIMEOUT, return_when=asyncio.FIRST_COMPLETED
        )
        if live not in done:
            live.cancel()
            await self.stop()
            raise RuntimeError(f"kubelet: the pod watch on {self.api.base_url} did not start")

    async def stop(self) -> None:
        """Stop every pod's workloads (SIGTERM, then SIGKILL), then the kubelet itself."""
        if self._watch_task is not None:
            self._watch_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch_task
            self._watch_task = None
        for task in list(self._tasks):
            task.cancel()
        runtimes = list(self.pods.values())
        self.pods.clear()
        results = await asyncio.gather(
            *(self._stop_runtime(r) for r in runtimes), return_exceptions=True
        )
        for runtime, result in zip(runtimes, results, strict=True):
            if isinstance(result, Exception):
                log.error("kubelet: stopping pod %s failed: %r", runtime.key, result)
        if self.light is not None:
            await self.light.close()
        await self.api.close()

    async def _stop_runtime(self, runtime: PodRuntime) -> None:
        for task in (runtime.termination, runtime.task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await runtime.stop_workloads(STOP_GRACE_SECONDS)

    async def _relist(self) -> None:
        """Take stock of all pods (at start, and when the watch fell too far behind)."""
        listing = await self.api.request("GET", "/api/v1/pods")
        self._resource_version = listing.get("metadata", {}).get("resourceVersion", "")
        items = listing.get("items") or []
        present = {item["metadata"].get("uid") for item in items}
        for uid in [uid for uid in self.pods if uid not in present]:
            self._gone(uid)
        for item in items:
            self._observe(item)

    async def _watch_loop(self) -> None:
        while True:
            params = {
                "watch": "true",
                "allowWatchBookmarks": "true",
                "timeoutSeconds": str(_WATCH_SECONDS),
            }
            if self._resource_version:
                params["resourceVersion"] = self._resource_version
            try:
                async for event in self.api.watch("/api/v1/pods", params, self._watch_opened):
                    if not await self._handle(event):
                        break
            except ApiError as exc:
                log.info("kubelet: pod watch interrupted (%s); reconnecting", exc)
                if exc.status == 410:
                    await self._relist_when_possible()
                else:
                    await asyncio.sleep(_RECONNECT_DELAY)
            except Exception:  # a malformed event must not end the kubelet's only watch
                log.exception("kubelet: pod watch failed; reconnecting")
                await asyncio.sleep(_RECONNECT_DELAY)

    def _watch_opened(self) -> None:
        self.watch_connections += 1
        self._live.set()

    async def _relist_when_possible(self) -> None:
        try:
            await self._relist()
        except ApiError as exc:
            log.info("kubelet: cannot list pods (%s); retrying", exc)
            await asyncio.sleep(_RECONNECT_DELAY)

    async def _handle(self, event: Mapping) -> bool:
        """Apply one watch event; False when the watch must be restarted from a fresh list."""
        kind, obj = event.get("type"), event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                await self._relist_when_possible()
            return False
        version = obj.get("metadata", {}).get("resourceVersion")
        if version:
            self._resource_version = version
        if kind == "DELETED":
            self._gone(obj["metadata"].get("uid"))
        elif kind in ("ADDED", "MODIFIED"):
            self._observe(obj)
        return True

    def _observe(self, pod: Mapping) -> None:
        """React to the current state of a pod: take it, or terminate it."""
        meta = pod.get("metadata", {})
        uid = meta.get("uid")
        runtime = self.pods.get(uid)
        if meta.get("deletionTimestamp"):
            if runtime is None:
                if self._owns(pod):  # e.g. a previous kubelet ran it: just finish its deletion
                    self._background(self._finish_deletion(pod))
            else:
                runtime.begin_termination(termination_grace(pod), delete=True)
        elif runtime is None and self._takes(pod):
            runtime = self.pods[uid] = self._runtime(pod)
            runtime.start()

    def _owns(self, pod: Mapping) -> bool:
        """Whether ``pod`` is this kubelet's: bound to its node, or unbound when it schedules."""
        node = (pod.get("spec") or {}).get("nodeName")
        return node == self.ctx.node_name or (self.ctx.scheduler and not node)

    def _takes(self, pod: Mapping) -> bool:
        """Whether to start ``pod``: owned and not yet started by anyone."""
        return self._owns(pod) and not (pod.get("status") or {}).get("podIP")

    def _runtime(self, pod: Mapping) -> PodRuntime:
        if self.light is not None:
            return LightPod(pod, self.ctx, self.light)
        return ProcessPod(pod, self.ctx)

    def _gone(self, uid: str | None) -> None:
        """The pod object is gone: stop its workloads if still running, then drop the runtime."""
        runtime = self.pods.get(uid)
        if runtime is None:
            return
        runtime.begin_termination(STOP_GRACE_SECONDS, delete=False)
        runtime.termination.add_done_callback(
            lambda _: self.pods.pop(uid) if self.pods.get(uid) is runtime else None
        )

    async def _finish_deletion(self, pod: Mapping) -> None:
        meta = pod["metadata"]
        path = f"/api/v1/namespaces/{meta.get('namespace')}/pods/{meta['name']}"
        with contextlib.suppress(ApiError):
            await self.api.request("DELETE", path, params={"gracePeriodSeconds": "0"})

    def _background(self, coro) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # NodeStreams: pods/log and pods/exec ----------------------------------------------
    def _runtime_of(self, pod: Mapping) -> PodRuntime:
        runtime = self.pods.get(pod.get("metadata", {}).get("uid"))
        if runtime is None:
            raise NodeStreamError(404, f'pod "{pod["metadata"]["name"]}" does not exist')
        return runtime

    def container_log(
        self, pod: Mapping, container: str, options: LogOptions
    ) -> AsyncIterator[bytes]:
        return self._runtime_of(pod).container_log(container, options)

    async def exec(self, pod: Mapping, container: str, options: ExecOptions) -> ExecSession:
        return await self._runtime_of(pod).exec(container, options)
