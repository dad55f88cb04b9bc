"""Browsing a VolumeSnapshot's files (pure: manifests, the listing's format, its states).

A snapshot's files are only readable from a volume provisioned from it (a full copy on most CSI
drivers, minutes), so the first browse of a snapshot starts a *listing Job*: a claim from the
snapshot (the restore claim's shape) mounted read-only, whose container prints every entry with
:data:`LISTING_SCRIPT`. The service parses the finished Job's log and keeps the listing in a
ConfigMap (gzip in ``binaryData``, an ownerReference to the VolumeSnapshot so it goes with it);
later browses read the ConfigMap. Everything is a Kubernetes object named after the snapshot
(:func:`listing_name`): a restarted service, or a second request at the same time, finds the
same Job and ConfigMap (docs/backup.md).

The script's output is ASCII whatever the names hold (newlines, spaces, any bytes): per batch of
paths ``find`` hands it, ``batch N``, N lines of ``stat -c '%f %s %Y'`` (raw mode in hex, size,
mtime), ``names`` and the NUL-separated paths as ``od`` hex, ``targets`` and the NUL-separated
symlink targets (empty for others) as hex; ``listing begins`` / ``listing complete`` around it
all, so a truncated log (rotated, cut) is never taken for a whole listing. Busybox ``sh``,
``find``, ``stat``, ``od`` and ``readlink`` (the restic image) and GNU ones print the same.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import stat
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import PurePosixPath

from .manifests import (
    CLAIM_LABEL,
    COMPONENT,
    COMPONENT_LABEL,
    KIND_LABEL,
    USER_ANNOTATION,
    JobSettings,
    job_manifest,
)
from .views import directory_entries, failure_reason, job_outcome
from .volume_snapshots import (
    SNAPSHOT_API_VERSION,
    SNAPSHOT_MOUNT,
    USER_LABEL,
    restore_claim,
    user_label,
)

LISTING = "listing"
SNAPSHOT_LABEL = "backup.jupyterhub-platform/snapshot"
ERROR_ANNOTATION = "backup.jupyterhub-platform/listing-error"
DATA_KEY = "listing.jsonl.gz"
MAX_LISTING_BYTES = 900_000
"""The gzipped listing a ConfigMap holds at most (Kubernetes refuses more than 1 MiB of data in
one, ``binaryData`` counted decoded)."""
TOO_LARGE = "this snapshot's listing is too large to browse here; restore a folder instead"
PREPARING = (
    "preparing the listing of this snapshot (provisioning a volume from it can take minutes)"
)
LISTING_TTL_SECONDS = 3600
"""A finished listing Job (and so a failed one's reason) stays this long; a browse after that
tries again."""

LISTING_SCRIPT = """set -eu
cd "$1"
echo "listing begins"
find . -exec sh -c '
set -eu
echo "batch $#"
stat -c "%f %s %Y" -- "$@"
echo names
printf "%s\\0" "$@" | od -An -v -tx1
echo targets
for p do
    if [ -L "$p" ]; then t=$(readlink "$p"; echo .); printf "%s" "${t%??}"; fi
    printf "\\0"
done | od -An -v -tx1
' listing {} +
echo "listing complete"
"""
"""``sh -c LISTING_SCRIPT listing <mount>``: every entry under ``<mount>`` (module docstring)."""


class ListingPending(Exception):
    """The listing is being prepared (the API answers 202 with this message)."""


class ListingFailed(Exception):
    """The listing cannot be had: the Job failed, or it is too large (one line, no trace)."""


class ListingFormatError(ValueError):
    """The listing Job's log is not a listing."""


class ListingCut(ListingFormatError):
    """The log lacks the listing's beginning or end: cut (a container log is rotated at some
    MiB, so only a huge listing is)."""


def listing_name(snapshot: str) -> str:
    """The listing claim's, Job's and ConfigMap's name: one per snapshot, within 63 characters."""
    digest = hashlib.sha256(snapshot.encode()).hexdigest()[:8]
    return f"{LISTING}-{snapshot[:40].rstrip('-.')}-{digest}"


def _labels(claim: str, snapshot: str) -> dict[str, str]:
    return {COMPONENT_LABEL: COMPONENT, CLAIM_LABEL: claim, KIND_LABEL: LISTING,
            SNAPSHOT_LABEL: snapshot}  # fmt: skip


def listing_claim(user: str, claim: str, snapshot: dict, home: dict) -> dict:
    """The restore claim's manifest (a PVC from the snapshot), labelled as a listing's."""
    name = snapshot["metadata"]["name"]
    pvc = restore_claim(listing_name(name), user, claim, snapshot, home)
    pvc["metadata"]["labels"] = _labels(claim, name)
    return pvc


def listing_job(user: str, claim: str, snapshot: str, image: str) -> dict:
    """The Job printing the listing of the listing claim, mounted read-only at /snapshot (the
    backup Jobs' shape: labels, limits, root to read every file; no home, no node pinning)."""
    name = listing_name(snapshot)
    settings = JobSettings(image=image, repository="", secret_name="", backoff_limit=1,
                           ttl_seconds=LISTING_TTL_SECONDS, deadline_seconds=3600)  # fmt: skip
    argv = ["sh", "-c", LISTING_SCRIPT, LISTING, SNAPSHOT_MOUNT]
    job = job_manifest(name, LISTING, user, claim, None, settings, argv, read_only=True)
    labels = _labels(claim, snapshot)
    job["metadata"]["labels"] = labels
    job["spec"]["template"]["metadata"]["labels"] = dict(labels)
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    container.pop("env")  # no repository, no keys
    container["volumeMounts"] = [
        {"name": "snapshot", "mountPath": SNAPSHOT_MOUNT, "readOnly": True}
    ]
    pod["volumes"] = [
        {"name": "snapshot", "persistentVolumeClaim": {"claimName": name, "readOnly": True}}
    ]
    return job


def _hex(lines: list[str], where: str) -> list[bytes]:
    try:
        raw = bytes.fromhex("".join(lines))
    except ValueError:
        raise ListingFormatError(f"{where}: not od hex") from None
    if raw and not raw.endswith(b"\0"):
        raise ListingFormatError(f"{where}: not NUL-terminated")
    return raw.split(b"\0")[:-1]


def _batch(stats: list[str], names: list[str], targets: list[str], count: int) -> list[dict]:
    paths, links = _hex(names, "names"), _hex(targets, "targets")
    if not (len(stats) == len(paths) == len(links) == count):
        raise ListingFormatError(
            f"a batch of {count} has {len(stats)} stat lines, {len(paths)} names, "
            f"{len(links)} targets"
        )
    entries = []
    for line, raw, target in zip(stats, paths, links, strict=True):
        try:
            mode_hex, size, mtime = line.split()
            mode = int(mode_hex, 16)
            entry = {"mode": mode, "size": int(size), "mtime": int(mtime)}
        except ValueError:
            raise ListingFormatError(
                f"stat line {line!r}: not '<mode hex> <size> <mtime>'"
            ) from None
        path = _decode(raw)
        if path == ".":
            continue
        if not path.startswith("./"):
            raise ListingFormatError(f"path {path!r}: not under the snapshot")
        entries.append({"path": path[1:], **entry, "target": _decode(target) or None})
    return entries


def _decode(raw: bytes) -> str:
    """UTF-8; other bytes as ``\\xNN`` (such a name shows, but restore its folder)."""
    return raw.decode("utf-8", errors="backslashreplace")


def parse_listing(log: str) -> list[dict]:
    """The entries (path from the snapshot's root, raw ``mode``, size, mtime, symlink target)
    of the listing Job's log; :class:`ListingFormatError` unless it is whole."""
    lines = log.splitlines()
    try:
        start = lines.index("listing begins")
        end = lines.index("listing complete", start)
    except ValueError:
        raise ListingCut("the log is not a whole listing (cut or rotated)") from None
    entries: list[dict] = []
    section, count, parts = None, 0, {"stat": [], "names": [], "targets": []}
    for line in [*lines[start + 1 : end], "batch 0"]:
        if line.startswith("batch "):
            if section is not None:
                entries += _batch(parts["stat"], parts["names"], parts["targets"], count)
            try:
                count = int(line.split()[1])
            except (IndexError, ValueError):
                raise ListingFormatError(f"line {line!r}: not 'batch <count>'") from None
            section, parts = "stat", {"stat": [], "names": [], "targets": []}
        elif line in ("names", "targets") and section is not None:
            section = line
        elif section is None:
            raise ListingFormatError(f"line {line!r} before the first batch")
        elif line.strip():
            parts[section].append(line.strip())
    return sorted(entries, key=lambda e: e["path"])


_TYPES = ((stat.S_ISDIR, "dir"), (stat.S_ISREG, "file"), (stat.S_ISLNK, "symlink"),
          (stat.S_ISFIFO, "fifo"), (stat.S_ISSOCK, "socket"), (stat.S_ISBLK, "dev"),
          (stat.S_ISCHR, "chardev"))  # fmt: skip


def browse_entry(entry: dict) -> dict:
    """One entry as the browse view shows it (restic's keys: name, path, type, size, mtime,
    permissions; and the symlink target)."""
    mode = entry["mode"]
    kind = next((name for test, name in _TYPES if test(mode)), "other")
    mtime = datetime.fromtimestamp(entry["mtime"], timezone.utc).isoformat()
    return {"name": PurePosixPath(entry["path"]).name, "path": entry["path"], "type": kind,
            "size": entry["size"] if kind == "file" else None, "mtime": mtime,
            "permissions": stat.filemode(mode), "target": entry.get("target")}  # fmt: skip


def snapshot_directory(entries: Iterable[dict], directory: str) -> list[dict]:
    """The entries directly inside ``directory`` (``/``: the home), as the restic view."""
    return directory_entries((browse_entry(e) for e in entries), directory)


def encode_listing(entries: list[dict]) -> bytes:
    lines = "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in entries)
    return gzip.compress(lines.encode(), mtime=0)


def decode_listing(data: bytes) -> list[dict]:
    return [json.loads(line) for line in gzip.decompress(data).decode().splitlines() if line]


def listing_configmap(
    user: str, claim: str, snapshot: dict, log: str, limit: int = MAX_LISTING_BYTES
) -> dict:
    """The ConfigMap keeping the listing of ``log`` (labelled with user, claim and snapshot,
    owned by the VolumeSnapshot); a listing too large for one, or a log that is no whole
    listing, is kept as that reason in an annotation (a browse says it; no second Job)."""
    meta = snapshot["metadata"]
    labels = {**_labels(claim, meta["name"]), USER_LABEL: user_label(user)}
    annotations = {USER_ANNOTATION: user}
    body: dict = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": listing_name(meta["name"]), "labels": labels, "annotations": annotations,
            "ownerReferences": [{"apiVersion": SNAPSHOT_API_VERSION, "kind": "VolumeSnapshot",
                                 "name": meta["name"], "uid": meta["uid"],
                                 "blockOwnerDeletion": False}],
        },
    }  # fmt: skip
    try:
        data = encode_listing(parse_listing(log))
    except ListingCut:
        annotations[ERROR_ANNOTATION] = TOO_LARGE
        return body
    except ListingFormatError as exc:
        annotations[ERROR_ANNOTATION] = f"the listing Job's output could not be read: {exc}"
        return body
    if len(data) > limit:
        annotations[ERROR_ANNOTATION] = TOO_LARGE
        return body
    body["binaryData"] = {DATA_KEY: base64.b64encode(data).decode()}
    return body


def stored_listing(configmap: dict) -> list[dict]:
    """The entries a listing ConfigMap keeps; :class:`ListingFailed` with its reason if none."""
    meta = configmap.get("metadata") or {}
    reason = (meta.get("annotations") or {}).get(ERROR_ANNOTATION)
    data = (configmap.get("binaryData") or {}).get(DATA_KEY)
    if reason or not data:
        raise ListingFailed(reason or f"the listing ConfigMap {meta.get('name')} holds no listing")
    return decode_listing(base64.b64decode(data))


def job_listing_state(job: dict) -> str:
    """``preparing`` (running), ``done`` (its log holds the listing) or ``failed``."""
    outcome = job_outcome(job.get("status") or {})
    return {None: "preparing", "Complete": "done"}.get(outcome, "failed")


def listing_failure(job: dict, log: str | None) -> str:
    """A failed listing Job's reason in one line: its condition and the script's last line."""
    return failure_reason(job.get("status") or {}, log, "the listing Job failed", "the listing")
