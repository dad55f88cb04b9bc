"""Decide from a pod's status whether the server's start has failed.

KubeSpawner waits until *every* container is ready and checks ``notebook`` for exit only in
``poll()``, which JupyterHub does not call while a server starts: a container that crashes (the
notebook included) or a sidecar that never gets ready would hang the spawn until the start
timeout. Once the server runs, ``poll()`` ignores the sidecars too: one that must not go
missing (``on_exit: stop_server``) stops the server when it exits (:func:`exited_sidecar`).
"""

from __future__ import annotations

from collections.abc import Mapping

NOTEBOOK = "notebook"
FATAL_WAITING = frozenset(
    {
        "CrashLoopBackOff",
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
    }
)


def _statuses(pod: Mapping) -> list[Mapping]:
    """The containers' statuses, then the native sidecars' (init containers that keep running)."""
    status = pod.get("status") or {}
    native = {
        c.get("name")
        for c in (pod.get("spec") or {}).get("initContainers") or []
        if c.get("restartPolicy") == "Always"
    }
    init = [s for s in status.get("initContainerStatuses") or [] if s.get("name") in native]
    return list(status.get("containerStatuses") or []) + init


def startup_failure(pod: Mapping | None) -> str | None:
    """Why a container of ``pod`` cannot become ready, or None."""
    if not pod:
        return None
    for status in _statuses(pod):
        name = status.get("name")
        what = "the server's container" if name == NOTEBOOK else "sidecar container"
        state = status.get("state") or {}
        last = (status.get("lastState") or {}).get("terminated")
        if "terminated" in state or (last and status.get("restartCount")):
            # a restart during start-up means it crashed: Kubernetes would only back off longer
            term = state.get("terminated") or last or {}
            detail = term.get("reason") or f"exit code {term.get('exitCode')}"
            return f"{what} {name!r} exited ({detail})"
        waiting = state.get("waiting") or {}
        if waiting.get("reason") in FATAL_WAITING:
            message = f": {waiting['message']}" if waiting.get("message") else ""
            return f"{what} {name!r} cannot start ({waiting['reason']}{message})"
    return None


def unready_sidecars(pod: Mapping | None) -> list[str]:
    """Names of running sidecars that are not ready (yet)."""
    if not pod:
        return []
    return [
        s.get("name")
        for s in _statuses(pod)
        if s.get("name") != NOTEBOOK and "running" in (s.get("state") or {}) and not s.get("ready")
    ]


def exited_sidecar(pod: Mapping | None) -> tuple[str, int] | None:
    """A sidecar with ``on_exit: stop_server`` (a plain container) that has exited, with its
    exit code: the server has stopped. Native sidecars are restarted instead."""
    if not pod:
        return None
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        terminated = (status.get("state") or {}).get("terminated")
        if status.get("name") != NOTEBOOK and terminated:
            return status["name"], int(terminated.get("exitCode") or 0)
    return None
