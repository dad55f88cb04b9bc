"""Browsing a VolumeSnapshot's files: the listing script run for real (the host's sh and, as in
the restic image, busybox) on a tree of odd names and parsed back to what ``os.lstat`` says;
cut or garbled logs refused; the listing claim, Job and ConfigMap strictly valid Kubernetes;
the ConfigMap's size limit; the listing Job's states; the ready/error column and the refusal
of snapshots not ready."""

from __future__ import annotations

import base64
import math
import os
import shutil
import stat
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import kubernetes_validate
import pytest

from jupyterhub_platform.services.backup.cycle import running_claims
from jupyterhub_platform.services.backup.snapshot_files import (
    DATA_KEY,
    ERROR_ANNOTATION,
    LISTING_SCRIPT,
    MAX_LISTING_BYTES,
    TOO_LARGE,
    ListingCut,
    ListingFailed,
    ListingFormatError,
    job_listing_state,
    listing_claim,
    listing_configmap,
    listing_failure,
    listing_job,
    listing_name,
    parse_listing,
    snapshot_directory,
    stored_listing,
)
from jupyterhub_platform.services.backup.volume_snapshots import (
    finished_restore_claims,
    not_ready_reason,
    snapshot_state,
    user_snapshots,
    volume_snapshot,
)
from tests.backup.backup_fixtures import HOME_CLAIM
from tests.skips import missing

KUBERNETES_VERSION = "1.30"
ODD = ["a\nb", " lead and trail ", "-n", "--", "é ü 日本", "back\\slash", "quote\"'", "*"]


def _snapshot(name="snapshot-claim-alice-1", **status):
    snap = volume_snapshot(name, "alice", "claim-alice", "csi-snapclass")
    snap["metadata"].update(uid="uid-" + name, creationTimestamp="2026-12-02T02:00:00Z")
    snap["status"] = status or {"readyToUse": True, "creationTime": "2026-12-02T02:00:00Z",
                                "restoreSize": "10Gi"}  # fmt: skip
    return snap


def _odd_tree(root: Path) -> None:
    (root / "work" / "empty dir").mkdir(parents=True)
    for name in ODD:
        (root / "work" / name).write_text(name)
    (root / "work" / "a\nb").chmod(0o600)
    os.mkfifo(root / "work" / "fifo")
    os.symlink("target with\nnewline ", root / "work" / "link")
    os.symlink("../work/-n", root / "work" / "empty dir" / "up")
    raw = os.fsencode(root / "work") + b"/latin1-\xe9"
    with open(raw, "wb") as out:
        out.write(b"x" * 70_000)
    os.utime(root / "work" / "-n", (1_700_000_000, 1_700_000_000), follow_symlinks=False)


def _expected(root: Path) -> list[dict]:
    """What the listing must say of ``root``, from ``os.lstat`` (bytes paths: any name)."""
    found = []
    base = os.fsencode(root)
    for top, dirs, files in os.walk(base):
        for name in dirs + files:
            path = os.path.join(top, name)
            info = os.lstat(path)
            target = os.readlink(path) if stat.S_ISLNK(info.st_mode) else None
            found.append({
                "path": path[len(base):].decode("utf-8", "backslashreplace"),
                "mode": info.st_mode, "size": info.st_size, "mtime": int(info.st_mtime),
                "target": target.decode("utf-8", "backslashreplace") if target else None,
            })  # fmt: skip
    return sorted(found, key=lambda e: e["path"])


def _shells(tmp_path: Path) -> list[tuple[str, dict]]:
    """The host's sh, and busybox's applets alone on PATH (the restic image's tools)."""
    shells = [("sh", dict(os.environ))]
    busybox = shutil.which("busybox")
    if busybox is None:
        missing("busybox (Debian package busybox; .ci/install-workspace-tools)")
    applets = tmp_path / "busybox-bin"
    applets.mkdir()
    for applet in ("sh", "find", "stat", "od", "readlink", "printf", "echo"):
        (applets / applet).symlink_to(busybox)
    return [*shells, (str(applets / "sh"), {"PATH": str(applets)})]


def _run_listing(shell: str, env: dict, root: Path) -> str:
    out = subprocess.run([shell, "-c", LISTING_SCRIPT, "listing", str(root)], env=env,
                         capture_output=True, timeout=60, start_new_session=True)  # fmt: skip
    assert out.returncode == 0, out.stderr
    return out.stdout.decode("ascii")  # hex and digits only, whatever the names hold


@pytest.mark.processes
def test_the_listing_script_lists_every_odd_name_as_lstat_sees_it(tmp_path):
    root = tmp_path / "snapshot"
    _odd_tree(root)
    expected = _expected(root)
    assert len(expected) == len(ODD) + 6
    for shell, env in _shells(tmp_path):
        log = _run_listing(shell, env, root)
        assert parse_listing(f"kubelet noise\n{log}") == expected, shell
    work = {e["name"]: e for e in snapshot_directory(expected, "/work")}
    assert set(work) == {*ODD, "empty dir", "fifo", "link", "latin1-\\xe9"}
    assert work["a\nb"]["permissions"] == "-rw-------" and work["a\nb"]["size"] == 3
    assert work["link"] | {"mtime": None} == {
        "name": "link", "path": "/work/link", "type": "symlink", "size": None, "mtime": None,
        "permissions": "lrwxrwxrwx", "target": "target with\nnewline "}  # fmt: skip
    assert work["-n"]["mtime"] == "2023-11-14T22:13:20+00:00"
    assert (work["empty dir"]["type"], work["fifo"]["type"]) == ("dir", "fifo")
    assert list(work)[0] == "empty dir"  # folders first, as restic's view
    assert [e["name"] for e in snapshot_directory(expected, "/")] == ["work"]
    assert [e["target"] for e in snapshot_directory(expected, "/work/empty dir")] == ["../work/-n"]


def _listing_of(tmp_path: Path) -> str:
    root = tmp_path / "snapshot"
    _odd_tree(root)
    return _run_listing("sh", dict(os.environ), root)


@pytest.mark.processes
def test_a_cut_or_garbled_listing_is_never_taken_for_a_whole_one(tmp_path):
    log = _listing_of(tmp_path)
    with pytest.raises(ListingCut):
        parse_listing(log.replace("listing complete", ""))  # the end is missing
    with pytest.raises(ListingCut):
        parse_listing(log[len("listing begins\n") + 40 :])  # rotated: the start is missing
    lines = log.splitlines()
    stat_line = next(i for i, line in enumerate(lines) if line.startswith("batch ")) + 2
    with pytest.raises(ListingFormatError, match="stat lines"):
        parse_listing("\n".join(lines[:stat_line] + lines[stat_line + 1 :]))
    with pytest.raises(ListingFormatError, match="not od hex"):
        parse_listing(log.replace("names\n", "names\n zz\n", 1))
    with pytest.raises(ListingFormatError, match="before the first batch"):
        parse_listing("listing begins\nstray\nlisting complete\n")
    assert parse_listing("listing begins\nlisting complete\n") == []


@pytest.mark.processes
def test_the_listing_configmap_validates_round_trips_and_refuses_what_is_too_large(tmp_path):
    log = _listing_of(tmp_path)
    snap = _snapshot()
    body = listing_configmap("alice@example.org", "claim-alice", snap, log)
    kubernetes_validate.validate(body, KUBERNETES_VERSION, strict=True)
    meta = body["metadata"]
    assert meta["name"] == listing_name("snapshot-claim-alice-1") and len(meta["name"]) <= 63
    assert meta["ownerReferences"] == [{
        "apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot",
        "name": "snapshot-claim-alice-1", "uid": "uid-snapshot-claim-alice-1",
        "blockOwnerDeletion": False}]  # fmt: skip
    assert meta["labels"]["backup.jupyterhub-platform/snapshot"] == "snapshot-claim-alice-1"
    assert meta["labels"]["backup.jupyterhub-platform/user"].startswith("sha256-")
    assert meta["annotations"]["hub.jupyter.org/username"] == "alice@example.org"
    assert stored_listing(body) == parse_listing(log)
    # the same listing over a smaller limit: kept as the reason, which every browse says
    stored = len(base64.b64decode(body["binaryData"][DATA_KEY]))
    large = listing_configmap("alice", "claim-alice", snap, log, limit=stored - 1)
    kubernetes_validate.validate(large, KUBERNETES_VERSION, strict=True)
    assert "binaryData" not in large
    assert large["metadata"]["annotations"][ERROR_ANNOTATION] == TOO_LARGE
    with pytest.raises(ListingFailed, match="too large to browse here; restore a folder"):
        stored_listing(large)
    cut = listing_configmap("alice", "claim-alice", snap, log[:-30])
    assert cut["metadata"]["annotations"][ERROR_ANNOTATION] == TOO_LARGE
    garbled = listing_configmap("alice", "claim-alice", snap, log.replace("names\n", "names\nzz\n"))
    assert "could not be read: names: not od hex" in garbled["metadata"]["annotations"][
        ERROR_ANNOTATION]  # fmt: skip
    # the limit fits Kubernetes' 1 MiB of data per ConfigMap (binaryData counted decoded), and
    # the request that carries it base64'd, the API server's 3 MiB
    assert MAX_LISTING_BYTES + len(DATA_KEY) < 1024 * 1024
    assert 4 * math.ceil(MAX_LISTING_BYTES / 3) + 10_000 < 3 * 1024 * 1024


def test_the_listing_claim_and_job_validate_strictly_and_read_only_the_snapshot():
    snap = _snapshot()
    pvc = listing_claim("alice", "claim-alice", snap, HOME_CLAIM)
    job = listing_job("alice", "claim-alice", "snapshot-claim-alice-1", "restic/restic:0.14.0")
    for body in (pvc, job):
        kubernetes_validate.validate(body, KUBERNETES_VERSION, strict=True)
    name = listing_name("snapshot-claim-alice-1")
    assert pvc["metadata"]["name"] == job["metadata"]["name"] == name
    assert pvc["spec"]["dataSource"]["name"] == "snapshot-claim-alice-1"
    assert pvc["metadata"]["labels"]["backup.jupyterhub-platform/kind"] == "listing"
    pod = job["spec"]["template"]["spec"]
    assert pod["volumes"] == [{"name": "snapshot",
                               "persistentVolumeClaim": {"claimName": name, "readOnly": True}}]  # fmt: skip
    (container,) = pod["containers"]
    assert container["volumeMounts"] == [
        {"name": "snapshot", "mountPath": "/snapshot", "readOnly": True}]  # fmt: skip
    assert "env" not in container and "affinity" not in pod  # no keys; no home, no pinning
    assert container["command"][:2] == ["sh", "-c"] and container["command"][-1] == "/snapshot"
    long = listing_name("snapshot-" + "x" * 60)
    assert len(long) <= 63 and long != listing_name("snapshot-" + "x" * 61)


def _job(name, *conditions, labels=None):
    return {"metadata": {"name": name, "labels": labels or {}},
            "status": {"conditions": list(conditions)}}  # fmt: skip


FAILED = {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
          "message": "Job has reached the specified backoff limit"}  # fmt: skip
COMPLETE = {"type": "Complete", "status": "True"}


def test_the_listing_jobs_states_and_a_failure_in_one_line():
    assert job_listing_state(_job("l")) == "preparing"
    assert job_listing_state(_job("l", COMPLETE)) == "done"
    assert job_listing_state(_job("l", FAILED)) == "failed"
    log = "listing begins\nbatch 3\nstat: can't stat './x': I/O error\n"
    assert listing_failure(_job("l", FAILED), log) == (
        "Job has reached the specified backoff limit; the listing said: stat: can't stat "
        "'./x': I/O error"
    )
    assert listing_failure(_job("l", FAILED), None) == "Job has reached the specified backoff limit"
    # a running listing Job keeps no claim busy (it reads a copy); its finished claim goes
    kind = {"backup.jupyterhub-platform/claim": "claim-alice"}
    listing = _job("listing-1", labels={**kind, "backup.jupyterhub-platform/kind": "listing"})
    restore = _job("restore-1", labels={**kind, "backup.jupyterhub-platform/kind": "restore"})
    assert running_claims([listing]) == set() and running_claims([restore]) == {"claim-alice"}
    pvc = listing_claim("alice", "claim-alice", _snapshot(), HOME_CLAIM)
    pvc["metadata"]["creationTimestamp"] = "2026-12-02T02:00:00Z"
    now = datetime(2026, 12, 2, 2, 5, tzinfo=timezone.utc)
    name = pvc["metadata"]["name"]
    assert finished_restore_claims([pvc], [_job(name)], now) == []
    assert finished_restore_claims([pvc], [_job(name, COMPLETE)], now) == [name]


def test_the_ready_column_and_snapshots_not_ready_are_refused():
    ready = _snapshot("s-ready")
    pending = _snapshot("s-pending", readyToUse=False)
    failed = _snapshot("s-failed", readyToUse=False, error={"message": "driver: no space left"})
    assert [snapshot_state(s) for s in (ready, pending, failed)] == [
        "ready", "in progress", "failed: driver: no space left"]  # fmt: skip
    listed = {s["id"]: s for s in user_snapshots([ready, pending, failed], "alice", "claim-alice")}
    assert (listed["s-failed"]["state"], listed["s-failed"]["error"]) == (
        "failed: driver: no space left", "driver: no space left")  # fmt: skip
    assert listed["s-pending"]["ready"] is False and listed["s-pending"]["state"] == "in progress"
    assert not_ready_reason(ready) is None
    assert not_ready_reason(pending) == (
        "snapshot: 's-pending' is not ready yet (in progress); retry when it is ready"
    )
    assert not_ready_reason(failed) == (
        "snapshot: 's-failed' failed (driver: no space left); it holds no files"
    )
