"""Values loaded from files and reloaded when the files change, without restarting the hub.

The check is a cheap ``stat`` of the watched paths, at most every ``interval`` seconds, done
when the value is read. A bad edit is logged and the last good value stays in use; only the
first load is strict, so a hub with bad files refuses to start.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Generic, TypeVar

T = TypeVar("T")
Signature = tuple


def files_signature(paths: Iterable[Path]) -> Signature:
    """(path, mtime, size) of each path; a missing path counts as a state too."""
    out = []
    for path in paths:
        try:
            st = path.stat()
            out.append((str(path), st.st_mtime_ns, st.st_size))
        except OSError:
            out.append((str(path), None, None))
    return tuple(out)


class Reloading(Generic[T]):
    def __init__(
        self,
        what: str,
        load: Callable[[], T],
        signature: Callable[[], Signature],
        log: logging.Logger | logging.LoggerAdapter,
        interval: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.what, self._load, self._signature, self.log = what, load, signature, log
        self.interval, self._clock = interval, clock
        self._seen = signature()
        self._value = load()  # strict: errors propagate to the caller at start-up
        self._checked = clock()
        self.last_error: Exception | None = None
        self.generation = 0
        """Incremented on every successful reload, so values derived from this one can follow."""

    def current(self) -> T:
        """The value, reloaded first if the files changed since the last look."""
        now = self._clock()
        if now - self._checked < self.interval:
            return self._value
        self._checked = now
        seen = self._signature()
        if seen != self._seen:
            self._seen = seen
            try:
                self._value = self._load()
                self.generation += 1
                self.last_error = None
                self.log.info("Reloaded %s", self.what)
            except Exception as e:  # any failure keeps the last good value
                self.last_error = e
                self.log.error(
                    "Keeping the previous %s; the changed files are invalid:\n%s", self.what, e
                )
        return self._value
