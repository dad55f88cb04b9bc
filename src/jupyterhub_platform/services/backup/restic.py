"""The shell programs a backup or restore Job runs, and how names and times become paths.

Layout: one restic repository per user (``<repository>/<claim>``) — a user's Job can only ever
open that user's repository, locks and prunes of one user never wait for another's, and
``restic unlock --remove-all`` is safe at the start of a run because the service runs at most one
Job per user. The price is no deduplication across users. Secrets reach restic only as
environment variables from a Secret (``secretKeyRef``), never in a pod spec or an argument.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import PurePosixPath

TERMINATION_MESSAGE_PATH = "/dev/termination-log"

BACKUP_SCRIPT = """set -eu
cd "$1"
if ! restic cat config >/dev/null 2>&1; then
    restic init
fi
# a run killed midway leaves its lock; this is the only Job of this repository (docs/backup.md)
restic unlock --remove-all
summary=$(restic backup --json --quiet --host "$2" --tag "$3" --one-file-system .)
echo "$summary"
message="$4"
shift 4
restic forget --keep-last 1 "$@" --prune
# the run's figures, for the service: Kubernetes keeps this file's contents in the pod's status
echo "$summary" | tail -n 1 > "$message"
"""
"""``sh -c BACKUP_SCRIPT backup <home> <host> <tag> <message file> <retention flags...>``: a snapshot whose tree
is the home's contents, then retention (``--keep-last 1``: the newest good backup always stays;
an interrupted backup writes no snapshot, so the newest snapshot is always a good one). Once all
of it succeeded, restic's JSON summary (bytes added and processed, files, the snapshot) is the
container's termination message; a failed run writes none, so its message is its log's end."""

RESTORE_SCRIPT = """set -eu
base="$1/restored/$2"
target="$base"
n=1
while [ -e "$target" ]; do
    target="$base-$n"
    n=$((n + 1))
done
mkdir -p "$target"
snapshot="$3"
shift 3
restic restore "$snapshot" --target "$target" "$@"
echo "restored into $target"
"""
"""``sh -c RESTORE_SCRIPT restore <home> <snapshot-time> <snapshot-id> [--include /p ...]``: into
a directory that did not exist (never over existing files); restic keeps modes, times, owners
and symlinks."""

SNAPSHOT_ID = re.compile(r"^[0-9a-f]{8,64}$")


class RestoreRequestError(ValueError):
    """A restore request names a bad snapshot or path; the message says which and why."""


@dataclass(frozen=True)
class Retention:
    """How many daily, weekly and monthly snapshots ``restic forget`` keeps."""

    daily: int = 7
    weekly: int = 4
    monthly: int = 6

    def flags(self) -> list[str]:
        return [
            f"--keep-daily={self.daily}",
            f"--keep-weekly={self.weekly}",
            f"--keep-monthly={self.monthly}",
        ]


def repository_url(base: str, claim: str) -> str:
    """The user's repository: ``s3:https://host/bucket`` + ``/<claim>``."""
    return base.rstrip("/") + "/" + claim


def backup_argv(
    home: str, host: str, user: str, retention: Retention, message: str = TERMINATION_MESSAGE_PATH
) -> list[str]:
    """``message``: where the run's summary goes (the container's terminationMessagePath)."""
    return [
        "sh", "-c", BACKUP_SCRIPT, "backup", home, host, user_tag(user), message,
        *retention.flags(),
    ]  # fmt: skip


def restore_argv(
    home: str, snapshot_id: str, snapshot_time: str, paths: Sequence[str]
) -> list[str]:
    check_snapshot_id(snapshot_id)
    includes = []
    for path in paths:
        includes += ["--include", snapshot_path(path)]
    return ["sh", "-c", RESTORE_SCRIPT, "restore", home, snapshot_time, snapshot_id, *includes]


def check_snapshot_id(snapshot_id: str) -> str:
    if not SNAPSHOT_ID.match(snapshot_id):
        raise RestoreRequestError(f"snapshot: {snapshot_id!r} is not a restic snapshot ID")
    return snapshot_id


def snapshot_path(path: str) -> str:
    """``path`` (in the snapshot, ``/`` = the home) as an absolute path without ``..``."""
    pure = PurePosixPath("/" + path.lstrip("/"))
    if ".." in pure.parts or "\n" in path:
        raise RestoreRequestError(f"path: {path!r} must stay inside the home (no '..')")
    return str(pure)


def user_tag(user: str) -> str:
    return f"user={user}"


def snapshot_dirname(time: str) -> str:
    """restic's snapshot time (RFC 3339, nanoseconds) as a directory name: 2026-12-02T09-33-04Z."""
    match = _RFC3339.match(time)
    if not match:
        raise ValueError(f"snapshot time: {time!r} is not an RFC 3339 time")
    seconds, offset = match.group(1), match.group(2)
    parsed = datetime.fromisoformat(seconds + ("+00:00" if offset == "Z" else offset))
    return parsed.astimezone(timezone.utc).strftime("%Y-%m-%dT%H-%M-%SZ")


def restore_target(time: str) -> str:
    """Where a restore of the snapshot taken at ``time`` goes, as the user sees it (a second
    restore of the same snapshot picks ``<time>-1``, never an existing directory)."""
    return f"~/restored/{snapshot_dirname(time)}/"


# restic's times carry up to nanoseconds, which Python 3.10's fromisoformat does not take
_RFC3339 = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.\d+)?(Z|[+-]\d\d:\d\d)$")
