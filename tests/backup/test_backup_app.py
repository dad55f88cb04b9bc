"""The backup service refuses bad settings with the setting and value, never a traceback."""

from __future__ import annotations

import pytest

from jupyterhub_platform.services.backup.app import BackupApp


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--BackupApp.schedule=61 2 * * *", "--BackupApp.repository=s3:http://s3/b"],
         "BackupApp.schedule: schedule: minute '61' is outside 0-59"),
        (["--BackupApp.repository=/srv/backups"],
         "BackupApp.repository: '/srv/backups' is not s3:<url>/<bucket>"),
    ],
)  # fmt: skip
def test_bad_settings_exit_with_the_setting(argv, message, capsys):
    app = BackupApp()
    with pytest.raises(SystemExit) as exit_:
        app.initialize(["--BackupApp.api_token=t", *argv])
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
