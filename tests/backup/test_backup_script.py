"""The backup Job's script's decisions with a stand-in ``restic`` on PATH that fails with given
exit codes: which steps run, how often, and what the run exits with. Newer restic's exit codes
(10: no repository, 11: locked) are taken as well as 0.14's messages (which the tests with the
real restic, test_restic_jobs.py, check)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from jupyterhub_platform.services.backup.restic import Retention, backup_argv

pytestmark = pytest.mark.processes  # sh and the stand-in

SUMMARY = {"message_type": "summary", "snapshot_id": "0123abcd", "total_bytes_processed": 5}

# each call: its arguments into calls; its exit code the first line of codes/<command> (0 when
# none is left); a backup that succeeds prints restic's summary line
STAND_IN = """#!/bin/sh
echo "$*" >> "$STAND_IN/calls"
codes="$STAND_IN/codes/$1"
code=0
if [ -s "$codes" ]; then
    code=$(head -n 1 "$codes")
    sed -i 1d "$codes"
fi
if [ "$code" -ne 0 ]; then
    echo "Fatal: stand-in fails with $code" >&2
elif [ "$1" = backup ]; then
    echo 'SUMMARY'
fi
exit "$code"
""".replace("SUMMARY", json.dumps(SUMMARY, separators=(",", ":")))

RETENTION = Retention(daily=7, weekly=4, monthly=6)
FORGET = "forget --keep-last 1 --keep-daily=7 --keep-weekly=4 --keep-monthly=6"
BACKUP = "backup --json --quiet --host h --tag user=alice --one-file-system ."


def _run(tmp_path: Path, codes: dict[str, list[int]], prune: bool = False):
    bin_dir, state = tmp_path / "bin", tmp_path / "state"
    (state / "codes").mkdir(parents=True)
    bin_dir.mkdir()
    (bin_dir / "restic").write_text(STAND_IN)
    (bin_dir / "restic").chmod(0o755)
    for command, sequence in codes.items():
        (state / "codes" / command).write_text("".join(f"{c}\n" for c in sequence))
    home, message = tmp_path / "home", tmp_path / "termination-log"
    home.mkdir()
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "STAND_IN": str(state)}
    argv = backup_argv(str(home), "h", "alice", RETENTION, str(message), prune=prune)
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30)
    calls = (state / "calls").read_text().splitlines()
    return done.returncode, calls, message


@pytest.mark.parametrize(
    ("codes", "prune", "calls", "rc"),
    [
        ({}, False, [BACKUP, FORGET], 0),
        ({}, True, [BACKUP, FORGET + " --prune"], 0),
        # no repository (restic >= 0.17): init, back up again; a new repository has nothing
        # to forget
        ({"backup": [10]}, True, [BACKUP, "init", BACKUP], 0),
        # locked (restic >= 0.16): unlock only then, and the step once more
        ({"backup": [11]}, False, [BACKUP, "unlock --remove-all", BACKUP, FORGET], 0),
        ({"forget": [11]}, True,
         [BACKUP, FORGET + " --prune", "unlock --remove-all", FORGET + " --prune"], 0),
        ({"backup": [11, 11]}, False, [BACKUP, "unlock --remove-all", BACKUP], 11),
        ({"forget": [11, 11]}, False, [BACKUP, FORGET, "unlock --remove-all", FORGET], 11),
        # any other failure (S3 down, a wrong password) ends the run: no init, no unlock
        ({"backup": [1]}, False, [BACKUP], 1),
        ({"backup": [10], "init": [1]}, False, [BACKUP, "init"], 1),
        ({"forget": [1]}, False, [BACKUP, FORGET], 1),
    ],
    ids=["plain", "prune-day", "missing", "locked-backup", "locked-forget",
         "still-locked-backup", "still-locked-forget", "backup-fails", "init-fails",
         "forget-fails"],
)  # fmt: skip
def test_the_script_runs_only_the_steps_needed(tmp_path, codes, prune, calls, rc):
    code, made, message = _run(tmp_path, codes, prune)
    assert (code, made) == (rc, calls)
    # the summary is the termination message only when the whole run succeeded
    if rc == 0:
        assert json.loads(message.read_text()) == SUMMARY
    else:
        assert not message.exists()
