"""Secret and configMap volumes over a pod's life, as the kubelet's volume manager keeps them.

- **Waiting to mount**: a volume whose object does not exist yet (a hub creates a server's
  Secret right after its pod) does not fail the pod. The mount is retried with a short backoff
  and a ``FailedMount`` Warning is posted now and then (not on every attempt) until the object
  appears or the pod is deleted (:func:`until_mounted`).
- **Updates in place**: while the pod runs, each referenced object is read once per sync period
  and a volume whose files would change is rewritten atomically (:class:`VolumeSync`). Env vars
  taken from the same objects never change, as in Kubernetes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from .api import ApiError
from .atomic_writer import Payload, write_payload
from .volumes import (
    ContainerConfigError,
    MountPending,
    Volume,
    object_data,
    object_key,
    volume_files,
)

log = logging.getLogger(__name__)

#: the first retry of a pending mount, doubled after each attempt up to the cap
MOUNT_RETRY_FIRST = 0.2
MOUNT_RETRY_MAX = 2.0
#: at most one FailedMount event per pod in this many seconds
FAILED_MOUNT_EVENT_SECONDS = 5.0
#: how often a running pod's secret/configMap volumes are compared with their objects
DEFAULT_SYNC_SECONDS = 1.0

T = TypeVar("T")


def retry_delays(first: float = MOUNT_RETRY_FIRST, cap: float = MOUNT_RETRY_MAX) -> Iterator[float]:
    """``first``, doubling, then ``cap`` forever (pure)."""
    delay = first
    while True:
        yield min(delay, cap)
        delay *= 2


async def until_mounted(
    attempt: Callable[[], Awaitable[T]],
    report: Callable[[MountPending], Awaitable[None]],
    *,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """The result of ``attempt`` once it stops raising :class:`MountPending`.

    ``report`` is called on the first pending attempt and then at most once per
    :data:`FAILED_MOUNT_EVENT_SECONDS`; cancelling the caller (pod deleted) ends the wait.
    """
    delays = retry_delays()
    reported_at: float | None = None
    while True:
        try:
            return await attempt()
        except MountPending as exc:
            now = clock()
            if reported_at is None or now - reported_at >= FAILED_MOUNT_EVENT_SECONDS:
                reported_at = now
                await report(exc)
        await asyncio.sleep(next(delays))


class VolumeSync:
    """Keeps a running pod's secret/configMap volumes equal to their objects.

    ``fetch(kind, name)`` reads one object (None when it does not exist); each object is read
    once per period however many volumes show it. A deleted object (or key) leaves the files as
    they were, as the kubelet keeps the last contents it could set up (an ``optional`` volume
    becomes empty instead).
    """

    def __init__(
        self,
        volumes: Sequence[Volume],
        written: Mapping[str, Payload],
        fetch: Callable[[str, str], Awaitable[Mapping | None]],
        *,
        period: float = DEFAULT_SYNC_SECONDS,
        own: Callable[[Path], None] | None = None,
    ):
        self.volumes = list(volumes)
        self.written = dict(written)
        self.fetch = fetch
        self.period = period
        self.own = own

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.period)
            await self.sync_once()

    async def sync_once(self) -> list[str]:
        """Read the objects, rewrite the volumes that changed; their names."""
        objects: dict[tuple[str, str], Mapping[str, bytes]] = {}
        unreadable: set[tuple[str, str]] = set()
        for key in dict.fromkeys(object_key(v) for v in self.volumes):
            try:
                obj = await self.fetch(*key)
            except ApiError as exc:
                log.info("kubelet: cannot read %s %s to sync volumes: %s", *key, exc)
                unreadable.add(key)
                continue
            if obj is not None:
                objects[key] = object_data(key[0], obj)
        changed = []
        for volume in self.volumes:
            if object_key(volume) in unreadable:
                continue
            try:
                files = volume_files(volume, objects)
            except ContainerConfigError:
                continue  # object or key gone, or a bad new key: keep what the pod has
            if files == self.written.get(volume.name):
                continue
            try:
                write_payload(volume.path, files, own=self.own)  # synchronous: never half done
            except OSError as exc:
                log.warning("kubelet: cannot update volume %s: %s", volume.path, exc)
                continue
            self.written[volume.name] = files
            changed.append(volume.name)
        return changed
