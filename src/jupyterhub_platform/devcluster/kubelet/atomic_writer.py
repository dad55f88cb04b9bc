"""Secret and configMap volume contents swapped in one rename, in the kubelet's AtomicWriter layout.

A reader must never see a half-written or half-updated volume, so the files are not written in
place. Each version goes into a fresh timestamped directory, a ``..data`` symlink names the
current one and is replaced by ``rename`` (atomic), and every top-level entry the user sees is a
symlink through it::

    ..2026_12_02_18_40_58.k3j9x/token      the current version
    ..data -> ..2026_12_02_18_40_58.k3j9x
    token -> ..data/token

Programs that watch these volumes (and ``..data`` in particular) rely on this layout.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath

DATA_LINK = "..data"
_DATA_TMP = "..data_tmp"
_DIR_MODE = 0o755

#: Files of a volume: relative path -> (content, mode).
Payload = Mapping[PurePosixPath, tuple[bytes, int]]


class PayloadError(ValueError):
    """A path of the payload would clash with the layout's own entries."""


def top_level_names(payload: Payload) -> set[str]:
    """The entries the user sees at the volume's root; refuses names the layout uses (pure)."""
    names = set()
    for rel in payload:
        if not rel.parts or rel.parts[0].startswith(".."):
            raise PayloadError(f"volume path {str(rel)!r} must not start with '..'")
        names.add(rel.parts[0])
    return names


def write_payload(
    target: Path, payload: Payload, *, own: Callable[[Path], None] | None = None
) -> None:
    """Make ``payload`` the contents of directory ``target`` in one atomic step.

    ``own`` is applied to the new version's directory before it becomes visible (fsGroup
    ownership), so a reader never sees files it may not read yet.
    """
    names = top_level_names(payload)
    target.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime())
    version = Path(tempfile.mkdtemp(prefix=stamp, dir=target))
    os.chmod(version, _DIR_MODE)
    for rel, (content, mode) in payload.items():
        path = version / rel
        for parent in reversed(rel.parents[:-1]):
            if not (version / parent).is_dir():
                (version / parent).mkdir()
                os.chmod(version / parent, _DIR_MODE)
        path.write_bytes(content)
        os.chmod(path, mode)
    if own is not None:
        own(version)

    data_link = target / DATA_LINK
    previous = os.readlink(data_link) if data_link.is_symlink() else None
    tmp_link = target / _DATA_TMP
    if tmp_link.is_symlink():
        tmp_link.unlink()
    os.symlink(version.name, tmp_link)
    os.rename(tmp_link, data_link)

    for name in names:
        link = target / name
        if not link.is_symlink():
            os.symlink(f"{DATA_LINK}/{name}", link)
    for entry in target.iterdir():
        stale = not entry.name.startswith("..") and entry.name not in names
        if stale and entry.is_symlink():
            entry.unlink()
    if previous is not None and previous != version.name and "/" not in previous:
        shutil.rmtree(target / previous, ignore_errors=True)
