"""Fields the real server fills in on create (defaulting and initial status), per kind (pure)."""

from __future__ import annotations

import base64
import secrets
import time

from .resources import ResourceType

_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # the real server's generateName alphabet


def timestamp(when: float | None = None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if when is None else when))


def micro_timestamp(when: float | None = None) -> str:
    when = time.time() if when is None else when
    return timestamp(when)[:-1] + f".{int(when % 1 * 1e6):06d}Z"


def random_suffix(length: int = 5) -> str:
    return "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(length))


def qos_class(spec: dict) -> str:
    """Guaranteed, Burstable or BestEffort, from the containers' requests and limits."""
    containers = (spec.get("containers") or []) + (spec.get("initContainers") or [])
    resources = [c.get("resources") or {} for c in containers]
    if not any((r.get("requests") or r.get("limits")) for r in resources):
        return "BestEffort"
    for r in resources:
        limits = r.get("limits") or {}
        requests = {**limits, **(r.get("requests") or {})}
        if not all(k in limits for k in ("cpu", "memory")) or any(
            str(requests[k]) != str(limits[k]) for k in ("cpu", "memory")
        ):
            return "Burstable"
    return "Guaranteed"


def _container_defaults(container: dict) -> None:
    image = container.get("image", "")
    tag = image.rsplit("/", 1)[-1]
    latest = "@" not in image and (":" not in tag or tag.endswith(":latest"))
    container.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    container.setdefault("resources", {})
    for port in container.get("ports") or []:
        port.setdefault("protocol", "TCP")


def pod_spec_defaults(spec: dict) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("priority", 0)
    spec.setdefault("serviceAccountName", spec.get("serviceAccount") or "default")
    spec.setdefault("serviceAccount", spec["serviceAccountName"])
    for group in ("initContainers", "containers"):
        for container in spec.get(group) or []:
            _container_defaults(container)


def _pod(obj: dict, now: float) -> None:
    spec = obj.setdefault("spec", {})
    pod_spec_defaults(spec)
    obj["status"] = {"phase": "Pending", "qosClass": qos_class(spec)}


def _job(obj: dict, now: float) -> None:
    spec = obj.setdefault("spec", {})
    uid, name = obj["metadata"]["uid"], obj["metadata"]["name"]
    for key, value in (
        ("backoffLimit", 6),
        ("completions", 1),
        ("parallelism", 1),
        ("completionMode", "NonIndexed"),
        ("suspend", False),
        ("podReplacementPolicy", "TerminatingOrFailed"),
        ("manualSelector", False),
    ):
        spec.setdefault(key, value)
    labels = {
        "batch.kubernetes.io/controller-uid": uid,
        "batch.kubernetes.io/job-name": name,
        "controller-uid": uid,
        "job-name": name,
    }
    template = spec.setdefault("template", {})
    template.setdefault("metadata", {}).setdefault("labels", {}).update(labels)
    spec.setdefault("selector", {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}})
    pod_spec_defaults(template.setdefault("spec", {}))
    obj["status"] = {}


def _service(obj: dict, now: float) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    spec.setdefault("ipFamilies", ["IPv4"])
    spec.setdefault("ipFamilyPolicy", "SingleStack")
    spec.setdefault("internalTrafficPolicy", "Cluster")
    for port in spec.get("ports") or []:
        port.setdefault("protocol", "TCP")
        port.setdefault("targetPort", port.get("port"))
    obj["status"] = {"loadBalancer": {}}


def _pvc(obj: dict, now: float) -> None:
    # Stands in for a dynamic provisioner: claims bind at once to a volume named after them,
    # but for claims of a snapshot's content (snapshot_controller.py binds those once filled).
    spec = obj.setdefault("spec", {})
    spec.setdefault("volumeMode", "Filesystem")
    source = spec.get("dataSource")
    if source and "dataSourceRef" not in spec:
        spec["dataSourceRef"] = dict(source)  # as the API server mirrors them
    if source and source.get("kind") == "VolumeSnapshot":
        obj["status"] = {"phase": "Pending"}
        return
    spec.setdefault("volumeName", f"pvc-{obj['metadata']['uid']}")
    storage = ((spec.get("resources") or {}).get("requests") or {}).get("storage")
    obj["status"] = {"phase": "Bound", "accessModes": spec.get("accessModes") or []}
    if storage is not None:
        obj["status"]["capacity"] = {"storage": storage}


def _namespace(obj: dict, now: float) -> None:
    name = obj["metadata"]["name"]
    obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = name
    obj["spec"] = {"finalizers": ["kubernetes"]}
    obj["status"] = {"phase": "Active"}


def _event(obj: dict, now: float) -> None:
    # The real server always serialises these keys (null when unset); clients index them.
    for key in ("firstTimestamp", "lastTimestamp", "eventTime"):
        obj.setdefault(key, None)
    obj.setdefault("reportingComponent", "")
    obj.setdefault("reportingInstance", "")
    obj.setdefault("type", "Normal")


def fold_string_data(secret: dict) -> None:
    """Write-only ``stringData`` goes into ``data`` (base64), as the real server does on every write."""
    string_data = secret.pop("stringData", None)
    if string_data:
        data = secret.setdefault("data", {})
        for key, value in string_data.items():
            data[key] = base64.b64encode(value.encode()).decode()


def _secret(obj: dict, now: float) -> None:
    obj.setdefault("type", "Opaque")
    fold_string_data(obj)


def _status_is_the_controllers(obj: dict, now: float) -> None:
    obj.pop("status", None)  # a status subresource: only the snapshot controller writes it


_CREATE_DEFAULTS = {
    "Pod": _pod,
    "Job": _job,
    "Service": _service,
    "PersistentVolumeClaim": _pvc,
    "Namespace": _namespace,
    "Event": _event,
    "Secret": _secret,
    "VolumeSnapshot": _status_is_the_controllers,
    "VolumeSnapshotContent": _status_is_the_controllers,
}


def apply_create_defaults(rtype: ResourceType, obj: dict, now: float) -> None:
    """Fill in what the server sets on create; ``obj`` already has its final metadata."""
    handler = _CREATE_DEFAULTS.get(rtype.kind)
    if handler is not None:
        handler(obj, now)
