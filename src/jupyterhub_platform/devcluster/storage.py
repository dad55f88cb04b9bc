"""Where the dev cluster keeps volume data under its state directory (shared by the process
kubelet, which mounts claims, and the snapshot stand-in, which copies them)."""

from __future__ import annotations

from pathlib import Path


def claim_dir(state_dir: Path, namespace: str, claim: str) -> Path:
    """The directory behind a PersistentVolumeClaim (kept after its pods are gone)."""
    return Path(state_dir) / "volumes" / namespace / "pvc" / claim


def snapshot_dir(state_dir: Path, content: str) -> Path:
    """A VolumeSnapshotContent's copy of its claim (outside every pod's view)."""
    return Path(state_dir) / "snapshots" / content
