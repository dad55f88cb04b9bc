"""One validator vocabulary for every configuration file: located YAML and general checks.

Read a file with :func:`load_located` (or :func:`parse_located` for embedded YAML), check its
values with the pure functions of :mod:`.checks` (they raise :class:`Invalid` with field paths
relative to the value), and turn the problems into ``file:line: field: reason`` errors with
:meth:`LocatedData.errors`. Profiles, the policy and the services' configs all use it.
"""

from __future__ import annotations

from .errors import ConfigError, FieldPath, Invalid, Problems, field_name
from .located import LocatedData, load_located, parse_located

__all__ = [
    "ConfigError",
    "FieldPath",
    "Invalid",
    "LocatedData",
    "Problems",
    "field_name",
    "load_located",
    "parse_located",
]
