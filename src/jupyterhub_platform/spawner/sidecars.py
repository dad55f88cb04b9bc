"""Decide from a pod's status whether a sidecar has failed while the server starts.

KubeSpawner waits until *every* container is ready but only watches ``notebook`` for exit, so a
sidecar that crashes or never gets ready would hang the spawn until the start timeout.
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


def sidecar_failure(pod: Mapping | None) -> str | None:
    """Why a non-notebook container of ``pod`` cannot become ready, or None."""
    if not pod:
        return None
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        name = status.get("name")
        if name == NOTEBOOK:
            continue
        state = status.get("state") or {}
        last = (status.get("lastState") or {}).get("terminated")
        if "terminated" in state or (last and status.get("restartCount")):
            # a restart during start-up means it crashed: Kubernetes would only back off longer
            term = state.get("terminated") or last or {}
            detail = term.get("reason") or f"exit code {term.get('exitCode')}"
            return f"sidecar container {name!r} exited ({detail})"
        waiting = state.get("waiting") or {}
        if waiting.get("reason") in FATAL_WAITING:
            message = f": {waiting['message']}" if waiting.get("message") else ""
            return f"sidecar container {name!r} cannot start ({waiting['reason']}{message})"
    return None


def unready_sidecars(pod: Mapping | None) -> list[str]:
    """Names of running sidecars that are not ready (yet)."""
    if not pod:
        return []
    return [
        s.get("name")
        for s in (pod.get("status") or {}).get("containerStatuses") or []
        if s.get("name") != NOTEBOOK and "running" in (s.get("state") or {}) and not s.get("ready")
    ]
