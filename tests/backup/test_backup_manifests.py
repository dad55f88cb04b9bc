"""The backup service's Jobs and Secret: strictly valid Kubernetes, no secret in a pod spec, and
the scripts' arguments built from validated input."""

from __future__ import annotations

import json
from datetime import date, timedelta

import kubernetes_validate
import pytest
import yaml

from jupyterhub_platform.devcluster.platform import shipped_values_dir
from jupyterhub_platform.services.backup.manifests import (
    JobSettings,
    backup_job,
    node_of_claim,
    restore_job,
    secret_manifest,
)
from jupyterhub_platform.services.backup.restic import (
    RestoreRequestError,
    Retention,
    prune_due,
    snapshot_dirname,
    snapshot_path,
)

KUBERNETES_VERSION = "1.30"
SETTINGS = JobSettings(
    image="docker.io/restic/restic:0.14.0",
    repository="s3:https://s3.example.org/backups",
    secret_name="backup-restic",
    retention=Retention(daily=3, weekly=2, monthly=1),
)
PASSWORD = "correct-horse-battery-staple"


def _restore(**kwargs):
    args = {"snapshot_id": "51124340dc06ffc9", "snapshot_dir": "2026-12-02T09-33-04Z"}
    args.update(kwargs)
    return restore_job(
        "restore-alice-1", "alice@example.org", "claim-alice", None, SETTINGS, **args
    )


@pytest.mark.parametrize(
    "manifest",
    [
        backup_job("backup-alice-1", "alice@example.org", "claim-alice", "node-a", SETTINGS),
        backup_job("backup-bob-1", "bob", "claim-bob", None, SETTINGS, prune=True),
        _restore(paths=["/notes/a.txt", "data"]),
        secret_manifest("backup-restic", PASSWORD, "AK", "SK"),
    ],
    ids=["backup-on-node", "backup-stopped", "restore", "secret"],
)
def test_manifests_validate_strictly(manifest):
    kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)


def test_backup_job_mounts_the_claim_read_only_and_reads_keys_from_the_secret():
    job = backup_job("backup-alice-1", "alice", "claim-alice", None, SETTINGS)
    pod = job["spec"]["template"]["spec"]
    assert pod["volumes"][0]["persistentVolumeClaim"] == {
        "claimName": "claim-alice",
        "readOnly": True,
    }
    container = pod["containers"][0]
    assert container["volumeMounts"][0]["readOnly"] is True
    env = {e["name"]: e for e in container["env"]}
    assert env["RESTIC_REPOSITORY"]["value"] == "s3:https://s3.example.org/backups/claim-alice"
    for key in ("RESTIC_PASSWORD", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert env[key]["valueFrom"]["secretKeyRef"] == {"name": "backup-restic", "key": key}
    assert "--keep-daily=3" in container["command"]
    assert "--keep-monthly=1" in container["command"]
    assert "affinity" not in pod  # a stopped user's volume: any node
    # the run's summary (bytes) or, failed, its log's end comes back in the pod's status
    assert container["terminationMessagePath"] == "/dev/termination-log"
    assert "/dev/termination-log" in container["command"]
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"


def test_the_job_is_told_whether_to_prune_and_keeps_its_cache_in_an_empty_dir():
    def container(job):
        return job["spec"]["template"]["spec"]["containers"][0]

    pruning = backup_job("backup-alice-1", "alice", "claim-alice", None, SETTINGS, prune=True)
    keeping = backup_job("backup-alice-2", "alice", "claim-alice", None, SETTINGS)
    for job, decision in ((pruning, "prune"), (keeping, "keep")):
        command = container(job)["command"]
        # sh -c SCRIPT backup <home> <host> <tag> <message> <decision> <retention...>
        assert command[3:9] == ["backup", "/data", "jupyterhub-backup", "user=alice",
                                "/dev/termination-log", decision]  # fmt: skip
        assert command[9:] == ["--keep-daily=3", "--keep-weekly=2", "--keep-monthly=1"]
    env = {e["name"]: e.get("value") for e in container(pruning)["env"]}
    pod = pruning["spec"]["template"]["spec"]
    cache = next(m for m in container(pruning)["volumeMounts"] if m["name"] == "cache")
    assert env["RESTIC_CACHE_DIR"] == cache["mountPath"]
    assert {"name": "cache", "emptyDir": {}} in pod["volumes"]


@pytest.mark.parametrize("every", [1, 3, 7])
def test_each_claim_prunes_on_one_day_in_every(every):
    claims = [f"claim-user{i}" for i in range(60)]
    start = date(2026, 12, 3)
    days = [start + timedelta(days=n) for n in range(3 * every)]
    offsets = set()
    for claim in claims:
        due = [n for n, day in enumerate(days) if prune_due(claim, day, every)]
        assert due == list(range(due[0], 3 * every, every)) and due[0] < every  # one in every
        offsets.add(due[0])
    assert offsets == set(range(every))  # spread over the period, not all on one day


def test_prune_every_below_one_is_refused_naming_the_field():
    with pytest.raises(ValueError, match=r"prune_every: 0 must be at least 1 \(days\)"):
        prune_due("claim-alice", date(2026, 12, 3), 0)


def test_password_never_in_a_job():
    job = backup_job("backup-alice-1", "alice", "claim-alice", "node-a", SETTINGS)
    restore = _restore(paths=[])
    secret = secret_manifest("backup-restic", PASSWORD, "AK", "SK")
    assert PASSWORD in json.dumps(secret)
    assert PASSWORD not in json.dumps(job) + json.dumps(restore)


def test_a_job_follows_a_running_servers_volume_to_its_node():
    pods = [
        {"spec": {"nodeName": "n1", "volumes": [{"persistentVolumeClaim": {"claimName": "claim-bob"}}]}, "status": {"phase": "Running"}},
        {"spec": {"nodeName": "n2", "volumes": [{"persistentVolumeClaim": {"claimName": "claim-alice"}}]}, "status": {"phase": "Succeeded"}},
        {"spec": {"nodeName": "n3", "volumes": [{"persistentVolumeClaim": {"claimName": "claim-alice"}}]}, "status": {"phase": "Running"}},
    ]  # fmt: skip
    node = node_of_claim("claim-alice", pods)
    assert node == "n3"
    job = backup_job("backup-alice-1", "alice", "claim-alice", node, SETTINGS)
    term = job["spec"]["template"]["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"
    ]["nodeSelectorTerms"][0]
    assert term["matchExpressions"][0]["values"] == ["n3"]
    assert node_of_claim("claim-carol", pods) is None


def test_restore_job_writes_its_own_directory_once():
    job = _restore(paths=["notes/a.txt"])
    spec = job["spec"]
    assert spec["backoffLimit"] == 0
    command = spec["template"]["spec"]["containers"][0]["command"]
    assert command[-5:] == [
        "/data",
        "2026-12-02T09-33-04Z",
        "51124340dc06ffc9",
        "--include",
        "/notes/a.txt",
    ]
    assert spec["template"]["spec"]["volumes"][0]["persistentVolumeClaim"]["readOnly"] is False


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"snapshot_id": "latest; rm -rf /", "paths": []}, "snapshot: 'latest; rm -rf /'"),
        ({"paths": ["../bob/secret"]}, "path: '../bob/secret' must stay inside the home"),
    ],
)
def test_bad_restore_requests_are_refused_with_the_field(kwargs, message):
    with pytest.raises(RestoreRequestError, match=message.replace("(", r"\(")):
        _restore(**kwargs)


@pytest.mark.parametrize(
    ("time", "dirname"),
    [
        ("2026-12-02T09:33:04.542235546Z", "2026-12-02T09-33-04Z"),
        ("2026-12-02T10:33:04.5+01:00", "2026-12-02T09-33-04Z"),
        ("2026-12-02T09:33:04Z", "2026-12-02T09-33-04Z"),
    ],
)
def test_snapshot_times_become_directory_names(time, dirname):
    assert snapshot_dirname(time) == dirname


def test_snapshot_paths_are_absolute_in_the_snapshot():
    assert snapshot_path("notes/a.txt") == "/notes/a.txt"
    assert snapshot_path("/") == "/"


def test_the_shipped_restic_rbac_manifest_validates_and_grants_jobs_only():
    text = (shipped_values_dir() / "manifests" / "backup-restic-rbac.yaml").read_text()
    docs = list(yaml.safe_load_all(text))
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    role = next(d for d in docs if d["kind"] == "Role")
    assert {"create", "delete"} <= set(
        next(r for r in role["rules"] if r["resources"] == ["jobs"])["verbs"]
    )
    # the snapshot backend's extra rights stay in its own manifest
    granted = {
        (g, r) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]
    }
    assert ("snapshot.storage.k8s.io", "volumesnapshots") not in granted
    assert ("", "persistentvolumeclaims") not in granted
