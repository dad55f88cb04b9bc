"""The dev cluster's CSI snapshot stand-in: the snapshot-controller, the CSI driver's snapshotter
and its provisioner in one loop over the store (decisions in snapshots.py).

- A new VolumeSnapshot of a claim gets its VolumeSnapshotContent, then the claim's directory (the
  one the process kubelet mounts) is copied to ``snapshots/<content>/`` under the state
  directory — modes, times, symlinks and (as root) owners kept, special files skipped — and
  both statuses say ``readyToUse``. A snapshot that cannot be taken gets ``status.error``.
- A PVC whose ``dataSource`` is a VolumeSnapshot stays Pending until the snapshot is ready, then
  its directory is filled from the content and it binds (the scheduler holds pods of a Pending
  claim until then, as ``WaitForFirstConsumer`` does).
- Deleting a VolumeSnapshot deletes its content when the class says ``Delete``; deleting a
  content removes its copy.

The copy is point-in-time per file, not atomic across the tree: a real CSI snapshot is
crash-consistent for the whole volume.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import os
import shutil
import stat
import time
from pathlib import Path

from . import errors
from .defaults import timestamp
from .patching import MERGE
from .registry import Registry
from .resources import PVC, SNAPSHOT_CLASS, SNAPSHOT_CONTENT, VOLUME_SNAPSHOT
from .selectors import Selector
from .snapshots import (
    SnapshotError,
    content_manifest,
    content_name,
    error_status,
    provisioning_problem,
    ready_statuses,
    restore_size,
    snapshot_class,
    snapshot_source,
    source_claim,
)
from .storage import claim_dir, snapshot_dir
from .store import Expired

log = logging.getLogger(__name__)


def copy_volume(source: Path, target: Path) -> int:
    """Copy ``source`` to the new directory ``target``; returns the bytes copied."""
    if not source.is_dir():
        target.mkdir(parents=True)
        return 0
    shutil.copytree(source, target, symlinks=True, copy_function=_copy_regular)
    total = 0
    as_root = os.geteuid() == 0
    for root, dirs, files in os.walk(source):
        for name in [".", *dirs, *files]:
            path = Path(root, name)
            info = path.lstat()
            total += info.st_size if stat.S_ISREG(info.st_mode) else 0
            if as_root:
                with contextlib.suppress(FileNotFoundError):  # a skipped special file
                    os.lchown(target / path.relative_to(source), info.st_uid, info.st_gid)
    return total


def _copy_regular(src: str, dst: str) -> None:
    if stat.S_ISREG(os.lstat(src).st_mode):  # sockets and fifos are not volume data
        shutil.copy2(src, dst)


class SnapshotController:
    def __init__(self, registry: Registry, state_dir: Path):
        self.registry = registry
        self.store = registry.store
        self.state_dir = Path(state_dir)
        self._task: asyncio.Task | None = None
        self._working: dict[str, asyncio.Task] = {}

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(self.store.subscribe()))

    async def stop(self) -> None:
        tasks = [t for t in (self._task, *self._working.values()) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self, subscription) -> None:
        try:
            while (change := await subscription.get()) is not None:
                if isinstance(change, Expired):
                    continue
                try:
                    self.handle(change.type, change.rtype, change.new)
                except Exception:
                    log.exception("snapshot controller failed on %s", change.rtype.kind)
        finally:
            subscription.close()

    def handle(self, kind: str, rtype, obj: dict) -> None:
        """React to one change, on the object's current state (changes queue up)."""
        meta = obj["metadata"]
        if kind != "DELETED":
            current = self.store.get(rtype, meta.get("namespace"), meta["name"])
            if current is None or current["metadata"]["uid"] != meta["uid"]:
                return
            obj, meta = current, current["metadata"]
        if rtype is VOLUME_SNAPSHOT:
            if kind == "DELETED":
                self._release(obj)
            elif not (obj.get("status") or {}).get("boundVolumeSnapshotContentName"):
                self._spawn(meta["uid"], self._take(obj))
            elif (obj.get("status") or {}).get("readyToUse"):
                for pvc in self.store.list(PVC, meta["namespace"]):
                    self._maybe_provision(pvc)
        elif rtype is PVC and kind != "DELETED":
            self._maybe_provision(obj)
        elif rtype is SNAPSHOT_CONTENT and kind == "DELETED":
            shutil.rmtree(snapshot_dir(self.state_dir, meta["name"]), ignore_errors=True)

    def _spawn(self, key: str, work) -> None:
        if key in self._working:
            work.close()
            return
        task = asyncio.create_task(work)
        self._working[key] = task
        task.add_done_callback(lambda _: self._working.pop(key, None))

    # taking a snapshot ----------------------------------------------------------------
    async def _take(self, snapshot: dict) -> None:
        meta = snapshot["metadata"]
        try:
            claim = source_claim(snapshot)
            pvc = self.store.get(PVC, meta["namespace"], claim)
            if pvc is None:
                raise SnapshotError(f'failed to get input parameters to create snapshot '
                                    f'{meta["name"]}: persistentvolumeclaim "{claim}" not found')  # fmt: skip
            klass = snapshot_class(snapshot, self.registry.list(SNAPSHOT_CLASS, None, Selector()))
        except SnapshotError as exc:
            self._write_status(snapshot, error_status(snapshot, str(exc), timestamp()))
            return
        name = content_name(snapshot)
        if self.store.get(SNAPSHOT_CONTENT, None, name) is None:
            self.registry.create(SNAPSHOT_CONTENT, None, content_manifest(snapshot, pvc, klass))
        self._write_status(snapshot, {"boundVolumeSnapshotContentName": name, "readyToUse": False})
        taken_at = time.time()
        target = snapshot_dir(self.state_dir, name)
        shutil.rmtree(target, ignore_errors=True)
        source = claim_dir(self.state_dir, meta["namespace"], claim)
        used = await asyncio.to_thread(copy_volume, source, target)
        content_status, status = ready_statuses(
            snapshot, restore_size(pvc, used), used, taken_at, timestamp(taken_at)
        )
        content = self.store.get(SNAPSHOT_CONTENT, None, name)
        if content is not None:
            self.registry.write_status(SNAPSHOT_CONTENT, content, content_status)
        if not self._write_status(snapshot, status):
            with contextlib.suppress(errors.ApiError):  # the snapshot went while copying
                self.registry.delete(SNAPSHOT_CONTENT, None, name)
        log.info("snapshot %s/%s of %s: %d bytes", meta["namespace"], meta["name"], claim, used)

    def _write_status(self, snapshot: dict, status: dict) -> bool:
        meta = snapshot["metadata"]
        current = self.store.get(VOLUME_SNAPSHOT, meta["namespace"], meta["name"])
        if current is None or current["metadata"]["uid"] != meta["uid"]:
            return False
        self.registry.write_status(VOLUME_SNAPSHOT, current, status)
        return True

    def _release(self, snapshot: dict) -> None:
        content = self.store.get(SNAPSHOT_CONTENT, None, content_name(snapshot))
        if content is not None and content["spec"].get("deletionPolicy") == "Delete":
            with contextlib.suppress(errors.ApiError):
                self.registry.delete(SNAPSHOT_CONTENT, None, content["metadata"]["name"])

    # provisioning a claim from a snapshot ----------------------------------------------
    def _maybe_provision(self, pvc: dict) -> None:
        name = snapshot_source(pvc)
        if name is None or (pvc.get("status") or {}).get("phase") != "Pending":
            return
        if pvc["metadata"].get("deletionTimestamp"):
            return
        ns = pvc["metadata"]["namespace"]
        snapshot = self.store.get(VOLUME_SNAPSHOT, ns, name)
        problem = provisioning_problem(pvc, snapshot)
        if problem is None:
            self._spawn(pvc["metadata"]["uid"], self._provision(pvc, snapshot))
        else:
            log.info("claim %s/%s waits: %s", ns, pvc["metadata"]["name"], problem)

    async def _provision(self, pvc: dict, snapshot: dict) -> None:
        meta = pvc["metadata"]
        content = snapshot["status"]["boundVolumeSnapshotContentName"]
        target = claim_dir(self.state_dir, meta["namespace"], meta["name"])
        shutil.rmtree(target, ignore_errors=True)
        await asyncio.to_thread(copy_volume, snapshot_dir(self.state_dir, content), target)
        current = self.store.get(PVC, meta["namespace"], meta["name"])
        if current is None or current["metadata"]["uid"] != meta["uid"]:
            shutil.rmtree(target, ignore_errors=True)
            return
        bound = self.registry.patch(PVC, meta["namespace"], meta["name"], MERGE,
                                    {"spec": {"volumeName": f"pvc-{meta['uid']}"}})  # fmt: skip
        status = copy.deepcopy(bound.get("status") or {})
        status.update(phase="Bound", accessModes=bound["spec"].get("accessModes") or [])
        storage = ((bound["spec"].get("resources") or {}).get("requests") or {}).get("storage")
        if storage is not None:
            status["capacity"] = {"storage": storage}
        self.registry.write_status(PVC, bound, status)
