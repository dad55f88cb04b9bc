"""Each user's backup status from the Jobs on record (pure: the Jobs the service builds, with the
status Kubernetes gives them)."""

from __future__ import annotations

from jupyterhub_platform.services.backup.manifests import JobSettings, backup_job, restore_job
from jupyterhub_platform.services.backup.views import backup_status

SETTINGS = JobSettings(image="restic", repository="s3:http://s3/b", secret_name="s")


def _job(name, user, outcome=None, start=None, end=None, kind="backup"):
    if kind == "backup":
        job = backup_job(name, user, f"claim-{user}", None, SETTINGS)
    else:
        job = restore_job(name, user, f"claim-{user}", None, SETTINGS, snapshot_id="ab12cd34",
                          snapshot_dir="2026-12-01T02-00-00Z", paths=[])  # fmt: skip
    job["status"] = {"startTime": start}
    if outcome:
        job["status"]["conditions"] = [{"type": outcome, "status": "True"}]
        job["status"]["completionTime"] = end
    return job


def test_last_success_duration_and_failures_per_user():
    jobs = [
        _job("b1", "alice", "Complete", "2026-12-01T02:00:00Z", "2026-12-01T02:00:40Z"),
        _job("b2", "alice", "Complete", "2026-12-02T02:00:00Z", "2026-12-02T02:01:30Z"),
        _job("b3", "alice", "Failed", "2026-12-02T03:00:00Z", "2026-12-02T03:00:05Z"),
        _job("b4", "bob", None, "2026-12-02T02:00:00Z"),
        _job("r1", "carol", "Failed", "2026-12-02T02:00:00Z", "2026-12-02T02:00:01Z", "restore"),
    ]
    status = backup_status(jobs)
    assert set(status) == {"alice", "bob"}  # restore Jobs are not backups
    alice = status["alice"].as_json()
    assert alice["last_success"] == "2026-12-02T02:01:30+00:00"
    assert alice["last_duration_seconds"] == 90.0
    assert (alice["failures"], alice["failed_jobs"], alice["running"]) == (1, ["b3"], False)
    bob = status["bob"].as_json()
    assert (bob["last_success"], bob["failures"], bob["running"]) == (None, 0, True)
