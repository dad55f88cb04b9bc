"""Core v1 Events about pods, as a real scheduler and kubelet post them.

KubeSpawner shows a pod's events as spawn progress, so the messages follow the real ones
("Successfully assigned ...", "Started container notebook", ...).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping

from .api import ApiClient, ApiError
from .status import now_rfc3339

log = logging.getLogger(__name__)

SCHEDULER = "default-scheduler"
KUBELET = "kubelet"


def build_event(
    pod: Mapping,
    reason: str,
    message: str,
    *,
    type: str = "Normal",
    component: str = KUBELET,
    host: str = "",
    container: str | None = None,
) -> dict:
    """A core v1 Event about ``pod`` (optionally about one of its containers)."""
    meta = pod.get("metadata", {})
    now = now_rfc3339()
    involved = {
        "apiVersion": "v1",
        "kind": "Pod",
        "name": meta.get("name"),
        "namespace": meta.get("namespace"),
        "uid": meta.get("uid"),
        "resourceVersion": meta.get("resourceVersion"),
    }
    if container is not None:
        involved["fieldPath"] = f"spec.containers{{{container}}}"
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            # like the real ones: involved object name + a unique suffix
            "name": f"{meta.get('name')}.{secrets.token_hex(8)}",
            "namespace": meta.get("namespace"),
        },
        "involvedObject": involved,
        "reason": reason,
        "message": message,
        "type": type,
        "source": {"component": component, **({"host": host} if host else {})},
        "reportingComponent": component,
        "reportingInstance": host,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "eventTime": None,
        "count": 1,
    }


class EventRecorder:
    """Posts events; a failure to post is logged, never fatal (events are informational)."""

    def __init__(self, api: ApiClient, host: str):
        self.api = api
        self.host = host

    async def record(self, pod: Mapping, reason: str, message: str, **kwargs) -> None:
        event = build_event(pod, reason, message, host=self.host, **kwargs)
        namespace = event["metadata"]["namespace"]
        try:
            await self.api.request("POST", f"/api/v1/namespaces/{namespace}/events", json=event)
        except ApiError as exc:
            log.warning(
                "could not post event %s for pod %s/%s: %s",
                reason,
                namespace,
                event["involvedObject"]["name"],
                exc,
            )
