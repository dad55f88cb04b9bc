"""Label and field selectors: parsing and matching, with the real server's grammar (pure)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

_KEY = r"[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?"
_VALUE = r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?"
_EXISTS = re.compile(rf"^(?P<neg>!?)\s*(?P<key>{_KEY})$")
_SET = re.compile(rf"^(?P<key>{_KEY})\s+(?P<op>in|notin)\s*\((?P<values>[^()]*)\)$")
_EQUALITY = re.compile(rf"^(?P<key>{_KEY})\s*(?P<op>==|=|!=)\s*(?P<value>{_VALUE})$")


class SelectorError(ValueError):
    """A selector that does not parse; the message is fit for a 400 Status."""


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!"
    values: tuple[str, ...] = ()

    def matches(self, value: str | None) -> bool:
        """Whether a label/field value (None: absent) satisfies this requirement."""
        if self.op == "exists":
            return value is not None
        if self.op == "!":
            return value is None
        if self.op in ("=", "in"):
            return value is not None and value in self.values
        return value is None or value not in self.values  # "!=", "notin"


def _split_terms(text: str) -> list[str]:
    """Split on commas outside parentheses."""
    terms, depth, current = [], 0, []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            terms.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    terms.append("".join(current).strip())
    return [term for term in terms if term] if text.strip() else []


def parse_label_selector(text: str | None) -> tuple[Requirement, ...]:
    requirements = []
    for term in _split_terms(text or ""):
        if match := _SET.match(term):
            values = tuple(v.strip() for v in match["values"].split(",") if v.strip())
            requirements.append(Requirement(match["key"], match["op"], values))
        elif match := _EQUALITY.match(term):
            op = "!=" if match["op"] == "!=" else "="
            requirements.append(Requirement(match["key"], op, (match["value"],)))
        elif match := _EXISTS.match(term):
            requirements.append(Requirement(match["key"], "!" if match["neg"] else "exists"))
        else:
            raise SelectorError(f"unable to parse requirement: {term!r}")
    return tuple(requirements)


def labels_match(requirements: tuple[Requirement, ...], labels: Mapping[str, str] | None) -> bool:
    labels = labels or {}
    return all(req.matches(labels.get(req.key)) for req in requirements)


def parse_field_selector(
    text: str | None, resolve: Callable[[str], str | None]
) -> tuple[Requirement, ...]:
    """Parse ``a=b,c!=d``; ``resolve`` maps a field label to an object path or None (unsupported).

    The returned requirements carry the resolved path as their key.
    """
    requirements = []
    for term in [t.strip() for t in (text or "").split(",") if t.strip()]:
        match = re.match(r"^(?P<key>[^=!]+?)\s*(?P<op>==|=|!=)\s*(?P<value>.*)$", term)
        if not match:
            raise SelectorError(f"invalid selector: {term!r}; can't understand {term!r}")
        path = resolve(match["key"])
        if path is None:
            raise SelectorError(f"field label not supported: {match['key']}")
        op = "!=" if match["op"] == "!=" else "="
        requirements.append(Requirement(path, op, (match["value"].strip(),)))
    return tuple(requirements)


def field_value(obj: Mapping, path: str) -> str:
    """The string form the real server compares: missing fields are "", booleans lower-case."""
    value: object = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def fields_match(requirements: tuple[Requirement, ...], obj: Mapping) -> bool:
    return all(req.matches(field_value(obj, req.key)) for req in requirements)


@dataclass(frozen=True)
class Selector:
    """A list/watch filter: labels and fields together."""

    labels: tuple[Requirement, ...] = ()
    fields: tuple[Requirement, ...] = ()

    def matches(self, obj: Mapping) -> bool:
        return labels_match(self.labels, obj.get("metadata", {}).get("labels")) and fields_match(
            self.fields, obj
        )
