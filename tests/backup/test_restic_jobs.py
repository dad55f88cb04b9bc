"""The backup and restore Jobs' programs with real restic against a real S3 server
(``rclone serve s3``, backed by a directory): what the Jobs run, minus the pod around them."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path

import pytest

from jupyterhub_platform.devcluster.procs import ManagedProcess
from jupyterhub_platform.services.backup.manifests import SECRET_KEYS
from jupyterhub_platform.services.backup.repository import RepositoryError, run_restic
from jupyterhub_platform.services.backup.restic import (
    Retention,
    backup_argv,
    restore_argv,
    snapshot_dirname,
)
from jupyterhub_platform.services.backup.views import directory_listing, run_summary, snapshot_list
from tests.backup.backup_fixtures import restic_env, s3_server, tree

pytestmark = [pytest.mark.processes, pytest.mark.jh55_only]

CLAIM = "claim-alice"


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    with s3_server(tmp_path_factory.mktemp("s3")) as server:
        yield server


def _env(s3, repo: str) -> dict[str, str]:
    return restic_env(s3, repo, Path(s3["dir"]).parent.parent)


def _message(tmp_path: Path) -> str:
    """Where a run's summary goes (in a pod: its terminationMessagePath)."""
    return str(tmp_path / "termination-log")


def _run(argv, env, log: Path, timeout: float = 120) -> tuple[int, str]:
    proc = ManagedProcess(argv, name=argv[0], log_path=log, env=env)
    try:
        rc = proc.popen.wait(timeout=timeout)
    finally:
        proc.stop()
    return rc, log.read_text()


def _restic(env, tmp_path, *args) -> tuple[int, str]:
    return _run(["restic", *args], env, tmp_path / f"restic-{time.monotonic_ns()}.log")


def _snapshots(env, tmp_path) -> list[dict]:
    rc, out = _restic(env, tmp_path, "snapshots", "--json", "--quiet")
    assert rc == 0, out
    return json.loads(out.strip().splitlines()[-1])


def _home(root: Path) -> Path:
    home = root / "home"
    (home / "notes" / "deep").mkdir(parents=True)
    (home / "notes" / "a.txt").write_text("first notes\n")
    (home / "notes" / "deep" / "b.bin").write_bytes(os.urandom(300_000))
    (home / "script.sh").write_text("#!/bin/sh\necho hi\n")
    os.chmod(home / "script.sh", 0o750)
    os.chmod(home / "notes" / "a.txt", 0o600)
    os.symlink("notes/a.txt", home / "link-to-a")
    os.symlink("/nonexistent/target", home / "dangling")
    return home


def test_backup_then_restore_is_identical_and_never_overwrites(s3, tmp_path):
    env = _env(s3, CLAIM)
    home = _home(tmp_path)
    before = tree(home, skip="restored")
    rc, log = _run(
        backup_argv(str(home), "h", "alice", Retention(), _message(tmp_path)),
        env,
        tmp_path / "b1.log",
    )
    assert rc == 0, log
    (snapshot,) = _snapshots(env, tmp_path)
    assert snapshot["tags"] == ["user=alice"]
    summary = run_summary((tmp_path / "termination-log").read_text())  # what the pod reports
    assert summary["snapshot_id"] == snapshot["short_id"] and summary["data_added"] > 300_000
    assert summary["total_bytes_processed"] == sum(
        p.stat().st_size for p in home.rglob("*") if p.is_file() and not p.is_symlink()
    )

    (home / "notes" / "a.txt").write_text("overwritten\n")
    (home / "notes" / "deep" / "b.bin").unlink()
    (home / "link-to-a").unlink()

    dirname = snapshot_dirname(snapshot["time"])
    whole = restore_argv(str(home), snapshot["id"], dirname, [])
    rc, log = _run(whole, env, tmp_path / "r1.log")
    assert rc == 0, log
    restored = home / "restored" / dirname
    assert tree(restored) == before  # bytes, modes, mtimes, symlinks (dangling ones too)
    assert (home / "notes" / "a.txt").read_text() == "overwritten\n"  # the live file untouched

    one = restore_argv(str(home), snapshot["id"], dirname, ["notes/deep/b.bin"])
    rc, log = _run(one, env, tmp_path / "r2.log")
    assert rc == 0, log
    second = home / "restored" / f"{dirname}-1"
    assert f"restored into {second}" in log
    assert [p.relative_to(second).as_posix() for p in second.rglob("*") if p.is_file()] == [
        "notes/deep/b.bin"
    ]
    assert tree(restored) == before  # the first restore was not written over


def test_retention_keeps_the_newest_good_backup(s3, tmp_path):
    env = _env(s3, "claim-retention")
    home = _home(tmp_path)
    nothing = Retention(daily=0, weekly=0, monthly=0)
    for run in range(2):
        (home / "counter").write_text(str(run))
        rc, log = _run(
            backup_argv(str(home), "h", "carol", nothing, _message(tmp_path)),
            env,
            tmp_path / f"{run}.log",
        )
        assert rc == 0, log
    snapshots = _snapshots(env, tmp_path)
    assert len(snapshots) == 1
    rc, out = _restic(env, tmp_path, "dump", snapshots[0]["id"], "/counter")
    assert (rc, out) == (0, "1")


def test_a_killed_backup_leaves_a_consistent_repository_and_the_next_run_succeeds(s3, tmp_path):
    env = _env(s3, "claim-killed")
    home = _big_home(tmp_path)
    locks = s3["dir"] / "claim-killed" / "locks"
    proc = ManagedProcess(
        backup_argv(str(home), "h", "dave", Retention(), _message(tmp_path)),
        name="backup", log_path=tmp_path / "killed.log", env=env,
    )  # fmt: skip
    _taking_its_lock(proc, locks)
    proc.signal_group(signal.SIGKILL)  # restic dies holding its lock
    proc.stop()
    assert any(locks.iterdir()), "the killed run's lock should be left behind"
    rc, out = _restic(env, tmp_path, "check", "--no-lock")
    assert rc == 0, out  # nothing half-written is referenced
    rc, out = _restic(env, tmp_path, "prune", "--dry-run")
    assert rc != 0 and "lock" in out  # the stale lock blocks exclusive operations

    rc, log = _run(
        backup_argv(str(home), "h", "dave", Retention(), _message(tmp_path)),
        env,
        tmp_path / "next.log",
    )
    assert rc == 0, log
    # backup's shared lock coexists with the stale one; forget's exclusive lock does not, so
    # the locks are removed then (once) and forget runs again
    assert log.count("repository is already locked by PID") == 1, log
    assert log.count("successfully removed locks") == 1, log
    assert log.index('"message_type":"summary"') < log.index("already locked")
    assert not (locks.is_dir() and any(locks.iterdir()))
    rc, out = _restic(env, tmp_path, "check")
    assert rc == 0, out
    assert len(_snapshots(env, tmp_path)) == 1


def test_a_stale_exclusive_lock_is_removed_when_the_backup_meets_it(s3, tmp_path):
    """A run killed during forget/prune leaves an exclusive lock, which blocks the next run's
    backup: it removes the locks and backs up again (here the killed exclusive holder is a
    ``restic check --read-data``, which takes the same lock)."""
    env = _env(s3, "claim-exclusive")
    home = _big_home(tmp_path, files=200)
    rc, log = _run(backup_argv(str(home), "h", "gina", Retention(), _message(tmp_path)), env,
                   tmp_path / "first.log")  # fmt: skip
    assert rc == 0, log
    locks = s3["dir"] / "claim-exclusive" / "locks"
    proc = ManagedProcess(["restic", "check", "--read-data"], name="check",
                          log_path=tmp_path / "check.log", env=env)  # fmt: skip
    _taking_its_lock(proc, locks)
    proc.signal_group(signal.SIGKILL)
    proc.stop()
    assert any(locks.iterdir())
    (home / "new-file").write_bytes(os.urandom(1000))

    rc, log = _run(backup_argv(str(home), "h", "gina", Retention(), _message(tmp_path)), env,
                   tmp_path / "next.log")  # fmt: skip
    assert rc == 0, log
    assert log.count("already locked exclusively") == 1, log
    assert log.count("successfully removed locks") == 1, log
    assert run_summary((tmp_path / "termination-log").read_text())["files_new"] == 1
    rc, out = _restic(env, tmp_path, "check")
    assert rc == 0, out
    assert len(_snapshots(env, tmp_path)) == 1  # the first forgotten (one a day)


def test_a_missing_repository_is_initialised_and_an_existing_one_is_left_alone(s3, tmp_path):
    """The first run's backup finds no repository (restic 0.14: exit 1 and S3's "The
    specified key does not exist" for the config file), creates it and backs up; later runs
    open it only for backup and forget, and never unlock without a lock in the way."""
    env = _env(s3, "claim-new")
    home = _home(tmp_path)
    rc, log = _run(backup_argv(str(home), "h", "hana", Retention(), _message(tmp_path)), env,
                   tmp_path / "first.log")  # fmt: skip
    assert rc == 0, log
    assert "Stat: The specified key does not exist" in log
    assert log.count("created restic repository") == 1
    assert len(_snapshots(env, tmp_path)) == 1
    regular = [p for p in home.rglob("*") if p.is_file() and not p.is_symlink()]
    assert run_summary((tmp_path / "termination-log").read_text())["files_new"] == len(regular)

    (home / "notes" / "a.txt").write_text("second notes\n")
    rc, log = _run(backup_argv(str(home), "h", "hana", Retention(), _message(tmp_path)), env,
                   tmp_path / "second.log")  # fmt: skip
    assert rc == 0, log
    for absent in ("does not exist", "created restic repository", "locked", "removed locks"):
        assert absent not in log, log
    assert "snapshots" in log  # forget's report: it ran
    assert len(_snapshots(env, tmp_path)) == 1  # the first one is forgotten (one a day)


def test_forget_prunes_only_on_a_prune_run(s3, tmp_path):
    """Without ``prune`` the forgotten snapshot's data stays in the repository; the prune run
    removes the data no snapshot refers to."""
    env = _env(s3, "claim-prune")
    home = tmp_path / "home"
    home.mkdir()
    data = s3["dir"] / "claim-prune" / "data"
    nothing = Retention(daily=0, weekly=0, monthly=0)  # keep the newest only
    packs = []
    for run, prune in enumerate((False, False, True)):
        for old in home.iterdir():
            old.unlink()
        (home / f"data-{run}").write_bytes(os.urandom(3_000_000))
        rc, log = _run(
            backup_argv(str(home), "h", "ivan", nothing, _message(tmp_path), prune=prune),
            env, tmp_path / f"run{run}.log",
        )  # fmt: skip
        assert rc == 0, log
        assert ("running prune" in log) is prune, log
        packs.append({p.name for p in data.rglob("*") if p.is_file()})
    assert packs[0] < packs[1]  # run 1 forgot run 0's snapshot, its data stayed
    assert not packs[0] & packs[2]  # run 2 pruned: run 0's and run 1's data are gone
    assert len(_snapshots(env, tmp_path)) == 1
    rc, out = _restic(env, tmp_path, "check")
    assert rc == 0, out


def _big_home(root: Path, files: int = 400) -> Path:
    home = root / "big"
    home.mkdir()
    for i in range(files):
        (home / f"f{i:03}").write_bytes(os.urandom(256 * 1024))
    return home


def _taking_its_lock(proc: ManagedProcess, locks: Path) -> None:
    deadline = time.monotonic() + 60
    while not (locks.is_dir() and any(locks.iterdir())):
        assert proc.running(), proc.log_tail()
        assert time.monotonic() < deadline, "the backup never took its lock"
        time.sleep(0.02)


def test_s3_down_mid_run_is_retried_and_the_run_succeeds_once_it_is_back(tmp_path):
    """restic retries each S3 request (10 times, about a minute of back-off in 0.14): an outage
    shorter than that is waited out inside the run. A longer one fails the run (measured: 331 s
    for a 30 MB home), and the Job's backoffLimit and the next cycle retry it (docs/backup.md)."""
    root, home = tmp_path / "s3", _big_home(tmp_path)
    with s3_server(root) as server:
        env = restic_env(server, "claim-flaky", tmp_path)
        proc = ManagedProcess(
            backup_argv(str(home), "h", "frank", Retention(), _message(tmp_path)),
            name="backup", log_path=tmp_path / "flaky.log", env=env,
        )  # fmt: skip
        data = server["dir"] / "claim-flaky" / "data"
        deadline = time.monotonic() + 60
        while not (data.is_dir() and any(p.is_file() for p in data.rglob("*"))):
            assert proc.running(), proc.log_tail()  # until it uploads
            assert time.monotonic() < deadline, "the backup never uploaded"
            time.sleep(0.02)
    try:
        time.sleep(5)  # S3 is down
        assert proc.running(), proc.log_tail()  # restic waits and retries
        with s3_server(root, server["port"]):
            assert proc.popen.wait(timeout=240) == 0, proc.log_tail()
            log = (tmp_path / "flaky.log").read_text()
            assert "retrying after" in log and "connection refused" in log
            summary = run_summary((tmp_path / "termination-log").read_text())
            assert summary["total_bytes_processed"] == 400 * 256 * 1024
            rc, out = _restic(env, tmp_path, "check")
            assert rc == 0, out
            assert len(_snapshots(env, tmp_path)) == 1
    finally:
        proc.stop()


def test_s3_down_fails_the_run_visibly(tmp_path):
    with s3_server(tmp_path / "s3") as server:
        env = restic_env(server, "claim-outage", tmp_path)
    home = _home(tmp_path)  # the server is stopped now
    rc, log = _run(
        backup_argv(str(home), "h", "erin", Retention(), _message(tmp_path)),
        env,
        tmp_path / "down.log",
    )
    assert rc != 0
    assert "127.0.0.1" in log and "claim-outage" in log  # restic names the repository it lacks
    assert "connection refused" in log
    assert "init" not in log and "create repository" not in log  # unreachable is not missing
    assert not (tmp_path / "termination-log").exists()


def test_the_service_lists_and_browses_a_users_repository(s3, tmp_path):
    """What the pages show: the service's own restic reads (keys only in restic's environment)."""
    env = _env(s3, "claim-browse")
    home = _home(tmp_path)
    rc, log = _run(
        backup_argv(str(home), "h", "bob", Retention(), _message(tmp_path)), env, tmp_path / "b.log"
    )
    assert rc == 0, log
    keys = {k: env[k] for k in SECRET_KEYS}

    def restic(claim, args, secrets=keys):
        return asyncio.run(run_restic("restic", s3["url"], claim, secrets, args, 60))

    (snapshot,) = snapshot_list(restic("claim-browse", ["snapshots", "--json"]))
    assert snapshot["id"] == _snapshots(env, tmp_path)[0]["id"]
    assert snapshot["tags"] == ["user=bob"]
    listing = restic("claim-browse", ["ls", "--json", snapshot["id"]])
    top = {e["name"]: e["type"] for e in directory_listing(listing, "/")}
    assert top == {"notes": "dir", "script.sh": "file", "link-to-a": "symlink",
                   "dangling": "symlink"}  # fmt: skip
    notes = directory_listing(listing, "notes")
    assert [(e["name"], e["path"]) for e in notes] == [("deep", "/notes/deep"),
                                                        ("a.txt", "/notes/a.txt")]  # fmt: skip
    assert notes[1]["size"] == len("first notes\n") and notes[1]["permissions"] == "-rw-------"

    assert restic("claim-nobody", ["snapshots", "--json"]) is None  # never backed up
    wrong = {**keys, "RESTIC_PASSWORD": "not-the-password"}
    with pytest.raises(RepositoryError) as failed:
        restic("claim-browse", ["snapshots", "--json"], wrong)
    assert "not-the-password" not in str(failed.value) and "password" in str(failed.value)
