"""Cron schedules and one cycle's plan: pure decisions, no process."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from jupyterhub_platform.policy import policy_from_text
from jupyterhub_platform.services.backup.app import job_name
from jupyterhub_platform.services.backup.cycle import (
    DONE,
    Candidate,
    Plan,
    created_since,
    home_claims,
    new_backup_jobs,
    opted_out,
    plan_cycle,
    running_claims,
)
from jupyterhub_platform.services.backup.manifests import JobSettings, backup_job
from jupyterhub_platform.services.backup.restic import prune_due
from jupyterhub_platform.services.backup.schedule import CronError, parse_cron

UTC = timezone.utc


@pytest.mark.parametrize(
    ("expr", "after", "expected"),
    [
        ("0 2 * * *", datetime(2026, 12, 2, 9, 30, tzinfo=UTC), datetime(2026, 12, 3, 2, 0, tzinfo=UTC)),
        ("0 2 * * *", datetime(2026, 12, 2, 1, 59, 30, tzinfo=UTC), datetime(2026, 12, 2, 2, 0, tzinfo=UTC)),
        ("*/15 * * * *", datetime(2026, 12, 2, 9, 15, tzinfo=UTC), datetime(2026, 12, 2, 9, 30, tzinfo=UTC)),
        ("30 3 * * 0", datetime(2026, 12, 2, 0, 0, tzinfo=UTC), datetime(2026, 12, 6, 3, 30, tzinfo=UTC)),
        ("0 0 1 1 *", datetime(2026, 12, 2, 0, 0, tzinfo=UTC), datetime(2027, 1, 1, 0, 0, tzinfo=UTC)),
        ("0 0 29 2 *", datetime(2026, 3, 1, tzinfo=UTC), datetime(2028, 2, 29, tzinfo=UTC)),
        ("0 12 1 * 1", datetime(2026, 12, 2, tzinfo=UTC), datetime(2026, 12, 7, 12, 0, tzinfo=UTC)),
    ],
)  # fmt: skip
def test_next_run(expr, after, expected):
    assert parse_cron(expr).next_after(after) == expected


@pytest.mark.parametrize(
    ("expr", "at", "expected"),
    [
        ("0 2 * * *", datetime(2026, 12, 2, 9, 30, tzinfo=UTC), datetime(2026, 12, 2, 2, 0, tzinfo=UTC)),
        ("0 2 * * *", datetime(2026, 12, 2, 1, 59, tzinfo=UTC), datetime(2026, 12, 1, 2, 0, tzinfo=UTC)),
        ("0 2 * * *", datetime(2026, 12, 2, 2, 0, 40, tzinfo=UTC), datetime(2026, 12, 2, 2, 0, tzinfo=UTC)),
        ("*/15 * * * *", datetime(2026, 12, 2, 9, 14, tzinfo=UTC), datetime(2026, 12, 2, 9, 0, tzinfo=UTC)),
        ("30 3 * * 0", datetime(2026, 12, 2, 0, 0, tzinfo=UTC), datetime(2026, 11, 29, 3, 30, tzinfo=UTC)),
        ("0 0 29 2 *", datetime(2026, 3, 1, tzinfo=UTC), datetime(2024, 2, 29, tzinfo=UTC)),
    ],
)  # fmt: skip
def test_the_round_a_service_starting_now_is_in(expr, at, expected):
    cron = parse_cron(expr)
    assert cron.last_at_or_before(at) == expected
    assert cron.next_after(expected - timedelta(minutes=1)) == expected  # it is a scheduled time


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("0 2 * *", "must have 5 fields"),
        ("61 * * * *", "minute '61' is outside 0-59"),
        ("0 x * * *", "hour 'x' is not a number"),
        ("*/0 * * * *", "minute '\\*/0' is outside"),
        ("0 0 31 2 *", "never matches"),
    ],
)
def test_bad_schedules_name_the_field(expr, message):
    with pytest.raises(CronError, match=message):
        parse_cron(expr).next_after(datetime(2026, 1, 1, tzinfo=UTC))


def _pvc(name, user, deleting=False):
    meta = {"name": name, "annotations": {"hub.jupyter.org/username": user}}
    if deleting:
        meta["deletionTimestamp"] = "2026-12-02T00:00:00Z"
    return {"metadata": meta}


def test_plan_skips_opted_out_busy_and_over_the_limit():
    claims = home_claims(
        [_pvc("claim-a", "a"), _pvc("claim-b", "b"), _pvc("claim-c", "c"),
         _pvc("claim-d", "d"), _pvc("claim-gone", "gone", deleting=True), {"metadata": {"name": "other"}}]
    )  # fmt: skip
    assert [c.claim for c in claims] == ["claim-a", "claim-b", "claim-c", "claim-d"]
    settings = JobSettings(image="i", repository="s3:http://s3/b", secret_name="s")
    running = backup_job("backup-b-1", "b", "claim-b", None, settings)
    finished = backup_job("backup-c-1", "c", "claim-c", None, settings)
    finished["status"] = {"conditions": [{"type": "Complete", "status": "True"}]}
    busy = running_claims([running, finished])
    assert busy == {"claim-b"}
    policy = policy_from_text(
        "groups: {no-backup: {}, x: {}}\nbackup: {opt_out_groups: [no-backup]}\n", "p.yaml"
    )
    out = opted_out(claims, {"a": ["no-backup", "x"], "c": ["x"]}, policy)
    assert out == {"a": "opted out: group no-backup opts out (backup.opt_out_groups)"}
    plan = plan_cycle(claims, busy, out, 1)
    assert plan.start == (Candidate("c", "claim-c"),)
    assert plan.skipped == {
        "a": "opted out: group no-backup opts out (backup.opt_out_groups)",
        "b": "a Job for this volume is still running",
        "d": "concurrency limit reached; when a slot frees",
    }


def test_job_names_fit_kubernetes():
    now = datetime(2026, 12, 2, 9, 30, 5, tzinfo=UTC)
    long = job_name("backup", "claim-" + "x" * 80, now)
    assert len(long) <= 63 and long.endswith("-20261202093005")
    assert job_name("backup", "claim-a", now) != job_name("backup", "claim-b", now)


def _job(claim: str, created: str, kind: str = "backup") -> dict:
    labels = {"backup.jupyterhub-platform/claim": claim, "backup.jupyterhub-platform/kind": kind}
    return {"metadata": {"labels": labels, "creationTimestamp": created}}


def test_a_round_counts_backups_made_since_it_began():
    start = datetime(2026, 12, 2, 2, 0, tzinfo=UTC)
    items = [
        _job("claim-a", "2026-12-02T02:03:00Z"),  # this round
        _job("claim-b", "2026-12-01T02:03:00Z"),  # yesterday's round
        _job("claim-c", "2026-12-02T02:05:00Z", kind="restore"),  # a restore is no backup
        {"metadata": {"labels": {"backup.jupyterhub-platform/claim": "claim-d"},  # a snapshot
                      "creationTimestamp": "2026-12-02T02:00:00Z"}},
    ]  # fmt: skip
    assert created_since(items, start) == {"claim-a", "claim-d"}
    assert created_since(items, None) == set()  # not in a round: nothing is done


def test_a_round_goes_on_until_every_home_is_done():
    """Four homes, one slot: each cycle starts one, those done are not started again, and the
    homes still waiting (no slot, or an older Job still running) keep the round going."""
    claims = [Candidate(u, f"claim-{u}") for u in "abcd"]
    done: set[str] = set()
    started = []
    for _ in range(4):
        plan = plan_cycle(claims, set(), {}, 1, done)
        (first,) = plan.start
        started.append(first.user)
        done.add(first.claim)
        assert {c.user for c in plan.waiting} == {c.user for c in claims} - {u for u in started}
    assert started == list("abcd")
    last = plan_cycle(claims, {"claim-a"}, {"b": "opted out: x"}, 1, {"claim-c", "claim-d"})
    assert last == Plan(
        start=(),
        skipped={"a": "a Job for this volume is still running", "b": "opted out: x",
                 "c": DONE, "d": DONE},
        waiting=(Candidate("a", "claim-a"),),
    )  # fmt: skip
    assert plan_cycle(claims, set(), {}, 1, {c.claim for c in claims}).waiting == ()


def test_the_rounds_date_decides_which_jobs_prune():
    """A round that began before midnight decides by its own date in cycles after midnight;
    with no round (an admin's run) the cycle's date decides."""
    settings = JobSettings(image="i", repository="s3:http://s3/b", secret_name="s")
    claims = [Candidate(f"u{i}", f"claim-u{i}") for i in range(14)]
    began = datetime(2026, 12, 2, 23, 50, tzinfo=UTC)
    after_midnight = began + timedelta(minutes=20)
    for round_start, day in ((began, began.date()), (None, after_midnight.date())):
        jobs = new_backup_jobs(claims, [], settings, after_midnight, round_start, 7)
        assert [j.candidate for j in jobs] == claims
        assert [j.prune for j in jobs] == [prune_due(c.claim, day, 7) for c in claims]
        assert any(j.prune for j in jobs) and not all(j.prune for j in jobs)
        for job in jobs:
            command = job.body["spec"]["template"]["spec"]["containers"][0]["command"]
            assert command[8] == ("prune" if job.prune else "keep")
            assert job.body["metadata"]["name"] == job.name
    # the two dates give different decisions for some claims: the date is what decides
    assert [prune_due(c.claim, began.date(), 7) for c in claims] != [
        prune_due(c.claim, after_midnight.date(), 7) for c in claims
    ]
