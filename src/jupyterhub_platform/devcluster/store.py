"""Object storage: one global resourceVersion counter, change history, and watch fan-out.

Every mutation is synchronous, so a handler that reads, decides and writes never interleaves
with another one. Stored objects are never mutated in place (a write stores a new dict), which
lets history and subscribers share them without copying.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

from .resources import ResourceType

DEFAULT_HISTORY = 20000


@dataclass(frozen=True)
class Change:
    rv: int
    type: str  # "ADDED" | "MODIFIED" | "DELETED"
    rtype: ResourceType
    old: dict | None
    new: dict  # for DELETED: the final object


class TooOld(Exception):
    """The requested resourceVersion is older than the retained history."""

    def __init__(self, requested: int, oldest: int):
        super().__init__(f"too old resource version: {requested} ({oldest})")


class Expired:
    """Handed to a subscriber whose watch the server ends with 410 Expired."""

    def __init__(self, message: str):
        self.message = message


class Subscription:
    """A stream of changes after a given point; ``None`` from :meth:`get` means closed."""

    def __init__(self, store: Store, backlog: list[Change]):
        self._store = store
        self._queue: asyncio.Queue[Change | Expired | None] = asyncio.Queue()
        for change in backlog:
            self._queue.put_nowait(change)

    def push(self, change: Change | Expired | None) -> None:
        self._queue.put_nowait(change)

    async def get(self) -> Change | Expired | None:
        return await self._queue.get()

    def close(self) -> None:
        self._store._subscribers.discard(self)


def _key(obj: dict) -> tuple[str, str]:
    meta = obj["metadata"]
    return meta.get("namespace", ""), meta["name"]


class Store:
    def __init__(self, history: int = DEFAULT_HISTORY):
        self._objects: dict[ResourceType, dict[tuple[str, str], dict]] = {}
        self._uids: dict[str, tuple[ResourceType, tuple[str, str]]] = {}
        self._rv = 1
        self._history: deque[Change] = deque(maxlen=history)
        self._compacted = 1  # changes at or below this revision are no longer retained
        self._subscribers: set[Subscription] = set()

    @property
    def resource_version(self) -> int:
        return self._rv

    def get(self, rtype: ResourceType, namespace: str | None, name: str) -> dict | None:
        return self._objects.get(rtype, {}).get((namespace or "", name))

    def list(self, rtype: ResourceType, namespace: str | None = None) -> list[dict]:
        objects = self._objects.get(rtype, {})
        return [obj for (ns, _), obj in sorted(objects.items()) if namespace in (None, ns)]

    def all_objects(self) -> Iterator[tuple[ResourceType, dict]]:
        for rtype, objects in list(self._objects.items()):
            for obj in list(objects.values()):
                yield rtype, obj

    @property
    def subscriber_count(self) -> int:
        """Open subscriptions: every watch plus the controllers' own."""
        return len(self._subscribers)

    def namespaced_objects(self, namespace: str) -> Iterator[tuple[ResourceType, dict]]:
        for rtype, objects in list(self._objects.items()):
            for (ns, _), obj in list(objects.items()):
                if ns == namespace:
                    yield rtype, obj

    def by_uid(self, uid: str) -> tuple[ResourceType, dict] | None:
        entry = self._uids.get(uid)
        if entry is None:
            return None
        rtype, key = entry
        return rtype, self._objects[rtype][key]

    def put(self, rtype: ResourceType, obj: dict) -> dict:
        """Store ``obj`` (a fresh dict the caller hands over) under a new resourceVersion."""
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        key = _key(obj)
        objects = self._objects.setdefault(rtype, {})
        old = objects.get(key)
        objects[key] = obj
        self._uids[obj["metadata"]["uid"]] = (rtype, key)
        self._emit(Change(self._rv, "MODIFIED" if old else "ADDED", rtype, old, obj))
        return obj

    def remove(self, rtype: ResourceType, namespace: str | None, name: str) -> dict:
        """Delete for good; the DELETED change carries the final object at a new revision."""
        old = self._objects[rtype].pop((namespace or "", name))
        self._uids.pop(old["metadata"]["uid"], None)
        self._rv += 1
        final = {**old, "metadata": {**old["metadata"], "resourceVersion": str(self._rv)}}
        self._emit(Change(self._rv, "DELETED", rtype, old, final))
        return final

    def _emit(self, change: Change) -> None:
        if len(self._history) == self._history.maxlen:
            self._compacted = self._history[0].rv
        self._history.append(change)
        for subscriber in list(self._subscribers):
            subscriber.push(change)

    def subscribe(self, since: int | None = None) -> Subscription:
        """Changes after revision ``since`` (None: from now on); raises :class:`TooOld`."""
        backlog: list[Change] = []
        if since is not None:
            if since < self._compacted:
                raise TooOld(since, self._compacted + 1)
            backlog = [change for change in self._history if change.rv > since]
        subscription = Subscription(self, backlog)
        self._subscribers.add(subscription)
        return subscription

    def compact(self) -> None:
        """Forget all history, as etcd compaction does: older watches then get 410 Expired."""
        self._history.clear()
        self._compacted = self._rv

    def expire_watches(self) -> None:
        """End every open watch with 410 Expired, as a server does to watchers that fell out of
        its history window: a fault to inject when testing clients' recovery."""
        self.compact()
        for subscriber in list(self._subscribers):
            subscriber.push(Expired(f"too old resource version: {self._rv} ({self._rv + 1})"))

    def close(self) -> None:
        """End every subscription (server shutdown)."""
        for subscriber in list(self._subscribers):
            subscriber.push(None)
        self._subscribers.clear()
