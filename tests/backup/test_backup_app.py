"""The backup service refuses bad settings with the setting and value, never a traceback."""

from __future__ import annotations

import asyncio
import shutil
from datetime import datetime, timezone

import pytest

from jupyterhub_platform.policy.backup import BackupDecision
from jupyterhub_platform.profiles import bundled_profiles_dir
from jupyterhub_platform.services.backup.app import BackupApp
from jupyterhub_platform.services.backup.cycle import Candidate, Plan

S3 = "--BackupApp.repository=s3:http://s3/b"
CULLING = "culling: {policies: {standard: {idle_timeout: 1h}}}\n"  # the profile's


def _one_profile(tmp_path, monkeypatch) -> None:
    """The service reads the profiles as the spawner does: here the shipped JupyterLab one."""
    (tmp_path / "profiles").mkdir()
    shutil.copy(bundled_profiles_dir() / "jupyterlab.yaml", tmp_path / "profiles")
    monkeypatch.setenv("JUPYTERHUB_PLATFORM_PROFILES", str(tmp_path / "profiles"))


@pytest.mark.parametrize(
    ("argv", "policy", "message"),
    [
        (["--BackupApp.schedule=61 2 * * *", S3], None,
         "BackupApp.schedule: schedule: minute '61' is outside 0-59"),
        (["--BackupApp.repository=/srv/backups"], None,
         "BackupApp.repository: '/srv/backups' is not s3:<url>/<bucket>"),
        ([S3, "--BackupApp.opt_out_groups=students"], "groups: {students: {}}\n" + CULLING,
         "BackupApp.opt_out_groups (students) was removed: list the groups under "
         "backup.opt_out_groups in the group policy file (docs/backup.md)"),
        ([S3, "--BackupApp.prune_every=0"], CULLING,
         "BackupApp.prune_every: 0 must be at least 1 (days)"),
        ([S3], None, "no policy file: set $JUPYTERHUB_PLATFORM_POLICY or PolicySource.policy_file"),
        ([S3], CULLING + "groups: {students: {}}\nbackup: {opt_out_groups: [studnets]}\n",
         "policy.yaml:3: backup.opt_out_groups[0]: 'studnets' is not a group of this policy "
         "(groups: students)"),
    ],
)  # fmt: skip
def test_bad_settings_exit_with_the_setting(argv, policy, message, capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("JUPYTERHUB_PLATFORM_POLICY", raising=False)
    _one_profile(tmp_path, monkeypatch)
    if policy is not None:
        (tmp_path / "policy.yaml").write_text(policy)
        argv = [*argv, f"--PolicySource.policy_file={tmp_path / 'policy.yaml'}"]
    app = BackupApp()
    with pytest.raises(SystemExit) as exit_:
        app.initialize(["--BackupApp.api_token=t", *argv])
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_the_policy_file_is_read_at_start(tmp_path, monkeypatch):
    path = tmp_path / "policy.yaml"
    path.write_text(CULLING + "groups: {guests: {}}\nbackup: {opt_out_profiles: [jupyterlab]}\n")
    monkeypatch.setenv("JUPYTERHUB_PLATFORM_POLICY", str(path))
    _one_profile(tmp_path, monkeypatch)
    app = BackupApp()
    app.initialize(["--BackupApp.api_token=t", S3])
    decision = app.policy.backup_for(["guests"], normalised=True)
    assert decision == BackupDecision(
        False, "every profile they may use opts out: jupyterlab (backup.opt_out_profiles)"
    )


def _app_with_cycles(tmp_path, monkeypatch, waiting_per_cycle: list[int]) -> tuple[BackupApp, list]:
    """A service whose cycles report ``waiting_per_cycle`` homes still waiting, in turn."""
    path = tmp_path / "policy.yaml"
    path.write_text(CULLING + "groups: {guests: {}}\n")
    monkeypatch.setenv("JUPYTERHUB_PLATFORM_POLICY", str(path))
    _one_profile(tmp_path, monkeypatch)
    app = BackupApp()
    app.initialize(["--BackupApp.api_token=t", S3, "--BackupApp.round_poll=0"])
    rounds = []

    async def cycle(round_start=None):
        rounds.append(round_start)
        waiting = waiting_per_cycle[len(rounds) - 1]
        app.last_plan = Plan(
            (), {}, tuple(Candidate(f"u{i}", f"claim-u{i}") for i in range(waiting))
        )
        return []

    app.cycle = cycle
    return app, rounds


async def test_a_round_cycles_until_no_home_waits(tmp_path, monkeypatch):
    """With 10 homes and 4 slots a round takes several cycles, all of the same round."""
    app, rounds = _app_with_cycles(tmp_path, monkeypatch, [6, 2, 0, 99])
    due = app.cron.last_at_or_before(datetime.now(timezone.utc))
    await app._round(due)
    assert rounds == [due, due, due]


async def test_a_round_ends_when_the_next_one_is_due(tmp_path, monkeypatch, capsys):
    app, rounds = _app_with_cycles(tmp_path, monkeypatch, [3, 3, 3])
    long_ago = datetime(2020, 1, 1, 2, 0, tzinfo=timezone.utc)  # its next round has long begun
    await app._round(long_ago)
    assert rounds == [long_ago]
    assert "ends with 3 homes not backed up" in capsys.readouterr().err


async def test_cycles_never_overlap(tmp_path, monkeypatch):
    """A round's cycle and an admin's run at once: the second waits for the first (both would
    otherwise see a claim free and start its Job twice)."""
    app, _ = _app_with_cycles(tmp_path, monkeypatch, [])
    running, overlapped = [], []

    async def one(round_start, actor):
        overlapped.append(bool(running))
        running.append(1)
        await asyncio.sleep(0.05)
        running.pop()
        return []

    app._cycle = one
    await asyncio.gather(BackupApp.cycle(app), BackupApp.cycle(app, None))
    assert overlapped == [False, False]
