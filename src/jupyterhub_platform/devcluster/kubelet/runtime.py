"""What every pod runtime shares: status patches, events, graceful termination.

A runtime owns one pod: :meth:`PodRuntime.run` takes it from scheduled to running (a task the
kubelet starts), :meth:`PodRuntime.terminate` stops it and, for a graceful deletion, removes the
pod object once its workloads are gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..nodeapi import ExecOptions, ExecSession, LogOptions, NodeStreamError
from .api import ApiClient, ApiError
from .events import SCHEDULER, EventRecorder
from .podnet import HOST_IP, AddressUnavailable, PodNetwork
from .status import ContainerState, PodState, render_status

if TYPE_CHECKING:
    from .isolation import Isolation

log = logging.getLogger(__name__)


@dataclass
class KubeletContext:
    """The kubelet-wide services a pod runtime uses."""

    api: ApiClient
    events: EventRecorder
    network: PodNetwork
    state_dir: Path
    node_name: str
    #: no scheduler binds pods (the server has no nodes): the kubelet posts ``Scheduled`` itself
    scheduler: bool
    #: pods get namespaces and their own users (the kubelet runs as root); None: plain processes
    isolation: Isolation | None = None
    #: the API server's port on 127.0.0.1 (forwarded into namespaced pods)
    api_port: int = 0
    #: how often running pods' secret/configMap volumes follow their objects (volume_sync.py)
    volume_sync_seconds: float = 1.0


class PodRuntime:
    def __init__(self, pod: Mapping, ctx: KubeletContext):
        self.pod = pod
        self.ctx = ctx
        meta = pod["metadata"]
        self.namespace: str = meta.get("namespace", "default")
        self.name: str = meta["name"]
        self.uid: str = meta.get("uid", "")
        self.state: PodState | None = None
        self.task: asyncio.Task | None = None
        self.termination: asyncio.Task | None = None
        self._patch_lock = asyncio.Lock()

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def restart_policy(self) -> str:
        return self.pod.get("spec", {}).get("restartPolicy", "Always")

    def start(self) -> None:
        self.task = asyncio.create_task(self._logged(self.run(), "running"), name=self.key)

    def begin_termination(self, grace: float, *, delete: bool) -> None:
        """Start :meth:`terminate` unless a termination is already under way."""
        if self.termination is None:
            self.termination = asyncio.create_task(
                self._logged(self.terminate(grace, delete=delete), "stopping"), name=self.key
            )

    async def _logged(self, step, what: str) -> None:
        """Run a lifecycle step; a bug in it is logged instead of vanishing with its task."""
        try:
            await step
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("kubelet: %s pod %s failed", what, self.key)

    async def run(self) -> None:
        raise NotImplementedError

    async def stop_workloads(self, grace: float) -> None:
        """Stop whatever runs for this pod, within ``grace`` seconds before forcing it."""
        raise NotImplementedError

    def container_names(self) -> list[str]:
        return [c.get("name", "") for c in self.pod.get("spec", {}).get("containers") or []]

    async def event(self, reason: str, message: str, **kwargs) -> None:
        await self.ctx.events.record(self.pod, reason, message, **kwargs)

    async def scheduled(self) -> None:
        if not self.ctx.scheduler:
            return
        await self.event(
            "Scheduled",
            f"Successfully assigned {self.key} to {self.ctx.node_name}",
            component=SCHEDULER,
        )

    async def allocate_ip(self, ports) -> str | None:
        """The pod's loopback IP; None (and the pod marked failed, as a sandbox error) if none."""
        try:
            return self.ctx.network.allocate(ports)
        except AddressUnavailable as exc:
            await self.sandbox_failed(str(exc))
            return None

    async def sandbox_failed(self, message: str) -> None:
        """The pod cannot get a sandbox (network): it fails, as FailedCreatePodSandBox."""
        self.state = PodState(
            pod_ip="", host_ip=HOST_IP, failure=("FailedCreatePodSandBox", message)
        )
        await self.event("FailedCreatePodSandBox", message, type="Warning")
        await self.patch_status()

    def container_state(self, name: str) -> ContainerState | None:
        if self.state is None:
            return None
        return next((c for c in self.state.init + self.state.containers if c.name == name), None)

    def container_log(self, container: str, options: LogOptions) -> AsyncIterator[bytes]:
        """``pods/log`` for one container; :class:`NodeStreamError` when there is none."""
        raise NodeStreamError(
            400, f'container "{container}" in pod "{self.name}" is waiting to start: no logs yet'
        )

    async def exec(self, container: str, options: ExecOptions) -> ExecSession:
        raise NodeStreamError(500, f'container not found ("{container}")')

    async def patch_status(self) -> None:
        """Write the whole current status; a pod that is already gone is not an error."""
        if self.state is None:
            return
        async with self._patch_lock:
            body = {"status": render_status(self.state)}
            try:
                await self.ctx.api.request(
                    "PATCH",
                    f"/api/v1/namespaces/{self.namespace}/pods/{self.name}/status",
                    json=body,
                    content_type="application/merge-patch+json",
                )
            except ApiError as exc:
                if exc.status != 404:
                    log.warning("kubelet: cannot update status of pod %s: %s", self.key, exc)

    async def cancel_run(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    async def terminate(self, grace: float, *, delete: bool) -> None:
        """Stop the pod; with ``delete``, post ``Killing`` first and remove the pod object after."""
        await self.cancel_run()
        if delete:
            for name in self.container_names():
                await self.event("Killing", f"Stopping container {name}", container=name)
        await self.stop_workloads(grace)
        if delete:
            try:
                await self.ctx.api.request(
                    "DELETE",
                    f"/api/v1/namespaces/{self.namespace}/pods/{self.name}",
                    params={"gracePeriodSeconds": "0"},
                    json={
                        "kind": "DeleteOptions",
                        "apiVersion": "v1",
                        "gracePeriodSeconds": 0,
                        "preconditions": {"uid": self.uid},
                    },
                )
            except ApiError as exc:
                if exc.status not in (404, 409):
                    log.warning("kubelet: cannot delete terminated pod %s: %s", self.key, exc)
