"""Errors in profile files, always pointing at file, line and field."""

from __future__ import annotations

from jupyterhub_platform.validate import ConfigError


class ProfileError(ConfigError):
    """One problem in one profile file."""


class ProfileLoadError(ValueError):
    """Every problem found while loading a set of profile files."""

    def __init__(self, errors: list[ConfigError]):
        self.errors = list(errors)
        super().__init__("\n".join(str(e) for e in self.errors))
