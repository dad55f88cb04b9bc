"""Volume ownership for ``fsGroup``, as the kubelet's ``SetVolumeOwnership`` applies it.

Every file and directory of a volume gets the group ``fsGroup``; files gain group read/write
(read only for read-only volumes such as secrets), directories also group search and the setgid
bit, so what the user creates there keeps the group. ``fsGroupChangePolicy: OnRootMismatch``
skips the walk when the volume's root already looks right. Only root can do this; the kubelet
calls it when it runs pods as their own users.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from .security import FsGroup

_RW_MASK = 0o660
_RO_MASK = 0o440
_EXEC_MASK = 0o110


def ownership_mode(mode: int, *, is_dir: bool, read_only: bool) -> int:
    """The permission bits a path gets under fsGroup (pure)."""
    mask = _RO_MASK if read_only else _RW_MASK
    if is_dir:
        mask |= stat.S_ISGID | _EXEC_MASK
    return stat.S_IMODE(mode) | mask


def _root_matches(root: Path, fs_group: FsGroup, read_only: bool) -> bool:
    info = root.lstat()
    wanted = ownership_mode(info.st_mode, is_dir=True, read_only=read_only)
    return info.st_gid == fs_group.gid and stat.S_IMODE(info.st_mode) == wanted


def apply_fs_group(root: Path, fs_group: FsGroup, *, read_only: bool) -> None:
    """Give ``root`` and everything under it the group and bits fsGroup asks for."""
    if fs_group.on_root_mismatch and _root_matches(root, fs_group, read_only):
        return
    _own(str(root), fs_group.gid, read_only)
    for directory, dirs, files in os.walk(root):
        for name in (*dirs, *files):
            _own(os.path.join(directory, name), fs_group.gid, read_only)


def _own(path: str, gid: int, read_only: bool) -> None:
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode):
        return  # the kubelet leaves symlinks (and what they point to) alone
    if info.st_gid != gid:
        os.lchown(path, -1, gid)
    mode = ownership_mode(info.st_mode, is_dir=stat.S_ISDIR(info.st_mode), read_only=read_only)
    if mode != stat.S_IMODE(info.st_mode):
        os.chmod(path, mode)
