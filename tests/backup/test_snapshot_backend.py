"""The snapshot backend's manifests and decisions: the VolumeSnapshot valid against the
external-snapshotter's v1 CRD schema (written out in devcluster/snapshot_schema.py; the
emulator's validator applies it), the restore PVC and Job strictly valid Kubernetes, the RBAC
rules, retention, per-user isolation of listings, and the restore Job's copy script run for real
(byte-identical, modes, times, symlinks, never over existing files)."""

from __future__ import annotations

import os
import subprocess
from datetime import datetime, timezone

import kubernetes_validate
import pytest
import yaml

from jupyterhub_platform.devcluster.platform import shipped_values_dir
from jupyterhub_platform.devcluster.validation import validation_causes
from jupyterhub_platform.services.backup.app import BackupApp
from jupyterhub_platform.services.backup.restic import RestoreRequestError, Retention
from jupyterhub_platform.services.backup.volume_snapshots import (
    COPY_SCRIPT,
    USER_LABEL,
    check_snapshot_name,
    expired,
    finished_restore_claims,
    in_progress_claims,
    restore_claim,
    restore_job,
    user_label,
    user_snapshots,
    volume_snapshot,
)
from tests.backup.backup_fixtures import HOME_CLAIM, tree

KUBERNETES_VERSION = "1.30"


def _ready(name: str, time: str, user: str = "alice", claim: str = "claim-alice", **status):
    snap = volume_snapshot(name, user, claim, "csi-snapclass")
    snap["metadata"]["creationTimestamp"] = time
    snap["status"] = {"readyToUse": True, "creationTime": time, "restoreSize": "10Gi",
                      "boundVolumeSnapshotContentName": f"snapcontent-{name}", **status}  # fmt: skip
    return snap


@pytest.mark.parametrize("user", ["alice", "alice@example.org"])
def test_the_volume_snapshot_is_valid_against_the_crd_schema(user):
    snap = volume_snapshot("snapshot-claim-alice-1", user, "claim-alice", "csi-snapclass")
    assert validation_causes(snap) == []
    assert validation_causes(_ready("s", "2026-12-02T02:00:00Z")) == []
    assert snap["metadata"]["annotations"]["hub.jupyter.org/username"] == user
    # the check is not vacuous: what the CRD refuses, it refuses
    bad = volume_snapshot("s", user, "claim-alice", "")
    bad["spec"]["source"]["volumeSnapshotContentName"] = "content"
    bad["spec"]["retain"] = True
    fields = {c["field"] for c in validation_causes(bad)}
    assert {"spec.retain"} <= fields or {"spec.source"} <= fields, fields
    assert validation_causes({**bad, "spec": {"source": {}}})
    assert validation_causes({**snap, "status": {"restoreSize": "ten"}})


def test_restore_claim_and_job_validate_strictly_and_mount_the_snapshot_read_only():
    pvc = restore_claim("restore-claim-alice-1", "alice", "claim-alice",
                        _ready("snap-1", "2026-12-02T02:00:00Z"), HOME_CLAIM)  # fmt: skip
    kubernetes_validate.validate(pvc, KUBERNETES_VERSION, strict=True)
    assert pvc["spec"]["dataSource"] == {"apiGroup": "snapshot.storage.k8s.io",
                                         "kind": "VolumeSnapshot", "name": "snap-1"}  # fmt: skip
    assert pvc["spec"]["storageClassName"] == "csi-rbd"
    assert pvc["spec"]["resources"]["requests"]["storage"] == "10Gi"
    job = restore_job("restore-claim-alice-1", "alice", "claim-alice", "node-a", "busybox",
                      restore_claim_name="restore-claim-alice-1", snapshot_dir="2026-12-02T02-00-00Z",
                      paths=["notes/a.txt", "/data"])  # fmt: skip
    kubernetes_validate.validate(job, KUBERNETES_VERSION, strict=True)
    pod = job["spec"]["template"]["spec"]
    volumes = {v["name"]: v["persistentVolumeClaim"] for v in pod["volumes"]}
    assert volumes == {"home": {"claimName": "claim-alice", "readOnly": False},
                       "snapshot": {"claimName": "restore-claim-alice-1", "readOnly": True}}  # fmt: skip
    container = pod["containers"][0]
    assert "env" not in container  # no repository, no keys
    assert container["command"][-5:] == [
        "/data", "2026-12-02T02-00-00Z", "/snapshot", "/notes/a.txt", "/data"]  # fmt: skip
    assert job["spec"]["backoffLimit"] == 0 and "affinity" in pod
    whole = restore_job("r", "alice", "claim-alice", None, "busybox", restore_claim_name="r",
                        snapshot_dir="t", paths=["/"])  # fmt: skip
    assert whole["spec"]["template"]["spec"]["containers"][0]["command"][-1] == "/snapshot"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: check_snapshot_name("../other"), "snapshot: '../other' is not a VolumeSnapshot"),
        (lambda: check_snapshot_name("51124340dc06ffc9;rm"), "is not a VolumeSnapshot name"),
        (lambda: restore_job("r", "a", "c", None, "i", restore_claim_name="r", snapshot_dir="t",
                             paths=["../bob"]), "path: '../bob' must stay inside the home"),
    ],
)  # fmt: skip
def test_bad_restore_requests_name_the_field(call, message):
    with pytest.raises(RestoreRequestError, match=message.replace("(", r"\(")):
        call()


def test_the_rbac_role_grants_volume_snapshots_and_claims():
    docs = list(yaml.safe_load_all(
        (shipped_values_dir() / "manifests" / "backup-snapshots-rbac.yaml").read_text()))  # fmt: skip
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    rules = next(d for d in docs if d["kind"] == "Role")["rules"]

    def verbs(group, resource):
        return {v for r in rules if group in r["apiGroups"] and resource in r["resources"]
                for v in r["verbs"]}  # fmt: skip

    assert {"create", "delete", "list"} <= verbs("snapshot.storage.k8s.io", "volumesnapshots")
    assert {"create", "delete", "patch"} <= verbs("", "persistentvolumeclaims")
    assert {"create", "delete"} <= verbs("batch", "jobs")  # the restore Jobs
    assert "get" in verbs("", "pods/log")  # a restore's result, a listing Job's output
    assert verbs("", "configmaps") == {"get", "create"}  # the kept listings (GC deletes them)


def test_listings_hold_only_the_users_own_snapshots_of_their_claim():
    email = "bob@example.org"
    items = [
        _ready("a1", "2026-12-01T02:00:00Z"),
        _ready("a2", "2026-12-02T02:00:00Z"),
        _ready("b1", "2026-12-02T02:00:00Z", user=email, claim="claim-bob"),
    ]
    forged = _ready("forged", "2026-12-03T02:00:00Z")  # alice's labels, bob's claim as source
    forged["spec"]["source"]["persistentVolumeClaimName"] = "claim-bob"
    renamed = _ready("renamed", "2026-12-03T02:00:00Z")  # labels say alice, annotation does not
    renamed["metadata"]["annotations"]["hub.jupyter.org/username"] = "mallory"
    listed = user_snapshots([*items, forged, renamed], "alice", "claim-alice")
    assert [s["id"] for s in listed] == ["a2", "a1"]
    assert listed[0] == {"id": "a2", "short_id": "a2", "hostname": "",
                         "time": "2026-12-02T02:00:00Z", "ready": True, "state": "ready",
                         "restore_size": "10Gi", "error": None, "tags": ["user=alice"]}  # fmt: skip
    assert [s["id"] for s in user_snapshots(items, email, "claim-bob")] == ["b1"]
    assert user_snapshots(items, email, "claim-alice") == []
    assert user_label(email).startswith("sha256-") and len(user_label(email)) <= 63
    assert items[2]["metadata"]["labels"][USER_LABEL] == user_label(email)


def _days(*times):
    return [_ready(f"s{i}", t) for i, t in enumerate(times)]


def test_retention_keeps_daily_weekly_monthly_and_always_the_newest():
    snaps = _days(
        "2026-12-02T02:00:00Z", "2026-12-02T01:00:00Z",  # same day: the newer one counts
        "2026-12-01T02:00:00Z", "2026-11-30T02:00:00Z",  # Tuesday, Monday: ISO week 49
        "2026-11-20T02:00:00Z", "2026-10-15T02:00:00Z", "2026-09-15T02:00:00Z",
    )  # fmt: skip
    gone = expired(snaps, Retention(daily=2, weekly=2, monthly=2))
    # daily: s0 (12-02), s2 (12-01); weekly: s0 (week 49), s4 (week 47); monthly: s0 (December),
    # s3 (the newest of November)
    assert gone == ["s1", "s5", "s6"]
    # nothing kept by count: the newest ready one still stays; in-progress ones are not touched
    pending = volume_snapshot("pending", "alice", "claim-alice", "")
    pending["metadata"]["creationTimestamp"] = "2026-12-03T02:00:00Z"
    failed = _ready("failed", "2026-11-01T00:00:00Z")
    failed["status"] = {"readyToUse": False, "error": {"message": "driver down"}}
    assert expired([*snaps, pending, failed], Retention(0, 0, 0)) == sorted(
        ["failed", "s1", "s2", "s3", "s4", "s5", "s6"])  # fmt: skip
    assert expired([pending], Retention(0, 0, 0)) == []
    assert in_progress_claims([pending, failed, *snaps]) == {"claim-alice"}
    assert in_progress_claims([failed, *snaps]) == set()


def test_restore_claims_go_once_their_job_finished():
    now = datetime(2026, 12, 2, 12, 0, tzinfo=timezone.utc)

    def pvc(name, created):
        return {"metadata": {"name": name, "creationTimestamp": created,
                             "labels": {"backup.jupyterhub-platform/kind": "restore"}}}  # fmt: skip

    done = {"type": "Complete", "status": "True"}
    jobs = [{"metadata": {"name": "r-done"}, "status": {"conditions": [done]}},
            {"metadata": {"name": "r-running"}, "status": {}}]  # fmt: skip
    pvcs = [pvc("r-done", "2026-12-02T11:00:00Z"), pvc("r-running", "2026-12-02T11:00:00Z"),
            pvc("r-new", "2026-12-02T11:59:00Z"), pvc("r-orphan", "2026-12-02T09:00:00Z"),
            {"metadata": {"name": "claim-alice", "creationTimestamp": "2026-01-01T00:00:00Z"}}]  # fmt: skip
    assert finished_restore_claims(pvcs, jobs, now) == ["r-done", "r-orphan"]


def _copy(home, snapshot, paths=()):
    out = subprocess.run(["sh", "-c", COPY_SCRIPT, "restore", str(home), "2026-12-02T02-00-00Z",
                          str(snapshot), *paths], capture_output=True, text=True, timeout=60,
                         start_new_session=True)  # fmt: skip
    assert out.returncode == 0, out.stderr
    return out.stdout


@pytest.mark.processes
def test_the_copy_script_restores_byte_identical_and_never_overwrites(tmp_path):
    snapshot, home = tmp_path / "snapshot", tmp_path / "home"
    (snapshot / "work" / "deep").mkdir(parents=True)
    (snapshot / "work" / "notes.txt").write_text("first\n")
    os.chmod(snapshot / "work" / "notes.txt", 0o640)
    (snapshot / "work" / "deep" / "data.bin").write_bytes(os.urandom(100_000))
    (snapshot / "work" / "run.sh").write_text("#!/bin/sh\n")
    os.chmod(snapshot / "work" / "run.sh", 0o755)
    os.symlink("deep/data.bin", snapshot / "work" / "link")
    os.symlink("nowhere", snapshot / "work" / "dangling")
    os.utime(snapshot / "work" / "notes.txt", (1_700_000_000, 1_700_000_000))
    (snapshot / "other.txt").write_text("other\n")
    home.mkdir()
    before = tree(snapshot / "work")

    assert "restored into" in _copy(home, snapshot, ["/work"])
    first = home / "restored" / "2026-12-02T02-00-00Z"
    assert tree(first / "work") == before and not (first / "other.txt").exists()
    (first / "work" / "notes.txt").write_text("edited after the restore\n")

    _copy(home, snapshot, ["/work/deep/data.bin"])  # a second restore: a new directory
    second = home / "restored" / "2026-12-02T02-00-00Z-1"
    assert (first / "work" / "notes.txt").read_text() == "edited after the restore\n"
    assert set(tree(second)) == {"work", "work/deep", "work/deep/data.bin"}
    assert tree(second / "work" / "deep") == tree(snapshot / "work" / "deep")

    _copy(home, snapshot)  # the whole home
    whole = home / "restored" / "2026-12-02T02-00-00Z-2"
    assert tree(whole) == tree(snapshot)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--BackupApp.backend=tape"],
            "The 'backend' trait of a BackupApp instance expected any of",
        ),
    ],
)
def test_a_bad_backend_is_refused_with_the_setting(argv, message, capsys):
    with pytest.raises(SystemExit):
        BackupApp().initialize(["--BackupApp.api_token=t", *argv])
    err = capsys.readouterr().err
    assert message in err and "tape" in err and "Traceback" not in err


def test_the_snapshot_backend_needs_no_repository(tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "groups: {students: {}}\nculling: {policies: {standard: {idle_timeout: 1h}}}\n"
    )
    app = BackupApp()
    app.initialize(["--BackupApp.api_token=t", "--BackupApp.backend=snapshot",
                    "--BackupApp.snapshot_class=csi-snapclass",
                    f"--PolicySource.policy_file={policy}"])  # fmt: skip
    assert app.volume_snapshots.app is app and app.snapshot_class == "csi-snapclass"
