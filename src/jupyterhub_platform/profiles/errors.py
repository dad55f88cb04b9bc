"""Errors in profile files, always pointing at file, line and field."""

from __future__ import annotations


class ProfileError(ValueError):
    """One problem in one profile file."""

    def __init__(self, file: str, line: int | None, field: str, reason: str):
        self.file, self.line, self.field, self.reason = file, line, field, reason
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.field or '<file>'}: {self.reason}"


class ProfileLoadError(ValueError):
    """Every problem found while loading a set of profile files."""

    def __init__(self, errors: list[ProfileError]):
        self.errors = list(errors)
        super().__init__("\n".join(str(e) for e in self.errors))
