"""Process mode: each container of a pod runs as a local process on the pod's loopback IP.

Init containers run to completion one after the other, then all containers start together
(sidecars share the pod IP and the volume directories, like containers sharing a pod's network
and mounts). Containers are not restarted: an exit is recorded as ``terminated`` and the pod
phase follows (Succeeded when all exit 0, else Failed), which is what Jobs and KubeSpawner's
poll need.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
from collections.abc import Mapping

from .. import procs
from .api import ApiError
from .containers import ProcessSpec, all_containers, build_process_spec, referenced_objects
from .host_guard import refuse_on_host
from .podnet import HOST_IP
from .probes import POLL_INTERVAL, probe_once, readiness_check
from .runtime import PodRuntime
from .status import ContainerState, PodState
from .volumes import (
    ContainerConfigError,
    ObjectData,
    PodLayout,
    checked_name,
    materialize,
    object_data,
    plan_volumes,
    remove_pod_dirs,
)

_LOG_TAIL_LINES = 20
# a ready container is only watched for its exit, which may be noticed a little later
EXIT_POLL_INTERVAL = 0.5


def exit_code(returncode: int) -> int:
    """Popen's return code as a container exit code (a signal N is 128+N, as in a shell)."""
    return 128 - returncode if returncode < 0 else returncode


def container_ports(pod: Mapping) -> list[int]:
    return [
        int(port["containerPort"])
        for container in pod.get("spec", {}).get("containers") or []
        for port in container.get("ports") or []
        if "containerPort" in port
    ]


class ProcessPod(PodRuntime):
    def __init__(self, pod: Mapping, ctx):
        super().__init__(pod, ctx)
        self.layout = PodLayout(ctx.state_dir, self.namespace, self.name)
        self.processes: dict[str, procs.ManagedProcess] = {}

    async def run(self) -> None:
        await self.scheduled()
        spec = self.pod.get("spec", {})
        pod_ip = await self.allocate_ip(container_ports(self.pod))
        if pod_ip is None:
            return
        self.state = PodState(
            pod_ip=pod_ip,
            host_ip=HOST_IP,
            init=[
                ContainerState(c["name"], c.get("image", ""))
                for c in spec.get("initContainers") or []
            ],
            containers=[
                ContainerState(c["name"], c.get("image", "")) for c in spec.get("containers") or []
            ],
        )
        await self.patch_status()
        try:
            specs = await self._prepare(pod_ip)
        except ContainerConfigError as exc:
            self.state.failure = (exc.reason, exc.message)
            await self.event(exc.reason, exc.message, type="Warning")
            await self.patch_status()
            return

        for container, status in zip(
            spec.get("initContainers") or [], self.state.init, strict=True
        ):
            if not await self._start(container, status, specs):
                await self.patch_status()
                return
            await self.patch_status()
            await self._watch(container, status, readiness=False)
            if status.exit_code != 0:
                return
        started = [
            (container, status)
            for container, status in zip(
                spec.get("containers") or [], self.state.containers, strict=True
            )
            if await self._start(container, status, specs)
        ]
        await self.patch_status()
        await asyncio.gather(*(self._watch(c, s, readiness=True) for c, s in started))

    async def _fetch_objects(self) -> ObjectData:
        objects = {}
        for kind, name in referenced_objects(self.pod):
            try:
                obj = await self.ctx.api.get_or_none(
                    f"/api/v1/namespaces/{self.namespace}/{kind}/{name}"
                )
            except ApiError as exc:
                raise ContainerConfigError(
                    "FailedMount", f"cannot read {kind} {name!r}: {exc}"
                ) from exc
            if obj is not None:
                objects[(kind, name)] = object_data(kind, obj)
        return objects

    async def _prepare(self, pod_ip: str) -> dict[str, ProcessSpec | ContainerConfigError]:
        """Volumes on disk and a process spec (or the reason there is none) per container."""
        checked_name(self.namespace, "metadata.namespace")
        checked_name(self.name, "metadata.name")
        shutil.rmtree(self.layout.pod_dir, ignore_errors=True)  # a previous pod of that name
        volumes = plan_volumes(self.pod, self.layout)
        objects = await self._fetch_objects()
        materialize(volumes, objects)
        specs: dict[str, ProcessSpec | ContainerConfigError] = {}
        for container in all_containers(self.pod):
            try:
                specs[container["name"]] = build_process_spec(
                    self.pod,
                    container,
                    layout=self.layout,
                    volumes=volumes,
                    objects=objects,
                    pod_ip=pod_ip,
                    host_ip=HOST_IP,
                    bin_dir=os.path.dirname(sys.executable),
                    host_env=os.environ,
                )
            except ContainerConfigError as exc:
                specs[container["name"]] = exc
        return specs

    async def _start(self, container: Mapping, status: ContainerState, specs: Mapping) -> bool:
        """Start one container's process; on failure record why and post a Warning."""
        refused = await refuse_on_host(self, container, status, init=status in self.state.init)
        if refused is not None:  # host privileges asked for: not run here (host_guard)
            return refused
        name, image = container["name"], container.get("image", "")
        await self.event("Pulling", f'Pulling image "{image}"', container=name)
        await self.event(
            "Pulled", f'Container image "{image}" already present on machine', container=name
        )
        spec = specs[name]
        try:
            if isinstance(spec, ContainerConfigError):
                raise spec
            readiness_check(container)  # surfaces a bad probe before the process starts
            for directory in spec.make_dirs:
                directory.mkdir(parents=True, exist_ok=True)
            proc = procs.ManagedProcess(
                spec.argv,
                name=f"{self.key}/{name}",
                log_path=spec.log_path,
                env=spec.env,
                cwd=spec.cwd,
            )
        except ContainerConfigError as exc:
            return await self._cannot_run(name, status, exc.reason, exc.message)
        except OSError as exc:
            return await self._cannot_run(name, status, "ContainerCannotRun", f"exec: {exc}")
        self.processes[name] = proc
        status.run(f"process://{proc.pid}")
        await self.event("Created", f"Created container: {name}", container=name)
        await self.event("Started", f"Started container {name}", container=name)
        return True

    async def _cannot_run(
        self, name: str, status: ContainerState, reason: str, message: str
    ) -> bool:
        status.terminate(128, reason, message)
        await self.event("Failed", f"Error: {message}", type="Warning", container=name)
        return False

    async def _watch(self, container: Mapping, status: ContainerState, *, readiness: bool) -> None:
        """Mark the container ready when its check passes; record its exit."""
        if container["name"] not in self.processes:
            return  # not run on this host (host_guard)
        proc = self.processes[container["name"]]
        check = readiness_check(container) if readiness else None
        ready_after = asyncio.get_running_loop().time() + (check.initial_delay if check else 0)
        while proc.running():
            if (
                check is not None
                and not status.ready
                and asyncio.get_running_loop().time() >= ready_after
                and await probe_once(check, self.state.pod_ip, self.ctx.api.session)
            ):
                status.ready = True
                await self.patch_status()
            await asyncio.sleep(EXIT_POLL_INTERVAL if status.ready else POLL_INTERVAL)
        await self._exited(container["name"], status, proc)

    async def _exited(self, name: str, status: ContainerState, proc: procs.ManagedProcess) -> None:
        code = exit_code(proc.returncode)
        tail = proc.log_tail(_LOG_TAIL_LINES)
        status.terminate(code, "Completed" if code == 0 else "Error", tail)
        if code != 0:
            last = tail.splitlines()[-1] if tail else "(no output)"
            await self.event(
                "BackOff",
                f"Container {name} exited with code {code} and is not restarted by the "
                f"local kubelet; last log line: {last}",
                type="Warning",
                container=name,
            )
        await self.patch_status()

    async def stop_workloads(self, grace: float) -> None:
        running = list(self.processes.values())
        for proc in running:
            proc.signal_group(signal.SIGTERM)
        try:
            await procs.wait_for(
                lambda: not any(p.running() for p in running), timeout=grace, what="SIGTERM"
            )
        except procs.WaitTimeout:
            pass
        await asyncio.gather(*(proc.astop(0) for proc in running))
        remove_pod_dirs(self.layout)
