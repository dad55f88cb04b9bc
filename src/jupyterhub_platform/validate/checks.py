"""General validators: each takes a parsed YAML value and returns it checked (and converted) or
raises :class:`~.errors.Invalid` naming what is wrong and the value it got.

Pure functions, no file or line knowledge; profiles, the policy and service configs share them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from types import MappingProxyType
from typing import Any

from .errors import Invalid, Problems

IDENTIFIER = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
LABEL_KEY = re.compile(
    r"([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
)
LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?")
CPU = re.compile(r"([0-9]+(?:\.[0-9]+)?)(m?)")
MEMORY = re.compile(r"([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?")
MEMORY_UNITS = {
    None: 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
}  # fmt: skip
DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)")
DURATION_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def kind(value: Any) -> str:
    """How an error message names ``value``: its type, and the value itself when it is a scalar."""
    if value is None:
        return "nothing"
    if isinstance(value, (dict, list)):
        return "a mapping" if isinstance(value, dict) else "a list"
    shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
    return f"the string {shown}" if isinstance(value, str) else f"{type(value).__name__} {shown}"


def mapping(value: Any, allowed: Collection[str], required: Collection[str] = ()) -> dict:
    """A mapping whose keys are all ``allowed`` and include every ``required`` one."""
    if not isinstance(value, dict):
        raise Invalid(f"must be a mapping, got {kind(value)}")
    problems = Problems()
    for key in value:
        if key not in allowed:
            problems.add(f"unknown field (allowed: {', '.join(sorted(allowed))})", (key,))
    for key in required:
        if key not in value:
            problems.add("required field is missing", (key,))
    problems.raise_any()
    return value


def string(value: Any, pattern: re.Pattern | None = None, what: str = "value") -> str:
    """A non-empty string, matching ``pattern`` (a ``what``) when given."""
    if not isinstance(value, str) or not value.strip():
        raise Invalid(f"must be a non-empty string, got {kind(value)}")
    if pattern is not None and not pattern.fullmatch(value):
        raise Invalid(f"{value!r} is not a valid {what}")
    return value


def text(value: Any) -> str:
    """Any string (free text), stripped."""
    if not isinstance(value, str):
        raise Invalid(f"must be a string, got {kind(value)}")
    return value.strip()


def identifier(value: Any) -> str:
    """A slug: what Kubernetes accepts as a DNS label (and so as a name in URLs and pods)."""
    return string(value, IDENTIFIER, "slug (lowercase letters, digits and '-', max 63)")


def label_key(value: Any) -> str:
    """A Kubernetes label key or resource name (``example.com/name``)."""
    return string(value, LABEL_KEY, "Kubernetes resource or label name")


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise Invalid(f"must be true or false, got {kind(value)}")
    return value


def integer(value: Any, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise Invalid(f"must be an integer >= {minimum}, got {value!r}")
    return value


def port(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise Invalid(f"must be a port number (1-65535), got {value!r}")
    return value


def one_of(value: Any, choices: Collection[str]) -> str:
    if value not in choices:
        raise Invalid(f"must be one of {', '.join(choices)}, got {value!r}")
    return value


def regex(value: Any, flags: int = 0) -> re.Pattern:
    try:
        return re.compile(string(value), flags)
    except re.error as e:
        raise Invalid(f"is not a valid regular expression: {e}") from None


def cpu(value: Any) -> float:
    """Cores: a number or a Kubernetes quantity (``2``, ``0.5``, ``'500m'``), greater than 0."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        cores = float(value)
    elif isinstance(value, str) and (m := CPU.fullmatch(value.strip())):
        cores = float(m.group(1)) / (1000 if m.group(2) else 1)
    else:
        raise Invalid(f"must be a CPU amount like 2, 0.5 or '500m', got {value!r}")
    if cores <= 0:
        raise Invalid("must be greater than 0")
    return cores


def memory(value: Any) -> int:
    """Bytes: an integer or a Kubernetes quantity (``'8Gi'``, ``'512M'``), greater than 0."""
    if isinstance(value, int) and not isinstance(value, bool):
        amount = value
    elif isinstance(value, str) and (m := MEMORY.fullmatch(value.strip())):
        amount = int(float(m.group(1)) * MEMORY_UNITS[m.group(2)])
    else:
        raise Invalid(f"must be a memory amount like '8Gi' or '512Mi', got {value!r}")
    if amount <= 0:
        raise Invalid("must be greater than 0")
    return amount


def duration(value: Any) -> float:
    """Seconds: a number of seconds or ``'500ms'``, ``'30s'``, ``'5m'``, ``'1h'``, ``'2d'``; > 0."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and (m := DURATION.fullmatch(value.strip())):
        seconds = float(m.group(1)) * DURATION_UNITS[m.group(2)]
    else:
        raise Invalid(f"must be a duration like 30, '90s', '5m', '1h' or '2d', got {value!r}")
    if seconds <= 0:
        raise Invalid("must be greater than 0")
    return seconds


def list_of(value: Any, item: Callable[[Any], Any], what: str = "values") -> tuple:
    """A list whose every item passes ``item``; each bad item is reported at its index."""
    if not isinstance(value, list):
        raise Invalid(f"must be a list of {what}, got {kind(value)}")
    problems = Problems()
    out = tuple(problems.take((i,), item, v) for i, v in enumerate(value))
    problems.raise_any()
    return out


def strings(value: Any) -> tuple[str, ...]:
    """A list of non-empty strings."""
    return list_of(value, string, "strings")


def string_map(
    value: Any, key_pattern: re.Pattern | None = None, value_pattern: re.Pattern | None = None
) -> Mapping[str, str]:
    """A mapping of string -> string (keys and values matching the patterns when given)."""
    if not isinstance(value, dict):
        raise Invalid(f"must be a mapping of strings, got {kind(value)}")
    problems = Problems()
    for key, item in value.items():
        if key_pattern is not None and not key_pattern.fullmatch(key):
            problems.add(f"{key!r} is not a valid name", (key,))
        elif not isinstance(item, str):
            problems.add(f"must be a string (quote it in YAML), got {kind(item)}", (key,))
        elif value_pattern is not None and not value_pattern.fullmatch(item):
            problems.add(f"{item!r} is not a valid value", (key,))
    problems.raise_any()
    return MappingProxyType(dict(value))


def labels(value: Any) -> Mapping[str, str]:
    """Kubernetes labels or a node selector: label keys -> label values."""
    return string_map(value, LABEL_KEY, LABEL_VALUE)


def fields(
    value: Any, problems: Problems, allowed: Collection[str], required: Collection[str] = ()
) -> dict:
    """``value`` as a mapping; its unknown and missing keys go to ``problems``, so a caller still
    checks the known fields and reports every mistake in one pass."""
    if not isinstance(value, dict):
        raise Invalid(f"must be a mapping, got {kind(value)}")
    problems.take((), mapping, value, allowed, required)
    return value
