"""Server-side printing: the ``meta.k8s.io`` Tables kubectl asks for (``kubectl get``).

kubectl sends ``Accept: application/json;as=Table;v=v1;g=meta.k8s.io, ...`` and prints the
columns the server defines. Pods, events, namespaces, nodes and services get the real server's
columns (``-o wide`` shows the priority-1 ones); other kinds get Name and Age (pure).
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Callable, Sequence

from .resources import ResourceType

NONE = "<none>"


def table_version(accept: str | None) -> str | None:
    """``v1``/``v1beta1`` when the Accept header asks for a meta.k8s.io Table, else None."""
    offered = []
    for part in (accept or "").split(","):
        params = dict(p.strip().split("=", 1) for p in part.split(";")[1:] if "=" in p)
        if params.get("as") == "Table" and params.get("g") == "meta.k8s.io":
            offered.append(params.get("v", "v1"))
    for version in ("v1", "v1beta1"):
        if version in offered:
            return version
    return None


def human_duration(seconds: float) -> str:
    """Age as kubectl shows it (``duration.HumanDuration``)."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m" if s % 60 == 0 else f"{minutes}m{s % 60}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        return f"{hours}h" if minutes % 60 == 0 else f"{hours}h{minutes % 60}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d" if hours % 24 == 0 else f"{hours // 24}d{hours % 24}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        years, days = hours // 24 // 365, hours // 24 % 365
        return f"{years}y" if days == 0 else f"{years}y{days}d"
    return f"{hours // 24 // 365}y"


def _age(stamp: str | None, now: float) -> str:
    if not stamp:
        return NONE
    then = calendar.timegm(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S"))
    return human_duration(now - then)


def _column(name: str, description: str, *, priority: int = 0, fmt: str = "") -> dict:
    return {"name": name, "type": "string", "format": fmt, "description": description,
            "priority": priority}  # fmt: skip


def _name_column() -> dict:
    return _column("Name", "Name must be unique within a namespace.", fmt="name")


def _age_column() -> dict:
    return _column(
        "Age",
        "CreationTimestamp is a timestamp representing the server time when this object was created.",
    )


def pod_status_text(pod: dict) -> str:
    """The STATUS kubectl shows for a pod (the real printer's rules, minus restarts)."""
    status = pod.get("status") or {}
    reason = status.get("reason") or status.get("phase") or "Pending"
    init_statuses = status.get("initContainerStatuses") or []
    init_count = len(pod.get("spec", {}).get("initContainers") or [])
    initializing = False
    for i, container in enumerate(init_statuses):
        state = container.get("state") or {}
        terminated, waiting = state.get("terminated"), state.get("waiting")
        if terminated and terminated.get("exitCode") == 0:
            continue
        if terminated:
            reason = "Init:" + (
                terminated.get("reason") or f"ExitCode:{terminated.get('exitCode')}"
            )
        elif waiting and waiting.get("reason") and waiting["reason"] != "PodInitializing":
            reason = "Init:" + waiting["reason"]
        else:
            reason = f"Init:{i}/{init_count}"
        initializing = True
        break
    if not initializing:
        running = False
        for container in reversed(status.get("containerStatuses") or []):
            state = container.get("state") or {}
            waiting, terminated = state.get("waiting"), state.get("terminated")
            if waiting and waiting.get("reason"):
                reason = waiting["reason"]
            elif terminated:
                reason = terminated.get("reason") or f"ExitCode:{terminated.get('exitCode')}"
            elif container.get("ready") and "running" in state:
                running = True
        if reason == "Completed" and running:
            ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                        for c in status.get("conditions") or [])  # fmt: skip
            reason = "Running" if ready else "NotReady"
    if pod["metadata"].get("deletionTimestamp") and status.get("phase") not in (
        "Succeeded",
        "Failed",
    ):
        reason = "Terminating"
    return reason


def _pod_row(pod: dict, now: float) -> list:
    status = pod.get("status") or {}
    statuses = status.get("containerStatuses") or []
    total = len(pod.get("spec", {}).get("containers") or [])
    ready = sum(1 for c in statuses if c.get("ready") and "running" in (c.get("state") or {}))
    restarts = sum(int(c.get("restartCount") or 0) for c in statuses)
    gates = pod.get("spec", {}).get("readinessGates") or []
    return [
        pod["metadata"]["name"],
        f"{ready}/{total}",
        pod_status_text(pod),
        str(restarts),
        _age(pod["metadata"].get("creationTimestamp"), now),
        status.get("podIP") or NONE,
        pod.get("spec", {}).get("nodeName") or NONE,
        status.get("nominatedNodeName") or NONE,
        f"0/{len(gates)}" if gates else NONE,
    ]


_POD_COLUMNS = [
    _name_column(),
    _column("Ready", "The aggregate readiness state of this pod for accepting traffic."),
    _column("Status", "The aggregate status of the containers in this pod."),
    _column("Restarts", "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted."),
    _age_column(),
    _column("IP", "podIP address allocated to the pod.", priority=1),
    _column("Node", "NodeName indicates in which node this pod is scheduled.", priority=1),
    _column("Nominated Node", "nominatedNodeName is set only when this pod preempts other pods on the node.", priority=1),
    _column("Readiness Gates", "If specified, all readiness gates will be evaluated for pod readiness.", priority=1),
]  # fmt: skip


def _event_row(event: dict, now: float) -> list:
    involved = event.get("involvedObject") or {}
    last = (
        event.get("lastTimestamp")
        or event.get("eventTime")
        or event["metadata"].get("creationTimestamp")
    )
    return [
        _age(last, now),
        event.get("type", ""),
        event.get("reason", ""),
        f"{(involved.get('kind') or '').lower()}/{involved.get('name', '')}",
        event.get("message", ""),
    ]


_EVENT_COLUMNS = [
    _column("Last Seen", "Time since the most recent occurrence of this event."),
    _column("Type", "Type of this event (Normal, Warning)."),
    _column("Reason", "This should be a short, machine understandable string."),
    _column("Object", "The object that this event is about."),
    _column("Message", "A human-readable description of the status of this operation."),
]


def _namespace_row(ns: dict, now: float) -> list:
    phase = (ns.get("status") or {}).get("phase") or "Active"
    return [ns["metadata"]["name"], phase, _age(ns["metadata"].get("creationTimestamp"), now)]


def _node_row(node: dict, now: float) -> list:
    conditions = (node.get("status") or {}).get("conditions") or []
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    version = ((node.get("status") or {}).get("nodeInfo") or {}).get("kubeletVersion") or ""
    return [node["metadata"]["name"], "Ready" if ready else "NotReady", NONE,
            _age(node["metadata"].get("creationTimestamp"), now), version]  # fmt: skip


def _service_row(svc: dict, now: float) -> list:
    spec = svc.get("spec") or {}
    ports = ",".join(f"{p.get('port')}/{p.get('protocol', 'TCP')}" for p in spec.get("ports") or [])
    return [svc["metadata"]["name"], spec.get("type", "ClusterIP"), spec.get("clusterIP") or NONE,
            NONE, ports or NONE, _age(svc["metadata"].get("creationTimestamp"), now)]  # fmt: skip


def _generic_row(obj: dict, now: float) -> list:
    return [obj["metadata"]["name"], _age(obj["metadata"].get("creationTimestamp"), now)]


_TABLES: dict[str, tuple[list[dict], Callable[[dict, float], list]]] = {
    "Pod": (_POD_COLUMNS, _pod_row),
    "Event": (_EVENT_COLUMNS, _event_row),
    "Namespace": ([_name_column(), _column("Status", "The status of the namespace"), _age_column()], _namespace_row),
    "Node": ([_name_column(), _column("Status", "The status of the node"), _column("Roles", "The roles of the node"),
              _age_column(), _column("Version", "Kubelet Version reported by the node.")], _node_row),
    "Service": ([_name_column(), _column("Type", "The service type"), _column("Cluster-IP", "The cluster IP"),
                 _column("External-IP", "The external IPs"), _column("Port(s)", "The ports"), _age_column()], _service_row),
}  # fmt: skip


def _row_object(obj: dict, include: str, version: str) -> dict | None:
    if include == "None":
        return None
    if include == "Object":
        return obj
    return {"kind": "PartialObjectMetadata", "apiVersion": f"meta.k8s.io/{version}",
            "metadata": obj["metadata"]}  # fmt: skip


def table(rtype: ResourceType, objects: Sequence[dict], *, version: str = "v1",
          include_object: str = "Metadata", list_meta: dict | None = None,
          now: float | None = None) -> dict:  # fmt: skip
    """A Table of ``objects`` (a list's items, or one object)."""
    now = time.time() if now is None else now
    columns, row = _TABLES.get(rtype.kind, ([_name_column(), _age_column()], _generic_row))
    rows = []
    for obj in objects:
        entry: dict = {"cells": row(obj, now)}
        included = _row_object(obj, include_object, version)
        if included is not None:
            entry["object"] = included
        rows.append(entry)
    return {"kind": "Table", "apiVersion": f"meta.k8s.io/{version}", "metadata": list_meta or {},
            "columnDefinitions": columns, "rows": rows}  # fmt: skip
