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

from jupyterhub_platform.validate import FieldPath, Invalid, checks

from .entitlements import ProfileRule

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


def parse_duration(value: object) -> int | None:
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
    raise Invalid(
        f"expected a positive duration (seconds, or like 30m, 8h, 1h30m, 2d), got {value!r}"
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


def parse_culling(value: object) -> Culling:
    """The validated ``culling:`` section (absent: no policies)."""
    if value is None:
        return Culling()
    section = _mapping(value, ("culling",), SECTION_KEYS)
    raw = section.get("policies") or {}
    if not isinstance(raw, Mapping):
        raise Invalid(f"expected a mapping, got {raw!r}", ("culling", "policies"))
    policies = {name: _policy(name, spec) for name, spec in raw.items()}
    rules_raw = section.get("rules") or []
    if not isinstance(rules_raw, list):
        raise Invalid(f"expected a list, got {rules_raw!r}", ("culling", "rules"))
    rules = tuple(_rule(i, spec, policies) for i, spec in enumerate(rules_raw))
    return Culling(MappingProxyType(policies), rules)


def check_names(culling: Culling, references: Iterable[tuple[FieldPath, str | None]]) -> None:
    """Every ``(field path, name)`` reference must name a defined policy (None: not set)."""
    for at, name in references:
        if name is not None and name not in culling.policies:
            raise Invalid(_unknown(name, culling), at)


def check_profile_references(culling: Culling, rules: Iterable[ProfileRule]) -> None:
    """Profile files' ``culling_policy`` and the rules' profiles and choices must exist."""
    by_slug = {r.slug: r for r in rules}
    for rule in by_slug.values():
        if rule.culling_policy is not None and rule.culling_policy not in culling.policies:
            raise Invalid(
                f"profile {rule.slug!r} has culling_policy {rule.culling_policy!r}: "
                + _unknown(rule.culling_policy, culling),
                ("culling", "policies"),
            )
    for i, rule in enumerate(culling.rules):
        at = ("culling", "rules", i)
        if rule.profile is not None and rule.profile not in by_slug:
            raise Invalid(f"no profile {rule.profile!r} ({_slugs(by_slug)})", (*at, "profile"))
        if rule.choice is not None:
            option, key = rule.choice
            candidates = [by_slug[rule.profile]] if rule.profile else list(by_slug.values())
            if not any(key in r.choices.get(option, {}) for r in candidates):
                raise Invalid(
                    f"no profile{' ' + repr(rule.profile) if rule.profile else ''} "
                    f"has choice {key!r} for option {option!r}",
                    (*at, "choice"),
                )


def _unknown(name: str, culling: Culling) -> str:
    known = ", ".join(sorted(culling.policies)) or "none"
    return f"unknown culling policy {name!r} (defined under culling.policies: {known})"


def _slugs(by_slug: Mapping) -> str:
    return "profiles: " + (", ".join(sorted(by_slug)) or "none")


def _mapping(value: object, at: FieldPath, keys: tuple[str, ...]) -> Mapping:
    try:
        return checks.mapping(value, keys)
    except Invalid as e:
        raise e.within(at) from None


def _policy(name: object, spec: object) -> CullingPolicy:
    at = ("culling", "policies", str(name))
    if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9][a-z0-9._-]*", name):
        raise Invalid("policy names are lower-case a-z 0-9 . _ -", at)
    spec = _mapping(spec or {}, at, POLICY_KEYS)
    groups = spec.get("exempt_groups") or []
    if not isinstance(groups, list) or not all(isinstance(g, str) and g for g in groups):
        raise Invalid(f"expected a list of group names, got {groups!r}", (*at, "exempt_groups"))
    override = spec.get("override", False)
    if not isinstance(override, bool):
        raise Invalid(f"expected true or false, got {override!r}", (*at, "override"))
    description = spec.get("description") or ""
    if not isinstance(description, str):
        raise Invalid(f"expected a string, got {description!r}", (*at, "description"))
    return CullingPolicy(
        name=name,
        idle_timeout=_duration(spec, "idle_timeout", at),
        max_age=_duration(spec, "max_age", at),
        exempt_groups=frozenset(groups),
        override=override,
        description=description,
    )


def _duration(spec: Mapping, key: str, at: FieldPath) -> int | None:
    try:
        return parse_duration(spec.get(key))
    except Invalid as e:
        raise e.within((*at, key)) from None


def _rule(i: int, spec: object, policies: Mapping) -> CullingRule:
    at: FieldPath = ("culling", "rules", i)
    spec = _mapping(spec, at, RULE_KEYS)
    values = {}
    for key in (*MATCH_KEYS, "policy"):
        value = spec.get(key)
        if value is not None and not (isinstance(value, str) and value):
            raise Invalid(f"expected a non-empty string, got {value!r}", (*at, key))
        values[key] = value
    if not any(values[k] for k in MATCH_KEYS):
        raise Invalid(f"a rule needs at least one of {list(MATCH_KEYS)}", at)
    if values["policy"] is None:
        raise Invalid("a rule needs a policy", (*at, "policy"))
    check_names(Culling(policies), [((*at, "policy"), values["policy"])])
    choice = values["choice"]
    if choice is not None:
        parts = choice.split("/")
        if len(parts) != 2 or not all(parts):
            raise Invalid(f"expected '<option>/<choice>', got {choice!r}", (*at, "choice"))
        choice = (parts[0], parts[1])
    return CullingRule(
        policy=values["policy"],
        profile=values["profile"],
        kind=values["kind"],
        choice=choice,
        group=values["group"],
    )
