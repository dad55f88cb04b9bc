"""A pod's status as the kubelet reports it: phase, conditions, container statuses (pure).

The kubelet keeps one :class:`PodState` per pod and writes :func:`render_status` as a whole
through the status subresource (merge patches replace lists, so each patch carries all of them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

MAX_TERMINATION_MESSAGE = 4096
"""Bytes of a container's termination message file the kubelet reports."""
FALLBACK_LOG_LINES, FALLBACK_LOG_BYTES = 80, 2048
"""How much of the log ``FallbackToLogsOnError`` reports: the last 80 lines, at most 2 KiB."""


def termination_message(container: dict, written: bytes, code: int, log_tail: str) -> str:
    """The ``state.terminated.message`` Kubernetes reports for an exited ``container`` (its spec):
    what it ``written`` to its ``terminationMessagePath`` (at most 4 KiB); with
    ``terminationMessagePolicy: FallbackToLogsOnError``, when it wrote nothing and failed, the
    tail of its log (``log_tail``: its last 80 lines, of which the last 2 KiB are kept)."""
    message = written[:MAX_TERMINATION_MESSAGE].decode(errors="replace")
    if message or code == 0 or container.get("terminationMessagePolicy") != "FallbackToLogsOnError":
        return message
    return log_tail.encode()[-FALLBACK_LOG_BYTES:].decode(errors="replace")


def now_rfc3339() -> str:
    """The current time the way Kubernetes writes ``Time`` fields (seconds, UTC)."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class ContainerState:
    """What the kubelet knows about one container."""

    name: str
    image: str
    state: str = "waiting"  # waiting | running | terminated
    reason: str = "ContainerCreating"
    message: str = ""
    ready: bool = False
    started_at: str | None = None
    finished_at: str | None = None
    exit_code: int | None = None
    container_id: str = ""
    #: a native sidecar: an init container with ``restartPolicy: Always``, restarted on exit
    restart_always: bool = False
    restart_count: int = 0
    #: the previous instance's ``terminated`` state, once the container was restarted
    last_terminated: dict | None = None

    def run(self, container_id: str) -> None:
        if self.state == "waiting" and self.reason == "CrashLoopBackOff":
            self.restart_count += 1
        self.state, self.reason, self.message = "running", "", ""
        self.started_at, self.container_id = now_rfc3339(), container_id

    def back_off(self, message: str) -> None:
        """Exited and waiting to be restarted: the exit becomes ``lastState``."""
        self.last_terminated = self._terminated()
        self.state, self.reason, self.message, self.ready = (
            "waiting",
            "CrashLoopBackOff",
            message,
            False,
        )

    def started_once(self) -> bool:
        return self.state == "running" or self.last_terminated is not None

    def _terminated(self) -> dict:
        return {
            "exitCode": self.exit_code,
            "reason": self.reason,
            "message": self.message,
            "startedAt": self.started_at,
            "finishedAt": self.finished_at,
            "containerID": self.container_id,
        }

    def terminate(self, exit_code: int, reason: str, message: str = "") -> None:
        self.state, self.ready = "terminated", False
        self.exit_code, self.reason, self.message = exit_code, reason, message
        self.finished_at = now_rfc3339()

    def render(self) -> dict:
        if self.state == "running":
            state: dict = {"running": {"startedAt": self.started_at}}
        elif self.state == "terminated":
            state = {"terminated": self._terminated()}
        else:
            state = {"waiting": {"reason": self.reason, "message": self.message}}
        return {
            "name": self.name,
            "image": self.image,
            "imageID": self.image,
            "containerID": self.container_id,
            "ready": self.ready,
            "started": self.state == "running",
            "restartCount": self.restart_count,
            "state": state,
            "lastState": {"terminated": self.last_terminated} if self.last_terminated else {},
        }


@dataclass
class PodState:
    """What the kubelet knows about one pod; ``failure`` is a pod-level (reason, message)."""

    pod_ip: str
    host_ip: str
    init: list[ContainerState] = field(default_factory=list)
    containers: list[ContainerState] = field(default_factory=list)
    start_time: str = field(default_factory=now_rfc3339)
    failure: tuple[str, str] | None = None

    def initialized(self) -> bool:
        """Every init container completed, and every native sidecar started (Kubernetes)."""
        return all(
            c.started_once() if c.restart_always else c.state == "terminated" and c.exit_code == 0
            for c in self.init
        )

    def containers_ready(self) -> bool:
        """The containers and the native sidecars are ready (the Ready condition counts both)."""
        sidecars = [c for c in self.init if c.restart_always]
        return bool(self.containers) and all(c.ready for c in self.containers + sidecars)

    def phase(self) -> str:
        """From the containers; a native sidecar's exits never end the pod."""
        failed_init = any(
            c.state == "terminated" and c.exit_code and not c.restart_always for c in self.init
        )
        if self.failure or failed_init:
            return "Failed"
        if not self.initialized() or any(c.state == "waiting" for c in self.containers):
            return "Pending"
        stopping = any(c.restart_always and c.state == "running" for c in self.init)
        if all(c.state == "terminated" for c in self.containers) and not stopping:
            return "Succeeded" if all(c.exit_code == 0 for c in self.containers) else "Failed"
        return "Running"


def _condition(kind: str, ok: bool, since: str, reason: str = "") -> dict:
    condition = {
        "type": kind,
        "status": "True" if ok else "False",
        "lastProbeTime": None,
        "lastTransitionTime": since,
    }
    if not ok and reason:
        condition["reason"] = reason
    return condition


def render_status(pod: PodState) -> dict:
    """The ``status`` object of ``pod``."""
    since = now_rfc3339()
    ready = pod.containers_ready()
    status = {
        "phase": pod.phase(),
        "hostIP": pod.host_ip,
        "hostIPs": [{"ip": pod.host_ip}],
        "podIP": pod.pod_ip,
        "podIPs": [{"ip": pod.pod_ip}],
        "startTime": pod.start_time,
        "qosClass": "BestEffort",
        "conditions": [
            _condition("PodScheduled", True, pod.start_time),
            _condition("Initialized", pod.initialized(), since, "ContainersNotInitialized"),
            _condition("ContainersReady", ready, since, "ContainersNotReady"),
            _condition("Ready", ready, since, "ContainersNotReady"),
        ],
        "containerStatuses": [c.render() for c in pod.containers],
    }
    if pod.init:
        status["initContainerStatuses"] = [c.render() for c in pod.init]
    if pod.failure:
        status["reason"], status["message"] = pod.failure
    return status


def log_refusal(
    state: ContainerState | None, container: str, pod: str, *, previous: bool
) -> str | None:
    """Why the kubelet serves no log for ``container`` now (its own messages), or None."""
    if previous:
        # the kubelet keeps one log per container (restarted sidecars append to it)
        return f'previous terminated container "{container}" in pod "{pod}" not found'
    if state is None or state.state == "waiting":
        reason = state.reason if state is not None else "ContainerCreating"
        return f'container "{container}" in pod "{pod}" is waiting to start: {reason}'
    if state.state == "terminated" and not state.container_id:
        return f'container "{container}" in pod "{pod}" is terminated'
    return None
