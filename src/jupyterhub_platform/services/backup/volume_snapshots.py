"""The ``snapshot`` backend's decisions and manifests (pure: dicts in, dicts out; no I/O).

Each cycle takes a CSI VolumeSnapshot (``snapshot.storage.k8s.io/v1``) of each home claim,
labelled with the claim and the user (the exact name in the ``hub.jupyter.org/username``
annotation), and applies retention (keep daily/weekly/monthly like ``restic forget``, never the
newest ready snapshot). A restore provisions a PVC from the snapshot (``spec.dataSource``) and
runs a Job that mounts it read-only next to the home and copies the chosen paths with ``cp -a``
(modes, times, owners, symlinks) into ``~/restored/<snapshot-time>/``, a directory it creates
and so never existed (docs/backup.md).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timezone

from .manifests import (
    CLAIM_LABEL,
    COMPONENT,
    COMPONENT_LABEL,
    HOME,
    KIND_LABEL,
    USER_ANNOTATION,
    JobSettings,
)
from .manifests import restore_job as restic_restore_job
from .restic import RestoreRequestError, Retention, snapshot_path
from .views import job_outcome

SNAPSHOT_GROUP = "snapshot.storage.k8s.io"
SNAPSHOT_API_VERSION = f"{SNAPSHOT_GROUP}/v1"
USER_LABEL = "backup.jupyterhub-platform/user"
SNAPSHOT_MOUNT = "/snapshot"
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")

COPY_SCRIPT = """set -eu
mkdir -p "$1/restored"
target="$1/restored/$2"
n=0
# mkdir fails on an existing directory: the copy never lands on files that were there
until mkdir "$target" 2>/dev/null; do
    n=$((n + 1))
    [ "$n" -lt 1000 ] || { echo "no free directory for $1/restored/$2" >&2; exit 1; }
    target="$1/restored/$2-$n"
done
source="$3"
shift 3
if [ "$#" -eq 0 ]; then
    cp -a "$source/." "$target/"
fi
for path in "$@"; do
    parent=$(dirname "$path")
    mkdir -p "$target$parent"
    cp -a "$source$path" "$target$parent/"
done
echo "restored into $target"
"""
"""``sh -c COPY_SCRIPT restore <home> <snapshot-time> <snapshot mount> [/path ...]`` (no path:
the whole home)."""


def user_label(user: str) -> str:
    """The user as a label value: the name itself when it is one, else a hash of it (the
    annotation keeps the exact name; listings match both)."""
    if _LABEL_VALUE.match(user):
        return user
    return "sha256-" + hashlib.sha256(user.encode()).hexdigest()[:40]


def snapshot_labels(user: str, claim: str) -> dict[str, str]:
    return {COMPONENT_LABEL: COMPONENT, CLAIM_LABEL: claim, USER_LABEL: user_label(user)}


def claim_selector(claim: str) -> str:
    return f"{COMPONENT_LABEL}={COMPONENT},{CLAIM_LABEL}={claim}"


def volume_snapshot(name: str, user: str, claim: str, snapshot_class: str) -> dict:
    spec: dict = {"source": {"persistentVolumeClaimName": claim}}
    if snapshot_class:
        spec["volumeSnapshotClassName"] = snapshot_class
    return {
        "apiVersion": SNAPSHOT_API_VERSION,
        "kind": "VolumeSnapshot",
        "metadata": {
            "name": name,
            "labels": snapshot_labels(user, claim),
            "annotations": {USER_ANNOTATION: user},
        },  # fmt: skip
        "spec": spec,
    }


def is_users(snapshot: dict, user: str, claim: str) -> bool:
    """Labelled as the user's and of the claim, annotated with the exact name, and a snapshot
    of that claim: all four, or it is not theirs."""
    meta = snapshot.get("metadata") or {}
    labels, annotations = meta.get("labels") or {}, meta.get("annotations") or {}
    source = ((snapshot.get("spec") or {}).get("source") or {}).get("persistentVolumeClaimName")
    return (
        labels.get(CLAIM_LABEL) == claim
        and labels.get(USER_LABEL) == user_label(user)
        and annotations.get(USER_ANNOTATION) == user
        and source == claim
    )


def _time(snapshot: dict) -> str:
    return (snapshot.get("status") or {}).get("creationTime") or snapshot["metadata"].get(
        "creationTimestamp", ""
    )


def ready(snapshot: dict) -> bool:
    return bool((snapshot.get("status") or {}).get("readyToUse"))


def snapshot_state(snapshot: dict) -> str:
    """``ready`` (``status.readyToUse``), ``failed: <status.error.message>`` or ``in
    progress``: the list's ready/error column."""
    status = snapshot.get("status") or {}
    if status.get("readyToUse"):
        return "ready"
    error = status.get("error") or {}
    if error:
        return f"failed: {error.get('message') or 'the snapshot failed (no message)'}"
    return "in progress"


class UnknownSnapshot(RestoreRequestError):
    """No such snapshot of the user's (another user's is as absent: the API answers 404)."""


class SnapshotNotReady(RuntimeError):
    """A snapshot not ready (in progress or failed) cannot be restored or browsed (409)."""


def not_ready_reason(snapshot: dict) -> str | None:
    """Why a snapshot cannot be browsed or restored now (None: it can)."""
    state = snapshot_state(snapshot)
    name = snapshot["metadata"]["name"]
    if state == "ready":
        return None
    if state == "in progress":
        return f"snapshot: {name!r} is not ready yet (in progress); retry when it is ready"
    return f"snapshot: {name!r} failed ({state.removeprefix('failed: ')}); it holds no files"


def user_snapshots(items: Iterable[dict], user: str, claim: str) -> list[dict]:
    """The user's snapshots of the claim, newest first, as the API lists them (the restic
    backend's keys, plus ready, state, restore_size and error)."""
    listed = [
        {
            "id": s["metadata"]["name"],
            "short_id": s["metadata"]["name"],
            "hostname": "",
            "time": _time(s),
            "ready": ready(s),
            "state": snapshot_state(s),
            "restore_size": (s.get("status") or {}).get("restoreSize"),
            "error": ((s.get("status") or {}).get("error") or {}).get("message"),
            "tags": [f"user={user}"],
        }
        for s in items
        if is_users(s, user, claim) and not s["metadata"].get("deletionTimestamp")
    ]
    return sorted(listed, key=lambda s: s["time"], reverse=True)


def in_progress_claims(items: Iterable[dict]) -> set[str]:
    """Claims with a snapshot neither ready nor failed: the cycle takes no second one."""
    return {
        ((s.get("spec") or {}).get("source") or {}).get("persistentVolumeClaimName", "")
        for s in items
        if not ready(s) and not (s.get("status") or {}).get("error")
    }


def _parse(time: str) -> datetime:
    return datetime.strptime(time[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)


def expired(snapshots: Sequence[dict], retention: Retention) -> list[str]:
    """Names of one claim's snapshots retention deletes: ready ones outside the newest per day
    (``daily`` days), ISO week and month, as ``restic forget --keep-last 1 --keep-*`` picks them
    (so never the newest ready one), and failed ones older than it. In-progress ones stay."""
    done = sorted((s for s in snapshots if ready(s)), key=_time, reverse=True)
    if not done:
        return []
    keep = {done[0]["metadata"]["name"]}
    buckets: tuple[tuple[int, Callable[[datetime], object]], ...] = (
        (retention.daily, lambda t: t.date()),
        (retention.weekly, lambda t: t.isocalendar()[:2]),
        (retention.monthly, lambda t: (t.year, t.month)),
    )
    for count, bucket in buckets:
        seen: set = set()
        for snapshot in done:
            key = bucket(_parse(_time(snapshot)))
            if key not in seen and len(seen) < count:
                seen.add(key)
                keep.add(snapshot["metadata"]["name"])
    newest = _time(done[0])
    failed = [
        s["metadata"]["name"]
        for s in snapshots
        if not ready(s) and (s.get("status") or {}).get("error") and _time(s) < newest
    ]
    return sorted([s["metadata"]["name"] for s in done if s["metadata"]["name"] not in keep]
                  + failed)  # fmt: skip


def check_snapshot_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise RestoreRequestError(f"snapshot: {name!r} is not a VolumeSnapshot name")
    return name


def restore_claim(name: str, user: str, claim: str, snapshot: dict, home: dict) -> dict:
    """A PVC provisioned from ``snapshot``: the home claim's class and access modes, at least
    the snapshot's ``restoreSize``."""
    spec = home.get("spec") or {}
    size = (snapshot.get("status") or {}).get("restoreSize") or (
        (spec.get("resources") or {}).get("requests") or {}
    ).get("storage")
    claim_spec: dict = {
        "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
        "resources": {"requests": {"storage": str(size)}},
        "dataSource": {
            "apiGroup": SNAPSHOT_GROUP,
            "kind": "VolumeSnapshot",
            "name": snapshot["metadata"]["name"],
        },  # fmt: skip
    }
    if spec.get("storageClassName"):
        claim_spec["storageClassName"] = spec["storageClassName"]
    labels = {COMPONENT_LABEL: COMPONENT, CLAIM_LABEL: claim, KIND_LABEL: "restore"}
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "labels": labels, "annotations": {USER_ANNOTATION: user}},
        "spec": claim_spec,
    }


def restore_paths(paths: Sequence[str]) -> list[str]:
    """Checked absolute paths; ``/`` (or none) means the whole home."""
    checked = [snapshot_path(p) for p in paths]
    return [] if "/" in checked else checked


def restore_job(
    name: str, user: str, claim: str, node: str | None, image: str, *,
    restore_claim_name: str, snapshot_dir: str, paths: Sequence[str],
) -> dict:  # fmt: skip
    """The restic restore Job's shape (labels, node pinning, limits, no retry), with the
    snapshot's claim mounted read-only at /snapshot and ``cp -a`` instead of restic."""
    settings = JobSettings(image=image, repository="", secret_name="")
    job = restic_restore_job(name, user, claim, node, settings, snapshot_id="0" * 8,
                             snapshot_dir=snapshot_dir, paths=[])  # fmt: skip
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    container.pop("env")  # no repository, no keys
    container["command"] = ["sh", "-c", COPY_SCRIPT, "restore", HOME, snapshot_dir,
                            SNAPSHOT_MOUNT, *restore_paths(paths)]  # fmt: skip
    container["volumeMounts"].append(
        {"name": "snapshot", "mountPath": SNAPSHOT_MOUNT, "readOnly": True}
    )
    pod["volumes"].append(
        {"name": "snapshot",
         "persistentVolumeClaim": {"claimName": restore_claim_name, "readOnly": True}}
    )  # fmt: skip
    return job


def owned_by(job: dict) -> list[dict]:
    """The ownerReference that lets the restore claim go with its Job (garbage collection)."""
    meta = job["metadata"]
    return [{"apiVersion": "batch/v1", "kind": "Job", "name": meta["name"], "uid": meta["uid"],
             "blockOwnerDeletion": False}]  # fmt: skip


def finished_restore_claims(
    pvcs: Iterable[dict], jobs: Iterable[dict], now: datetime, grace_seconds: float = 3600
) -> list[str]:
    """Restore and listing claims the cycle deletes (each is a whole copy of a home): their
    Job (of the same name) finished, or there has been none for ``grace_seconds`` (the service
    stopped between creating the claim and its Job)."""
    state = {j["metadata"]["name"]: job_outcome(j.get("status") or {}) for j in jobs}
    gone = []
    for pvc in pvcs:
        meta = pvc["metadata"]
        kind = (meta.get("labels") or {}).get(KIND_LABEL)
        if kind not in ("restore", "listing") or meta.get("deletionTimestamp"):
            continue
        name = meta["name"]
        created = _parse(meta.get("creationTimestamp") or now.strftime("%Y-%m-%dT%H:%M:%S"))
        if state.get(name) or (
            name not in state and (now - created).total_seconds() > grace_seconds
        ):
            gone.append(name)
    return sorted(gone)
