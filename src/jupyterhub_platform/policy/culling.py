"""Culling policies: the policy file's ``culling:`` section, parsed and checked (pure).

A *culling policy* is a named set of limits (idle timeout, maximum age, exempt groups). Which
policies apply to one server: every ``culling.rules`` entry that matches its profile slug, kind,
choice and the user's groups, the profile file's ``culling_policy`` and the user's group policy
(``groups.<g>.culling_policy``, the first group in file order). The *strictest* of those wins
(shortest idle timeout, then shortest maximum age, then file order); a policy with
``override: true`` wins over stricter ones that are not overrides. With none of them,
``defaults.culling_policy`` applies. See docs/culler.md.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from .entitlements import ProfileRule
from .errors import PolicyError

SECTION_KEYS = ("policies", "rules")
POLICY_KEYS = ("idle_timeout", "max_age", "exempt_groups", "override", "description")
RULE_KEYS = ("profile", "kind", "choice", "group", "policy")
MATCH_KEYS = ("profile", "kind", "choice", "group")
_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


@dataclass(frozen=True)
class CullingPolicy:
    """One named policy; ``None`` limits mean no limit."""

    name: str
    idle_timeout: int | None = None
    max_age: int | None = None
    exempt_groups: frozenset[str] = frozenset()
    override: bool = False
    description: str = ""

    def strictness(self) -> tuple[float, float]:
        """Sort key: smaller is stricter (no limit counts as infinite)."""
        inf = float("inf")
        return (
            inf if self.idle_timeout is None else self.idle_timeout,
            inf if self.max_age is None else self.max_age,
        )


@dataclass(frozen=True)
class CullingRule:
    """``policy`` applies to servers matching every given field (absent fields match anything)."""

    policy: str
    profile: str | None = None
    kind: str | None = None
    choice: tuple[str, str] | None = None  # (option, choice key)
    group: str | None = None

    def matches(self, slug: str | None, kind: str | None, options: Mapping, groups) -> bool:
        if self.profile is not None and self.profile != slug:
            return False
        if self.kind is not None and self.kind != kind:
            return False
        if self.choice is not None and options.get(self.choice[0]) != self.choice[1]:
            return False
        return self.group is None or self.group in groups

    def describe(self) -> str:
        parts = [f"{k}={v}" for k, v in (("profile", self.profile), ("kind", self.kind)) if v]
        if self.choice:
            parts.append(f"choice={self.choice[0]}/{self.choice[1]}")
        if self.group:
            parts.append(f"group={self.group}")
        return ", ".join(parts)


@dataclass(frozen=True)
class Culling:
    """The ``culling:`` section: named policies and the rules that select them."""

    policies: Mapping[str, CullingPolicy] = dataclasses.field(
        default_factory=lambda: MappingProxyType({})
    )
    rules: tuple[CullingRule, ...] = ()


def parse_duration(value: object, source: str, field: str) -> int | None:
    """Seconds from ``90``, ``"30m"``, ``"8h"``, ``"1h30m"``, ``"2d"``; ``None`` stays None."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    match = _DURATION.match(value) if isinstance(value, str) else None
    if match and any(match.groups()):
        seconds = sum(int(n) * _UNITS[u] for n, u in zip(match.groups(), "dhms", strict=True) if n)
        if seconds > 0:
            return seconds
    raise PolicyError(
        source,
        field,
        f"expected a positive duration (seconds, or like 30m, 8h, 1h30m, 2d), got {value!r}",
    )


def format_duration(seconds: float | None) -> str:
    """``5400`` -> ``1h30m``; None -> ``never``."""
    if seconds is None:
        return "never"
    seconds, parts = int(seconds), []
    for unit, size in _UNITS.items():
        if seconds >= size or (unit == "s" and not parts):
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts)


def parse_culling(value: object, source: str) -> Culling:
    """The validated ``culling:`` section (absent: no policies)."""
    if value is None:
        return Culling()
    section = _mapping(value, source, "culling", SECTION_KEYS)
    raw = section.get("policies") or {}
    if not isinstance(raw, Mapping):
        raise PolicyError(source, "culling.policies", f"expected a mapping, got {raw!r}")
    policies = {name: _policy(name, spec, source) for name, spec in raw.items()}
    rules_raw = section.get("rules") or []
    if not isinstance(rules_raw, list):
        raise PolicyError(source, "culling.rules", f"expected a list, got {rules_raw!r}")
    rules = tuple(_rule(i, spec, source, policies) for i, spec in enumerate(rules_raw))
    return Culling(MappingProxyType(policies), rules)


def check_names(culling: Culling, source: str, references: Iterable[tuple[str, str | None]]):
    """Every ``(field, name)`` reference must name a defined policy (None: not set)."""
    for field, name in references:
        if name is not None and name not in culling.policies:
            raise PolicyError(source, field, _unknown(name, culling))


def check_profile_references(culling: Culling, source: str, rules: Iterable[ProfileRule]) -> None:
    """Profile files' ``culling_policy`` and the rules' profiles and choices must exist."""
    by_slug = {r.slug: r for r in rules}
    for rule in by_slug.values():
        if rule.culling_policy is not None and rule.culling_policy not in culling.policies:
            raise PolicyError(
                source,
                "culling.policies",
                f"profile {rule.slug!r} has culling_policy {rule.culling_policy!r}: "
                + _unknown(rule.culling_policy, culling),
            )
    for i, rule in enumerate(culling.rules):
        field = f"culling.rules[{i}]"
        if rule.profile is not None and rule.profile not in by_slug:
            raise PolicyError(
                source, f"{field}.profile", f"no profile {rule.profile!r} ({_slugs(by_slug)})"
            )
        if rule.choice is not None:
            option, key = rule.choice
            candidates = [by_slug[rule.profile]] if rule.profile else list(by_slug.values())
            if not any(key in r.choices.get(option, {}) for r in candidates):
                raise PolicyError(
                    source,
                    f"{field}.choice",
                    f"no profile{' ' + repr(rule.profile) if rule.profile else ''} "
                    f"has choice {key!r} for option {option!r}",
                )


def _unknown(name: str, culling: Culling) -> str:
    known = ", ".join(sorted(culling.policies)) or "none"
    return f"unknown culling policy {name!r} (defined under culling.policies: {known})"


def _slugs(by_slug: Mapping) -> str:
    return "profiles: " + (", ".join(sorted(by_slug)) or "none")


def _mapping(value: object, source: str, field: str, keys: tuple[str, ...]) -> Mapping:
    if not isinstance(value, Mapping):
        raise PolicyError(source, field, f"expected a mapping, got {value!r}")
    unknown = sorted(str(k) for k in value if k not in keys)
    if unknown:
        raise PolicyError(source, field, f"unknown key(s) {unknown}; allowed: {list(keys)}")
    return value


def _policy(name: object, spec: object, source: str) -> CullingPolicy:
    field = f"culling.policies.{name}"
    if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9][a-z0-9._-]*", name):
        raise PolicyError(source, field, "policy names are lower-case a-z 0-9 . _ -")
    spec = _mapping(spec or {}, source, field, POLICY_KEYS)
    groups = spec.get("exempt_groups") or []
    if not isinstance(groups, list) or not all(isinstance(g, str) and g for g in groups):
        raise PolicyError(
            source, f"{field}.exempt_groups", f"expected a list of group names, got {groups!r}"
        )
    override = spec.get("override", False)
    if not isinstance(override, bool):
        raise PolicyError(source, f"{field}.override", f"expected true or false, got {override!r}")
    description = spec.get("description") or ""
    if not isinstance(description, str):
        raise PolicyError(source, f"{field}.description", f"expected a string, got {description!r}")
    return CullingPolicy(
        name=name,
        idle_timeout=parse_duration(spec.get("idle_timeout"), source, f"{field}.idle_timeout"),
        max_age=parse_duration(spec.get("max_age"), source, f"{field}.max_age"),
        exempt_groups=frozenset(groups),
        override=override,
        description=description,
    )


def _rule(i: int, spec: object, source: str, policies: Mapping) -> CullingRule:
    field = f"culling.rules[{i}]"
    spec = _mapping(spec, source, field, RULE_KEYS)
    values = {}
    for key in (*MATCH_KEYS, "policy"):
        value = spec.get(key)
        if value is not None and not (isinstance(value, str) and value):
            raise PolicyError(
                source, f"{field}.{key}", f"expected a non-empty string, got {value!r}"
            )
        values[key] = value
    if not any(values[k] for k in MATCH_KEYS):
        raise PolicyError(source, field, f"a rule needs at least one of {list(MATCH_KEYS)}")
    if values["policy"] is None:
        raise PolicyError(source, f"{field}.policy", "a rule needs a policy")
    check_names(Culling(policies), source, [(f"{field}.policy", values["policy"])])
    choice = values["choice"]
    if choice is not None:
        parts = choice.split("/")
        if len(parts) != 2 or not all(parts):
            raise PolicyError(
                source, f"{field}.choice", f"expected '<option>/<choice>', got {choice!r}"
            )
        choice = (parts[0], parts[1])
    return CullingRule(
        policy=values["policy"],
        profile=values["profile"],
        kind=values["kind"],
        choice=choice,
        group=values["group"],
    )
