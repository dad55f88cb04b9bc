"""The backup service refuses bad settings with the setting and value, never a traceback."""

from __future__ import annotations

import shutil

import pytest

from jupyterhub_platform.policy.backup import BackupDecision
from jupyterhub_platform.profiles import bundled_profiles_dir
from jupyterhub_platform.services.backup.app import BackupApp

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
