"""What the dev cluster's CSI snapshot stand-in decides (pure: dicts in, dicts out).

A real cluster takes a VolumeSnapshot in two parts: the snapshot-controller binds it to a
VolumeSnapshotContent (named ``snapcontent-<snapshot uid>``, its class's ``deletionPolicy``,
the default class of the driver when the snapshot names none) and the CSI driver's sidecar
cuts the snapshot and fills in both statuses (``readyToUse``, ``creationTime``,
``restoreSize``). A PVC whose ``dataSource`` is a ready VolumeSnapshot is provisioned with the
snapshot's content, and stays Pending until then. snapshot_controller.py does the I/O.
"""

from __future__ import annotations

from ..validate.checks import Invalid, memory
from .snapshot_schema import SNAPSHOT_API_VERSION, SNAPSHOT_GROUP

DRIVER = "devcluster.local/hostpath"
DEFAULT_CLASS = "devcluster-snapshots"
DEFAULT_CLASS_ANNOTATION = "snapshot.storage.kubernetes.io/is-default-class"


class SnapshotError(RuntimeError):
    """Why a snapshot cannot be taken yet (status.error.message, as the real controller sets)."""


def default_class_manifest(name: str = DEFAULT_CLASS) -> dict:
    """The dev cluster's VolumeSnapshotClass, the default for its driver (docs/devcluster.md)."""
    return {
        "apiVersion": SNAPSHOT_API_VERSION,
        "kind": "VolumeSnapshotClass",
        "metadata": {"name": name, "annotations": {DEFAULT_CLASS_ANNOTATION: "true"}},
        "driver": DRIVER,
        "deletionPolicy": "Delete",
    }


def content_name(snapshot: dict) -> str:
    return f"snapcontent-{snapshot['metadata']['uid']}"


def snapshot_class(snapshot: dict, classes: list[dict]) -> dict:
    """The class the snapshot names, else the one default class of this cluster's driver."""
    wanted = (snapshot.get("spec") or {}).get("volumeSnapshotClassName")
    if wanted:
        found = [c for c in classes if c["metadata"]["name"] == wanted]
        if not found:
            raise SnapshotError(f'volumesnapshotclass.snapshot.storage.k8s.io "{wanted}" not found')
        return found[0]
    defaults = [
        c
        for c in classes
        if c.get("driver") == DRIVER
        and (c["metadata"].get("annotations") or {}).get(DEFAULT_CLASS_ANNOTATION) == "true"
    ]
    if len(defaults) != 1:
        raise SnapshotError(
            f"cannot find a default snapshot class for driver {DRIVER} "
            f"({len(defaults)} classes are marked default)"
        )
    return defaults[0]


def source_claim(snapshot: dict) -> str:
    source = (snapshot.get("spec") or {}).get("source") or {}
    claim = source.get("persistentVolumeClaimName")
    if not claim:
        raise SnapshotError(
            "pre-provisioned snapshots (source.volumeSnapshotContentName) are not supported "
            "by the dev cluster"
        )
    return claim


def content_manifest(snapshot: dict, pvc: dict, klass: dict) -> dict:
    meta = snapshot["metadata"]
    return {
        "apiVersion": SNAPSHOT_API_VERSION,
        "kind": "VolumeSnapshotContent",
        "metadata": {"name": content_name(snapshot)},
        "spec": {
            "deletionPolicy": klass["deletionPolicy"],
            "driver": klass["driver"],
            "source": {"volumeHandle": pvc["spec"].get("volumeName") or pvc["metadata"]["uid"]},
            "sourceVolumeMode": pvc["spec"].get("volumeMode", "Filesystem"),
            "volumeSnapshotClassName": klass["metadata"]["name"],
            "volumeSnapshotRef": {
                "apiVersion": SNAPSHOT_API_VERSION,
                "kind": "VolumeSnapshot",
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta["uid"],
            },
        },
    }


def restore_size(pvc: dict, used_bytes: int) -> str:
    """The smallest volume the snapshot restores into: the claim's capacity (what CSI drivers
    report), else the bytes it held."""
    capacity = ((pvc.get("status") or {}).get("capacity") or {}).get("storage")
    return str(capacity) if capacity else str(used_bytes)


def ready_statuses(
    snapshot: dict, size: str, used_bytes: int, taken_at: float, rfc3339: str
) -> tuple[dict, dict]:
    """(the content's status, the snapshot's status) once the copy is complete."""
    content = {
        "creationTime": int(taken_at * 1e9),
        "readyToUse": True,
        "restoreSize": used_bytes,
        "snapshotHandle": content_name(snapshot),
    }
    status = {
        "boundVolumeSnapshotContentName": content_name(snapshot),
        "creationTime": rfc3339,
        "readyToUse": True,
        "restoreSize": size,
    }
    return content, status


def error_status(snapshot: dict, message: str, rfc3339: str) -> dict:
    return {
        **(snapshot.get("status") or {}),
        "readyToUse": False,
        "error": {"message": message, "time": rfc3339},
    }


def snapshot_source(pvc: dict) -> str | None:
    """The VolumeSnapshot a PVC is to be provisioned from, if any."""
    source = (pvc.get("spec") or {}).get("dataSource") or {}
    if source.get("kind") == "VolumeSnapshot" and source.get("apiGroup") == SNAPSHOT_GROUP:
        return source.get("name")
    return None


def provisioning_problem(pvc: dict, snapshot: dict | None) -> str | None:
    """Why a PVC cannot be provisioned from its snapshot (None: it can). The real provisioner
    retries while the snapshot is not ready and refuses a claim smaller than restoreSize."""
    name = snapshot_source(pvc)
    if snapshot is None:
        return f'volumesnapshot "{name}" not found'
    status = snapshot.get("status") or {}
    if not status.get("readyToUse") or not status.get("boundVolumeSnapshotContentName"):
        return f'snapshot "{name}" is not Ready'
    requested = ((pvc["spec"].get("resources") or {}).get("requests") or {}).get("storage")
    try:
        if requested and memory(requested) < memory(status.get("restoreSize") or 1):
            return (
                f"requested volume size {memory(requested)} is less than the size "
                f"{memory(status['restoreSize'])} for the source snapshot {name}"
            )
    except Invalid:
        pass  # a zero or odd size: nothing to compare
    return None
