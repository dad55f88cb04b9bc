"""Cron schedules (five fields: minute hour day-of-month month day-of-week), pure.

Supported in each field: ``*``, numbers, ranges ``a-b``, lists ``a,b`` and steps ``*/n`` /
``a-b/n``; day-of-week 0-7 (0 and 7: Sunday). As in cron, when both day fields are restricted a
day matching either runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12),
           ("day of week", 0, 7))  # fmt: skip


class CronError(ValueError):
    """A schedule that is not a cron expression; the message names the field and value."""


@dataclass(frozen=True)
class Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    any_day: bool
    any_weekday: bool

    def day_matches(self, t: datetime) -> bool:
        if t.month not in self.months:
            return False
        day_ok = t.day in self.days
        weekday_ok = (t.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:
            return day_ok and weekday_ok
        return day_ok or weekday_ok

    def next_after(self, after: datetime) -> datetime:
        """The first matching minute strictly after ``after`` (searching up to five years)."""
        t = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
        limit = t + timedelta(days=5 * 366)
        while t < limit:
            if not self.day_matches(t):
                t = t.replace(hour=0, minute=0) + timedelta(days=1)
            elif t.hour not in self.hours:
                t = t.replace(minute=0) + timedelta(hours=1)
            elif t.minute not in self.minutes:
                t += timedelta(minutes=1)
            else:
                return t
        raise CronError("schedule: never matches a real date")

    def last_at_or_before(self, at: datetime) -> datetime:
        """The latest matching minute at or before ``at`` (searching back up to five years):
        the start of the round a service that starts at ``at`` is in."""
        t = at.replace(second=0, microsecond=0)
        limit = t - timedelta(days=5 * 366)
        while t > limit:
            if not self.day_matches(t):
                t = t.replace(hour=23, minute=59) - timedelta(days=1)
            elif t.hour not in self.hours:
                t = t.replace(minute=59) - timedelta(hours=1)
            elif t.minute not in self.minutes:
                t -= timedelta(minutes=1)
            else:
                return t
        raise CronError("schedule: never matches a real date")


def parse_cron(text: str) -> Cron:
    parts = text.split()
    if len(parts) != 5:
        raise CronError(f"schedule: {text!r} must have 5 fields (minute hour day month weekday)")
    sets = [_field(part, *spec) for part, spec in zip(parts, _FIELDS, strict=True)]
    weekdays = frozenset(d % 7 for d in sets[4])
    return Cron(*sets[:4], weekdays, parts[2] == "*", parts[4] == "*")


def _field(part: str, name: str, low: int, high: int) -> frozenset[int]:
    values: set[int] = set()
    for item in part.split(","):
        base, _, step_text = item.partition("/")
        try:
            step = int(step_text) if step_text else 1
            if base == "*":
                start, end = low, high
            elif "-" in base:
                start, end = (int(x) for x in base.split("-", 1))
            else:
                start = end = int(base)
        except ValueError:
            raise CronError(f"schedule: {name} {part!r} is not a number, range or step") from None
        if step < 1 or not low <= start <= end <= high:
            raise CronError(f"schedule: {name} {part!r} is outside {low}-{high}")
        values.update(range(start, end + 1, step))
    return frozenset(values)
