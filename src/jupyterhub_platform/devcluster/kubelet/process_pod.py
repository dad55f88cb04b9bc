"""Process mode: each container of a pod runs as a local process.

Init containers run to completion one after the other, then all containers start together
(sidecars share the pod IP and the volume directories, like containers sharing a pod's network
and mounts). Containers are not restarted: an exit is recorded as ``terminated`` and the pod
phase follows (Succeeded when all exit 0, else Failed), which is what Jobs and KubeSpawner's
poll need. The exception is Kubernetes' *native sidecar*, an init container with
``restartPolicy: Always``: it starts in its turn among the init containers without being waited
for, is restarted whenever it exits (after Kubernetes' back-off, :func:`restart_delay`), counts
towards the pod's readiness, never towards its phase, and is stopped once the containers have
exited.

When the kubelet isolates pods (isolation.py), the pod first gets a sandbox (namespaces, its own
IP) and every container runs there as its securityContext's user; otherwise the pod gets a
loopback IP and its containers run as plain processes of the kubelet's user. Either way each
container's stdout and stderr are kept whole in its log (containerlog.py), and ``pods/exec``
runs commands in the container's environment.

Volumes are set up first; one whose Secret/ConfigMap does not exist yet keeps the pod Pending
(FailedMount, retried) until it does, and while the pod runs such volumes follow their objects
(volume_sync.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
from collections.abc import AsyncIterator, Mapping
from functools import partial

from .. import procs
from ..nodeapi import (
    ExecOptions,
    ExecSession,
    ExecStartFailed,
    LogOptions,
    NodeStreamError,
    command_text,
)
from .api import ApiError
from .containerlog import ContainerLog
from .containers import ProcessSpec, all_containers, build_process_spec, referenced_objects
from .execsession import ProcessExec, exit_code
from .forward import loopback_ports
from .host_guard import refuse_on_host
from .isolation import (
    MountView,
    PodSandbox,
    SandboxError,
    container_plan,
    container_started,
    helper_command,
    primary_gid,
)
from .ownership import apply_fs_group
from .podnet import GATEWAY_IP, HOST_IP
from .probes import POLL_INTERVAL, probe_once, readiness_check
from .runtime import PodRuntime
from .security import Identity, container_identity, pod_fs_group
from .status import (
    FALLBACK_LOG_LINES,
    ContainerState,
    PodState,
    log_refusal,
    termination_message,
)
from .volume_sync import VolumeSync, until_mounted
from .volumes import (
    ContainerConfigError,
    MountPending,
    ObjectData,
    PodLayout,
    Volume,
    checked_name,
    checked_uid,
    materialize,
    object_data,
    plan_volumes,
    remove_pod_dirs,
    synced,
    volume_files,
)

# a ready container is only watched for its exit, which may be noticed a little later
EXIT_POLL_INTERVAL = 0.5
# how long an exited container's output may take to drain before its status is written
_LOG_DRAIN_SECONDS = 2.0
# Kubernetes' container restart back-off: 10 s, doubled up to 5 min, reset after 10 min running
BACKOFF_FIRST, BACKOFF_MAX, BACKOFF_RESET = 10.0, 300.0, 600.0
# how long a native sidecar gets to stop on SIGTERM once the containers have exited
_SIDECAR_STOP_SECONDS = 5.0
# the environment of the root helper itself (the container gets its own from the plan)
_HELPER_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
# volumes whose ownership fsGroup manages, and which of them are read-only
_OWNED_KINDS = ("persistentVolumeClaim", "emptyDir", "secret", "configMap", "other")
_READ_ONLY_KINDS = ("secret", "configMap")


def restart_delay(failures: int) -> float:
    """Seconds before the restart following ``failures`` earlier back-to-back exits."""
    return min(BACKOFF_FIRST * 2**failures, BACKOFF_MAX)


def is_native_sidecar(container: Mapping) -> bool:
    return container.get("restartPolicy") == "Always"


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
        self.layout: PodLayout | None = None
        self.processes: dict[str, procs.ManagedProcess] = {}
        self.logs: dict[str, ContainerLog] = {}
        self.specs: dict[str, ProcessSpec | ContainerConfigError] = {}
        self.identities: dict[str, Identity] = {}
        self.views: dict[str, MountView] = {}
        #: host PIDs of the isolated containers' own processes (exec joins their mounts)
        self.container_pids: dict[str, int] = {}
        self.sandbox: PodSandbox | None = None
        self.sessions: set[ProcessExec] = set()
        self.volume_sync: VolumeSync | None = None

    @property
    def isolated(self) -> bool:
        return self.ctx.isolation is not None

    async def run(self) -> None:
        await self.scheduled()
        spec = self.pod.get("spec", {})
        try:
            self.layout = PodLayout(
                self.ctx.state_dir,
                checked_name(self.namespace, "metadata.namespace"),
                checked_name(self.name, "metadata.name"),
                checked_uid(self.uid),
            )
        except ContainerConfigError as exc:
            await self.sandbox_failed(exc.message)
            return
        pod_ip = await self._network()
        if pod_ip is None:
            return
        # while init containers run, the others wait with the kubelet's PodInitializing
        waiting = "PodInitializing" if spec.get("initContainers") else "ContainerCreating"
        self.state = PodState(
            pod_ip=pod_ip,
            host_ip=GATEWAY_IP if self.isolated else HOST_IP,
            init=[
                ContainerState(c["name"], c.get("image", ""), restart_always=is_native_sidecar(c))
                for c in spec.get("initContainers") or []
            ],
            containers=[
                ContainerState(c["name"], c.get("image", ""), reason=waiting)
                for c in spec.get("containers") or []
            ],
        )
        await self.patch_status()
        try:
            self.specs = await self._prepare(pod_ip)
            if self.sandbox is not None:
                await self._connect_services()
        except ContainerConfigError as exc:
            self.state.failure = (exc.reason, exc.message)
            await self.event(exc.reason, exc.message, type="Warning")
            await self.patch_status()
            return
        except (SandboxError, OSError) as exc:  # e.g. a forwarded port the pod cannot get
            await self.sandbox_failed(f"Failed to set up the pod: {exc}")
            return
        sync = None
        if self.volume_sync is not None:
            sync = asyncio.create_task(self.volume_sync.run(), name=f"{self.key} volumes")
        try:
            await self._run_containers(spec)
        finally:
            if sync is not None:
                sync.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sync

    async def _run_containers(self, spec: Mapping) -> None:
        sidecars: dict[str, asyncio.Task] = {}
        try:
            for container, status in zip(
                spec.get("initContainers") or [], self.state.init, strict=True
            ):
                if not await self._start(container, status):
                    await self.patch_status()
                    return
                await self.patch_status()
                if status.restart_always:
                    keeper = self._keep_running(container, status)
                    sidecars[status.name] = asyncio.create_task(
                        keeper, name=f"{self.key} {status.name}"
                    )
                    continue
                await self._watch(container, status, readiness=False)
                if status.exit_code != 0:
                    return
            started = [
                (container, status)
                for container, status in zip(
                    spec.get("containers") or [], self.state.containers, strict=True
                )
                if await self._start(container, status)
            ]
            await self.patch_status()
            await asyncio.gather(*(self._watch(c, s, readiness=True) for c, s in started))
        finally:
            for task in sidecars.values():
                task.cancel()
            await asyncio.gather(*sidecars.values(), return_exceptions=True)
        await self._stop_sidecars(list(sidecars))

    async def _keep_running(self, container: Mapping, status: ContainerState) -> None:
        """A started native sidecar: watched, and restarted after each exit (with back-off)."""
        loop = asyncio.get_running_loop()
        failures, running = 0, True
        while True:
            began = loop.time()
            if running:
                await self._watch(container, status, readiness=True)
            if loop.time() - began >= BACKOFF_RESET:
                failures = 0
            delay = restart_delay(failures)
            failures += 1
            detail = f"exited with code {status.exit_code}" if running else status.message
            await self.event(
                "BackOff",
                f"Back-off restarting failed container {status.name} in pod {self.name} "
                f"({detail}); restarting in {delay:g}s",
                type="Warning",
                container=status.name,
            )
            status.back_off(f"back-off {delay:g}s restarting failed container={status.name} "
                            f"pod={self.name}")  # fmt: skip
            await self.patch_status()
            await asyncio.sleep(delay)
            running = await self._start(container, status)
            await self.patch_status()

    async def _stop_sidecars(self, names: list[str]) -> None:
        """The containers have exited: stop the native sidecars, as Kubernetes does then."""
        running = {n: self.processes[n] for n in names if n in self.processes}
        running = {n: p for n, p in running.items() if p.running()}
        await _terminate(list(running.values()), _SIDECAR_STOP_SECONDS)
        for name, proc in running.items():
            code = exit_code(proc.returncode)
            self.container_state(name).terminate(code, "Completed" if code == 0 else "Error")
        if running:
            await self.patch_status()

    async def _network(self) -> str | None:
        """The pod's IP: a sandbox with its own network namespace, or a loopback address."""
        if not self.isolated:
            return await self.allocate_ip(container_ports(self.pod))
        try:
            self.sandbox = await PodSandbox.create(self.layout, self.name)
            ip = await self.sandbox.connect(self.ctx.isolation.addresses)
            self.sandbox.write_etc(self.name)
            return ip
        except (SandboxError, OSError, asyncio.TimeoutError) as exc:
            await self.sandbox_failed(f"Failed to create pod sandbox: {exc}")
            return None

    async def _connect_services(self) -> None:
        """Forward the host services the containers are given (and the API server) into the pod."""
        values = [
            v for s in self.specs.values() if isinstance(s, ProcessSpec) for v in s.env.values()
        ]
        ports = loopback_ports(values) | {self.ctx.api_port}
        ports -= set(container_ports(self.pod))
        await self.sandbox.forward(ports)

    async def _get_object(self, kind: str, name: str) -> dict | None:
        return await self.ctx.api.get_or_none(f"/api/v1/namespaces/{self.namespace}/{kind}/{name}")

    async def _fetch_objects(self) -> ObjectData:
        objects = {}
        for kind, name in referenced_objects(self.pod):
            try:
                obj = await self._get_object(kind, name)
            except ApiError as exc:
                raise MountPending(f"cannot read {kind} {name!r}: {exc}") from exc
            if obj is not None:
                objects[(kind, name)] = object_data(kind, obj)
        return objects

    async def _mount(self) -> tuple[dict[str, Volume], ObjectData]:
        """The volumes on disk, once every object they show exists (retried until then)."""

        async def attempt() -> tuple[dict[str, Volume], ObjectData]:
            volumes = plan_volumes(self.pod, self.layout)
            objects = await self._fetch_objects()
            materialize(volumes, objects)
            return volumes, objects

        async def report(pending: MountPending) -> None:
            await self.event(pending.reason, pending.message, type="Warning")

        return await until_mounted(attempt, report)

    async def _prepare(self, pod_ip: str) -> dict[str, ProcessSpec | ContainerConfigError]:
        """Volumes on disk and a process spec (or the reason there is none) per container."""
        volumes, objects = await self._mount()
        specs: dict[str, ProcessSpec | ContainerConfigError] = {}
        for container in all_containers(self.pod):
            try:
                spec = build_process_spec(
                    self.pod,
                    container,
                    layout=self.layout,
                    volumes=volumes,
                    objects=objects,
                    pod_ip=pod_ip,
                    host_ip=GATEWAY_IP if self.isolated else HOST_IP,
                    bin_dir=os.path.dirname(sys.executable),
                    host_env=os.environ,
                    own_network=self.isolated,
                )
                for directory in spec.make_dirs:
                    directory.mkdir(parents=True, exist_ok=True)
                _termination_file(spec)
                if self.isolated:
                    identity = container_identity(self.pod, container, primary_gid)
                    self.identities[spec.name] = identity
                    self.views[spec.name] = self.ctx.isolation.view(spec, spec.mounts, self.layout)
                    if spec.env.get("HOME") == str(self.layout.home_dir):
                        os.chown(self.layout.home_dir, identity.uid, identity.gid)
                specs[container["name"]] = spec
            except ContainerConfigError as exc:
                specs[container["name"]] = exc
        fs_group = pod_fs_group(self.pod) if self.isolated else None
        if fs_group is not None:
            owned = [v for v in volumes.values() if v.kind in _OWNED_KINDS]
            for volume in owned:
                read_only = volume.kind in _READ_ONLY_KINDS
                await asyncio.to_thread(apply_fs_group, volume.path, fs_group, read_only=read_only)
        shown = synced(volumes)
        if shown:  # renewed files get the same ownership as those mounted first
            own = None
            if fs_group is not None:
                own = partial(apply_fs_group, fs_group=fs_group, read_only=True)
            self.volume_sync = VolumeSync(
                shown,
                {v.name: volume_files(v, objects) for v in shown},
                self._get_object,
                period=self.ctx.volume_sync_seconds,
                own=own,
            )
        return specs

    async def _start(self, container: Mapping, status: ContainerState) -> bool:
        """Start one container's process; on failure record why and post a Warning."""
        init = status in self.state.init and not status.restart_always  # a sidecar is not skipped
        refused = await refuse_on_host(self, container, status, init=init)
        if refused is not None:  # host privileges asked for: not run here (host_guard)
            return refused
        name, image = container["name"], container.get("image", "")
        await self.event("Pulling", f'Pulling image "{image}"', container=name)
        await self.event(
            "Pulled", f'Container image "{image}" already present on machine', container=name
        )
        spec = self.specs[name]
        log = self.logs[name] = ContainerLog(self.layout.log_path(name))
        try:
            if isinstance(spec, ContainerConfigError):
                raise spec
            readiness_check(container)  # surfaces a bad probe before the process starts
            proc = await self._spawn(spec)
        except ContainerConfigError as exc:
            log.record_nothing()
            return await self._cannot_run(name, status, exc.reason, exc.message)
        except (OSError, SandboxError) as exc:
            log.record_nothing()
            return await self._cannot_run(name, status, "ContainerCannotRun", f"exec: {exc}")
        log.record(proc.popen.stdout, proc.popen.stderr)
        self.processes[name] = proc
        status.run(f"process://{proc.pid}")
        await self.event("Created", f"Created container: {name}", container=name)
        await self.event("Started", f"Started container {name}", container=name)
        return True

    async def _spawn(self, spec: ProcessSpec) -> procs.ManagedProcess:
        label = f"{self.key}/{spec.name}"
        if not self.isolated:
            return procs.ManagedProcess(
                spec.argv, name=label, env=spec.env, cwd=spec.cwd, capture=True
            )
        plan = container_plan(
            spec,
            self.identities[spec.name],
            self.views[spec.name],
            sandbox_pid=self.sandbox.init_pid,
        )
        command = helper_command(plan, report_start=True)
        try:
            proc = procs.ManagedProcess(
                command.argv, name=label, env=_HELPER_ENV, capture=True, pass_fds=command.pass_fds
            )
        finally:
            command.close_child_ends()
        pid = await container_started(command.started)
        if pid is not None:  # else its setup failed: it exits with the reason in its log
            self.container_pids[spec.name] = pid
        return proc

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
        log = self.logs[name]
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(log.ended.wait(), _LOG_DRAIN_SECONDS)
        tail = log.tail_text(FALLBACK_LOG_LINES)
        spec = self.specs.get(name)
        written = b""
        if isinstance(spec, ProcessSpec) and spec.termination_log is not None:
            with contextlib.suppress(OSError):
                written = spec.termination_log.read_bytes()
        container = next(c for c in all_containers(self.pod) if c["name"] == name)
        message = termination_message(container, written, code, tail)
        status.terminate(code, "Completed" if code == 0 else "Error", message)
        if code != 0 and not status.restart_always:  # a native sidecar's restart says it
            last = tail.splitlines()[-1] if tail else "(no output)"
            await self.event(
                "BackOff",
                f"Container {name} exited with code {code} and is not restarted by the "
                f"local kubelet; last log line: {last}",
                type="Warning",
                container=name,
            )
        await self.patch_status()

    # pods/log and pods/exec --------------------------------------------------------------
    def container_log(self, container: str, options: LogOptions) -> AsyncIterator[bytes]:
        refusal = log_refusal(self.container_state(container), container, self.name,
                              previous=options.previous)  # fmt: skip
        log = self.logs.get(container)
        if refusal is None and log is None:
            refusal = f'container "{container}" in pod "{self.name}" is waiting to start: ContainerCreating'
        if refusal is not None:
            raise NodeStreamError(400, refusal)
        return log.serve(options)

    async def exec(self, container: str, options: ExecOptions) -> ExecSession:
        state = self.container_state(container)
        proc = self.processes.get(container)
        spec = self.specs.get(container)
        if state is None or state.state != "running" or proc is None or not proc.running():
            raise NodeStreamError(500, f'container not found ("{container}")')
        assert isinstance(spec, ProcessSpec)
        program = options.command[0]
        found = (
            shutil.which(program, path=spec.env.get("PATH", "")) if "/" not in program else program
        )
        if found is None or not os.access(found, os.X_OK):
            raise ExecStartFailed(
                f'exec {command_text(options.command)}: exec: "{program}": executable file '
                "not found in $PATH"
            )
        if not self.isolated:
            session = await ProcessExec.start(
                [found, *options.command[1:]], options, env=spec.env, cwd=str(spec.cwd)
            )
        else:
            target = self.container_pids.get(container)
            if target is None:
                raise NodeStreamError(500, f'container not found ("{container}")')
            plan = container_plan(
                spec, self.identities[container], None, sandbox_pid=self.sandbox.init_pid,
                argv=options.command, tty=options.tty, join_mounts_of=target,
            )  # fmt: skip
            command = helper_command(plan)
            try:
                session = await ProcessExec.start(
                    command.argv, options, env=_HELPER_ENV, cwd=None, pass_fds=command.pass_fds
                )
            finally:
                command.close_child_ends()
        self.sessions.add(session)
        session.on_close = self.sessions.discard
        return session

    async def stop_workloads(self, grace: float) -> None:
        for session in list(self.sessions):
            await session.kill()
        self.sessions.clear()
        await _terminate(list(self.processes.values()), grace)
        if self.sandbox is not None:
            await self.sandbox.destroy()
        for log in self.logs.values():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(log.ended.wait(), _LOG_DRAIN_SECONDS)
            await log.close()
        if self.layout is not None:
            remove_pod_dirs(self.layout)


async def _terminate(running: list[procs.ManagedProcess], grace: float) -> None:
    """SIGTERM to each process group, SIGKILL to what is left after ``grace`` seconds."""
    for proc in running:
        proc.signal_group(signal.SIGTERM)
    with contextlib.suppress(procs.WaitTimeout):
        await procs.wait_for(
            lambda: not any(p.running() for p in running), timeout=grace, what="SIGTERM"
        )
    await asyncio.gather(*(proc.astop(0) for proc in running))


def _termination_file(spec: ProcessSpec) -> None:
    """An empty file at the container's terminationMessagePath that any of its users may write,
    as the kubelet creates one."""
    if spec.termination_log is not None:
        spec.termination_log.parent.mkdir(parents=True, exist_ok=True)
        spec.termination_log.write_bytes(b"")
        os.chmod(spec.termination_log, 0o666)
