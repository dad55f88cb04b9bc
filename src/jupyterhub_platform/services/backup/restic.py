"""The shell programs a backup or restore Job runs, and how names and times become paths.

Layout: one restic repository per user (``<repository>/<claim>``) — a user's Job can only ever
open that user's repository, and locks and prunes of one user never wait for another's. The
price is no deduplication across users. Secrets reach restic only as environment variables from
a Secret (``secretKeyRef``), never in a pod spec or an argument.

A run opens the repository as few times as it can: each open is a scrypt key derivation that
``restic init`` calibrated to ~0.5 s, and a Job's fixed cost is what an unchanged home's run is
made of (docs/backup.md, "Benchmark"). So ``backup`` comes first; ``init`` only when restic
says the repository does not exist; ``forget`` (with ``--prune`` only on the user's prune day,
:func:`prune_due`) only when there can be something to forget.

Locks: ``backup`` takes a shared lock, ``forget``/``prune`` an exclusive one, and a run killed
midway (SIGKILL, node loss) leaves its lock behind, which blocks the other kind until removed.
``restic unlock --remove-all`` runs only when a step failed because of a lock, and then that
step is retried once. Removing every lock is safe because nothing else holds one on this
repository: the service runs at most one Job (backup or restore) per user's repository
(``cycle.running_claims``), and its own reads (``snapshots``, ``ls``) use ``--no-lock``. A
person running ``restic check`` by hand must do it while no Job of that user runs (the
runbook in docs/backup.md).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import PurePosixPath

TERMINATION_MESSAGE_PATH = "/dev/termination-log"
CACHE_DIR = "/cache"
"""The Job's restic cache (an emptyDir): a run fills it with the index and trees it reads."""

BACKUP_SCRIPT = """set -eu
cd "$1"
host="$2" tag="$3" message="$4" prune="$5"
shift 5
err=$(mktemp)
trap 'rm -f "$err"' EXIT
# restic with its stderr in our log and in $err (to tell why it failed); restic's exit code
run() {
    code=0
    restic "$@" 2>"$err" || code=$?
    cat "$err" >&2
    return "$code"
}
# restic >= 0.17: exit code 10; 0.14 (Debian): 1, and S3's answer for the missing config file
missing() {
    [ "$1" -eq 10 ] || grep -q "unable to open config file: Stat: The specified key does not exist" "$err"
}
# restic >= 0.16: exit code 11; 0.14: 1 and these words
locked() {
    [ "$1" -eq 11 ] || grep -q -e "unable to create lock in backend" -e "repository is already locked" "$err"
}
backup() {
    summary=$(run backup --json --quiet --host "$host" --tag "$tag" --one-file-system .)
}
fresh=no
code=0
backup || code=$?
if [ "$code" -ne 0 ] && missing "$code"; then
    restic init
    fresh=yes
    code=0
    backup || code=$?
fi
if [ "$code" -ne 0 ] && locked "$code"; then
    # a killed run's lock; this is the only Job of this repository (restic.py's docstring)
    restic unlock --remove-all
    backup
elif [ "$code" -ne 0 ]; then
    exit "$code"
fi
echo "$summary"
# a repository created by this run holds one snapshot: there is nothing to forget
if [ "$fresh" = no ]; then
    set -- forget --keep-last 1 "$@"
    if [ "$prune" = prune ]; then
        set -- "$@" --prune
    fi
    code=0
    run "$@" || code=$?
    if [ "$code" -ne 0 ] && locked "$code"; then
        restic unlock --remove-all
        run "$@"
    elif [ "$code" -ne 0 ]; then
        exit "$code"
    fi
fi
# the run's figures, for the service: Kubernetes keeps this file's contents in the pod's status
echo "$summary" | tail -n 1 > "$message"
"""
"""``sh -c BACKUP_SCRIPT backup <home> <host> <tag> <message file> prune|keep <retention
flags...>``: a snapshot whose tree is the home's contents (``init`` first if the repository does
not exist), then retention (``--keep-last 1``: the newest good backup always stays; an
interrupted backup writes no snapshot, so the newest snapshot is always a good one), with
``--prune`` when the fifth argument is ``prune``. Once all of it succeeded, restic's JSON
summary (bytes added and processed, files, the snapshot) is the container's termination
message; a failed run writes none, so its message is its log's end."""

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
    home: str,
    host: str,
    user: str,
    retention: Retention,
    message: str = TERMINATION_MESSAGE_PATH,
    *,
    prune: bool = False,
) -> list[str]:
    """``message``: where the run's summary goes (the container's terminationMessagePath);
    ``prune``: this run's ``forget`` also prunes (:func:`prune_due`)."""
    return [
        "sh", "-c", BACKUP_SCRIPT, "backup", home, host, user_tag(user), message,
        "prune" if prune else "keep", *retention.flags(),
    ]  # fmt: skip


def prune_due(claim: str, day: date, every: int) -> bool:
    """Whether the run of ``claim``'s round on ``day`` prunes: one day in ``every``, each claim
    on its own day (a stable hash of its name), so prunes spread over the period. Stateless:
    every run of the same claim and round date decides the same (a retried Job, a restarted
    service). ``every`` 1: every run prunes."""
    if every < 1:
        raise ValueError(f"prune_every: {every!r} must be at least 1 (days)")
    spread = int.from_bytes(hashlib.sha256(claim.encode()).digest()[:8], "big")
    return (day.toordinal() + spread) % every == 0


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
