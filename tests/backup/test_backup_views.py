"""Each user's backup status from the Jobs on record (pure: the Jobs the service builds, with the
status Kubernetes gives them)."""

from __future__ import annotations

from jupyterhub_platform.services.backup.manifests import JobSettings, backup_job, restore_job
from jupyterhub_platform.services.backup.views import backup_status

SETTINGS = JobSettings(image="restic", repository="s3:http://s3/b", secret_name="s")


def _job(name, user, outcome=None, start=None, end=None, kind="backup"):
    """A Job as the API returns it (its uid is its name here)."""
    if kind == "backup":
        job = backup_job(name, user, f"claim-{user}", None, SETTINGS)
    else:
        job = restore_job(name, user, f"claim-{user}", None, SETTINGS, snapshot_id="ab12cd34",
                          snapshot_dir="2026-12-01T02-00-00Z", paths=[])  # fmt: skip
    job["metadata"]["uid"] = name
    job["status"] = {"startTime": start}
    if outcome:
        job["status"]["conditions"] = [
            {"type": outcome, "status": "True", "lastTransitionTime": end}
        ]
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


def _pod(job: str, message: str, finished: str) -> dict:
    """A pod of ``job`` whose container ended with ``message`` (its termination message)."""
    ended = {"exitCode": 0, "message": message, "finishedAt": finished}
    return {
        "metadata": {"ownerReferences": [{"kind": "Job", "uid": job, "controller": True}]},
        "status": {"containerStatuses": [{"name": "backup", "state": {"terminated": ended}}]},
    }


SUMMARY = (
    '{"message_type":"summary","files_new":3,"data_added":5120,"total_bytes_processed":90000,'
    '"total_duration":1.5,"snapshot_id":"0f7126c7"}'
)


def test_bytes_of_the_last_success_and_why_the_last_failure_failed_from_the_pods():
    jobs = [
        _job("b1", "alice", "Complete", "2026-12-01T02:00:00Z", "2026-12-01T02:00:40Z"),
        _job("b2", "alice", "Complete", "2026-12-02T02:00:00Z", "2026-12-02T02:01:30Z"),
        _job("b3", "alice", "Failed", "2026-12-02T03:00:00Z", "2026-12-02T03:00:05Z"),
        _job("b4", "bob", "Complete", "2026-12-02T02:00:00Z", "2026-12-02T02:00:09Z"),
        _job("b5", "carol", "Complete", "2026-12-02T02:00:00Z", "2026-12-02T02:00:09Z"),
    ]
    refused = "Fatal: unable to open config file: connection refused"
    pods = [
        _pod("b1", SUMMARY.replace("5120", "1"), "2026-12-01T02:00:40Z"),
        _pod("b2", SUMMARY, "2026-12-02T02:01:30Z"),
        _pod("b3", "Fatal: first attempt", "2026-12-02T03:00:01Z"),
        _pod("b3", refused, "2026-12-02T03:00:05Z"),  # the backoffLimit's last retry
        _pod("b4", "not json", "2026-12-02T02:00:09Z"),
    ]  # carol's pod is gone: no figures, no error
    status = {u: s.as_json() for u, s in backup_status(jobs, pods).items()}
    assert (status["alice"]["last_bytes_added"], status["alice"]["last_bytes_processed"]) == (
        5120,
        90000,
    )
    assert status["alice"]["last_failure"] == refused
    for user in ("bob", "carol"):
        assert status[user]["last_success"] and status[user]["last_bytes_added"] is None
        assert status[user]["last_failure"] is None
