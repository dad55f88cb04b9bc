"""What the single-user server reports as its last activity: pure decisions over its state.

jupyterhub-singleuser posts ``web_app.last_activity()`` to the hub every
``JUPYTERHUB_ACTIVITY_INTERVAL`` seconds; the workspace extension replaces that method with
:func:`honest_last_activity`. Its sources are use (the latest message or request a person sent,
from :mod:`.protocols`), the kernels' own activity (jupyter_server moves it on execution, not
on an open notebook's connection), and *now* while a background job the user started is busy:
a kernel executing (also when it prints nothing) or a terminal whose processes use the CPU.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass
class UseLedger:
    """The latest time a person used the workspace, per source (``"http"``, ``"vscode"``, ...)."""

    last: dict[str, datetime] = field(default_factory=dict)

    def record(self, source: str, when: datetime) -> None:
        previous = self.last.get(source)
        if previous is None or when > previous:
            self.last[source] = when

    def latest(self) -> datetime | None:
        return max(self.last.values(), default=None)


def honest_last_activity(
    *,
    started: datetime,
    use: datetime | None,
    kernel_activity: datetime | None,
    busy: bool,
    now: datetime,
) -> datetime:
    """The server's last activity: ``now`` while a job is busy, else its latest use or kernel
    activity, and never before the server started."""
    if busy:
        return now
    return max(t for t in (started, use, kernel_activity) if t is not None)


def cpu_busy(
    previous: tuple[float, float] | None, current: tuple[float, float], threshold: float
) -> bool:
    """Whether processes were CPU-busy between two ``(wall seconds, CPU seconds)`` samples:
    on average at least ``threshold`` of one core. A first sample (no previous) is not busy."""
    if previous is None:
        return False
    wall = current[0] - previous[0]
    if wall <= 0:
        return False
    return (current[1] - previous[1]) / wall >= threshold
