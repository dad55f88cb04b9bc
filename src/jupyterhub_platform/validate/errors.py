"""The errors of every configuration file the platform reads: file, line, field and reason.

Validators (:mod:`.checks`) know nothing of files: they raise :class:`Invalid` with the problems
found, each at a field path relative to the value they were given. :class:`~.located.LocatedData`
turns those into :class:`ConfigError` with the file and the line of each field.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

FieldPath = tuple[str | int, ...]
T = TypeVar("T")


def field_name(path: FieldPath) -> str:
    """``("resources", "choices", "gpu", "cpu")`` -> ``resources.choices.gpu.cpu``; ``[i]`` for items."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


class ConfigError(ValueError):
    """One problem in one configuration file; ``str()`` is ``file:line: field: reason``."""

    def __init__(self, file: str, line: int | None, field: str, reason: str):
        self.file, self.line, self.field, self.reason = file, line, field, reason
        super().__init__(str(self))

    @property
    def where(self) -> str:
        """``file:line``, or the file alone when the line is not known."""
        return f"{self.file}:{self.line}" if self.line else self.file

    def __str__(self) -> str:
        if self.field:
            return f"{self.where}: {self.field}: {self.reason}"
        return f"{self.where}: {self.reason}"


class Invalid(ValueError):
    """A value failed validation: ``problems`` are (field path relative to the value, reason)."""

    def __init__(self, reason: str, at: FieldPath = ()):
        self.problems: tuple[tuple[FieldPath, str], ...] = ((tuple(at), reason),)
        super().__init__(reason)

    @classmethod
    def of(cls, problems: Iterable[tuple[FieldPath, str]]) -> Invalid:
        error = cls("")
        error.problems = tuple(problems)
        error.args = ("; ".join(f"{field_name(p) or '<value>'}: {r}" for p, r in error.problems),)
        return error

    def within(self, at: FieldPath) -> Invalid:
        """The same problems, seen from the value that holds this one at ``at``."""
        return Invalid.of((tuple(at) + path, reason) for path, reason in self.problems)


class Problems:
    """Collects :class:`Invalid` problems so one pass reports every mistake of a value."""

    def __init__(self) -> None:
        self.items: list[tuple[FieldPath, str]] = []

    def add(self, reason: str, at: FieldPath = ()) -> None:
        self.items.append((tuple(at), reason))

    def take(self, at: FieldPath, check: Callable[..., T], value: Any, *args, default=None) -> T:
        """``check(value, *args)``; on :class:`Invalid` its problems (under ``at``) and ``default``."""
        try:
            return check(value, *args)
        except Invalid as e:
            self.items += e.within(at).problems
            return default

    def field(self, m: dict, key: str, check: Callable[..., T], *args, default=None) -> T:
        """``m[key]`` through ``check``; ``default`` when absent or invalid."""
        if key not in m:
            return default
        return self.take((key,), check, m[key], *args, default=default)

    def __bool__(self) -> bool:
        return bool(self.items)

    def raise_any(self) -> None:
        if self.items:
            raise Invalid.of(self.items)
