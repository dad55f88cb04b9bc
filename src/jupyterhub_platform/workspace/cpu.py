"""CPU time of terminals' process trees (psutil), sampled each time activity is computed."""

from __future__ import annotations

import time
from collections.abc import Iterable

from .activity import cpu_busy

try:
    import psutil
except ImportError:  # the extension says so when it loads; terminals then count by input only
    psutil = None


def tree_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of ``pid`` and its descendants, or None if it is gone."""
    try:
        root = psutil.Process(pid)
        total = 0.0
        for proc in [root, *root.children(recursive=True)]:
            try:
                times = proc.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
        return total
    except psutil.NoSuchProcess:
        return None


MIN_WINDOW = 1.0
"""Seconds between two samples of one terminal: closer ones repeat the last verdict (CPU times
have a resolution of a clock tick)."""


class TerminalCPU:
    """Remembers each terminal's last sample; :meth:`any_busy` samples them all again."""

    def __init__(self, threshold: float):
        self.threshold = threshold
        self._samples: dict[int, tuple[float, float]] = {}
        self._verdicts: dict[int, bool] = {}

    @staticmethod
    def available() -> bool:
        return psutil is not None

    def any_busy(self, pids: Iterable[int]) -> bool:
        if psutil is None:
            return False
        samples, verdicts = {}, {}
        for pid in pids:
            previous, now = self._samples.get(pid), time.monotonic()
            if previous is not None and now - previous[0] < MIN_WINDOW:
                samples[pid], verdicts[pid] = previous, self._verdicts.get(pid, False)
                continue
            cpu = tree_cpu_seconds(pid)
            if cpu is None:
                continue
            samples[pid] = (now, cpu)
            verdicts[pid] = cpu_busy(previous, samples[pid], self.threshold)
        self._samples, self._verdicts = samples, verdicts
        return any(verdicts.values())
