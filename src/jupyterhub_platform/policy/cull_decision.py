"""The culler's decisions, pure: which culling policy a server gets, and keep / cull / exempt.

Inputs are plain data: the hub REST API's server model (``started``, ``last_activity``,
``pending``, ``user_options``), the user's JupyterHub groups (already normalised), the
:class:`~.model.Policy` (with the profile files' rules) and the time. No I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from .culling import CullingPolicy
from .entitlements import ProfileRule
from .model import Policy

PROFILE_KEY = "profile"  # the key ProfileSpawner stores the profile slug under in user_options

KEEP, CULL, EXEMPT = "keep", "cull", "exempt"
IDLE, MAX_AGE = "idle", "max-age"


@dataclass(frozen=True)
class Applied:
    """The culling policy one server gets, and why (for ``policy explain`` and the user page)."""

    policy: CullingPolicy | None
    candidates: tuple[tuple[str, str], ...]  # (policy name, where it came from), in order
    profile: ProfileRule | None
    exempt: bool

    @property
    def name(self) -> str | None:
        return self.policy.name if self.policy else None


@dataclass(frozen=True)
class Decision:
    action: str  # KEEP, CULL or EXEMPT
    reason: str  # IDLE / MAX_AGE for CULL; why not otherwise
    policy: str | None
    idle_seconds: float | None = None
    age_seconds: float | None = None
    cull_at: datetime | None = None  # when it will be culled if nothing changes
    due: str | None = None  # the limit (IDLE / MAX_AGE) that stops a kept server at cull_at


def applicable(policy: Policy, groups: Iterable[str], user_options: Mapping | None) -> Applied:
    """The winning culling policy for a server spawned with ``user_options`` by ``groups``."""
    options = user_options if isinstance(user_options, Mapping) else {}
    keys = {policy.normaliser.key(g) for g in groups}
    slug = options.get(PROFILE_KEY)
    profile = next((r for r in policy.profile_rules if r.slug == slug), None)
    kind = profile.kind if profile else None
    candidates = [
        (r.policy, f"culling.rules[{i}] ({r.describe()})")
        for i, r in enumerate(policy.culling.rules)
        if r.matches(slug, kind, options, _GroupKeys(keys, policy))
    ]
    if profile is not None and profile.culling_policy:
        candidates.append((profile.culling_policy, f"profile {profile.slug!r}"))
    group = next((g for g in policy.grants_for(groups) if g.culling_policy), None)
    if group is not None:
        candidates.append((group.culling_policy, f"group {group.group!r}"))
    if not candidates and policy.default_culling_policy:
        candidates.append((policy.default_culling_policy, "defaults.culling_policy"))
    found = [policy.culling.policies[name] for name, _ in candidates]
    winner = _strictest([p for p in found if p.override] or found)
    exempt = winner is not None and any(
        policy.normaliser.key(g) in keys for g in winner.exempt_groups
    )
    return Applied(winner, tuple(candidates), profile, exempt)


def decide(server: Mapping, applied: Applied, now: datetime) -> Decision:
    """Keep, cull or exempt one server (a hub REST API server model) under ``applied``."""
    name = applied.name
    if server.get("pending"):
        return Decision(KEEP, f"pending {server['pending']}", name)
    if applied.policy is None:
        return Decision(KEEP, "no culling policy applies", name)
    if applied.exempt:
        return Decision(EXEMPT, "member of an exempt group", name)
    started = parse_time(server.get("started"))
    last = parse_time(server.get("last_activity")) or started
    if last is None:
        return Decision(KEEP, "no start or activity time", name)
    idle = max((now - last).total_seconds(), 0.0)  # activity "in the future": clock skew, not idle
    age = max((now - started).total_seconds(), 0.0) if started else None
    limits = applied.policy
    deadlines = []  # (when, which limit)
    if limits.idle_timeout is not None:
        if idle > limits.idle_timeout:
            return Decision(CULL, IDLE, name, idle, age, now, IDLE)
        deadlines.append((now - _s(idle) + _s(limits.idle_timeout), IDLE))
    if limits.max_age is not None and started is not None:
        if age > limits.max_age:
            return Decision(CULL, MAX_AGE, name, idle, age, now, MAX_AGE)
        deadlines.append((started + _s(limits.max_age), MAX_AGE))
    cull_at, due = min(deadlines, key=lambda d: d[0], default=(None, None))
    return Decision(KEEP, "within its limits", name, idle, age, cull_at, due)


def parse_time(value: object) -> datetime | None:
    """A hub API timestamp (ISO 8601, ``Z`` or offset; naive means UTC) or None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _s(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)


def _strictest(policies: list[CullingPolicy]) -> CullingPolicy | None:
    return min(policies, key=CullingPolicy.strictness, default=None)  # min is stable: file order


class _GroupKeys:
    """``group in groups`` for a rule's group name, compared as the policy compares names."""

    def __init__(self, keys: set[str], policy: Policy):
        self._keys, self._key = keys, policy.normaliser.key

    def __contains__(self, group: str) -> bool:
        return self._key(group) in self._keys
