"""Quotas: the policy file's ``quotas:`` section, parsed and resolved for a user (pure).

Two kinds of limit, each over concurrent servers (default and named), CPU, memory and GPUs as
requested by running and pending servers:

- *per user* (``quotas.defaults`` and ``quotas.groups.<g>.user``): what one user's servers may sum
  to. A user in several groups gets, field by field, the most generous of their groups' values
  (``multi_group: most_generous``, the default) or the strictest (``multi_group: strictest``);
  a field none of their groups sets comes from ``defaults``; absent everywhere means no limit.
- *per group pool* (``quotas.groups.<g>.pool``): what all members' servers together may sum to.
  Every pool of every group the user is in applies (a pool is shared, so it is never merged).

See docs/quotas.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType

from jupyterhub_platform.validate import FieldPath, Invalid, checks

SECTION_KEYS = ("multi_group", "defaults", "groups")
GROUP_KEYS = ("user", "pool")
LIMIT_KEYS = ("servers", "cpu", "memory", "gpus")
MULTI_GROUP_RULES = ("most_generous", "strictest")

_PARSERS = {
    "servers": lambda value: checks.integer(value, 0),
    "cpu": checks.cpu,
    "memory": checks.memory,
    "gpus": lambda value: checks.integer(value, 0),
}


@dataclass(frozen=True)
class Limits:
    """Upper bounds on a sum of servers' requests; ``None`` means no limit (CPU in cores,
    memory in bytes)."""

    servers: int | None = None
    cpu: float | None = None
    memory: int | None = None
    gpus: int | None = None

    def is_empty(self) -> bool:
        return all(getattr(self, f.name) is None for f in fields(self))


@dataclass(frozen=True)
class Limit:
    """One resolved per-user limit and where it comes from (``defaults`` or ``group <g>``)."""

    value: float
    source: str


@dataclass(frozen=True)
class Pool:
    """A group's shared pool."""

    group: str
    limits: Limits


@dataclass(frozen=True)
class UserQuota:
    """What applies to one user: per-user limits by field, and the pools of their groups."""

    limits: Mapping[str, Limit] = field(default_factory=lambda: MappingProxyType({}))
    pools: tuple[Pool, ...] = ()

    @property
    def unlimited(self) -> bool:
        return not self.limits and not self.pools


@dataclass(frozen=True)
class GroupQuota:
    group: str
    user: Limits = Limits()
    pool: Limits = Limits()


@dataclass(frozen=True)
class Quotas:
    """The ``quotas:`` section (absent: nothing is limited)."""

    defaults: Limits = Limits()
    groups: tuple[GroupQuota, ...] = ()
    multi_group: str = "most_generous"

    def for_groups(self, groups: Iterable[str], key=lambda name: name) -> UserQuota:
        """The quota of a user in ``groups`` (normalised names; ``key`` compares them)."""
        keys = {key(g) for g in groups}
        mine = [q for q in self.groups if key(q.group) in keys]
        pick = max if self.multi_group == "most_generous" else min
        limits = {}
        for name in LIMIT_KEYS:
            candidates = [
                (getattr(q.user, name), f"group {q.group}")
                for q in mine
                if getattr(q.user, name) is not None
            ]
            if candidates:
                value, source = pick(candidates, key=lambda c: c[0])
                limits[name] = Limit(value, source)
            elif getattr(self.defaults, name) is not None:
                limits[name] = Limit(getattr(self.defaults, name), "defaults")
        pools = tuple(Pool(q.group, q.pool) for q in mine if not q.pool.is_empty())
        return UserQuota(MappingProxyType(limits), pools)


def parse_quotas(value: object) -> Quotas:
    """The validated ``quotas:`` section."""
    if value is None:
        return Quotas()
    at: FieldPath = ("quotas",)
    section = _within(at, checks.mapping, value, SECTION_KEYS)
    rule = section.get("multi_group", "most_generous")
    _within((*at, "multi_group"), checks.one_of, rule, MULTI_GROUP_RULES)
    raw_groups = section.get("groups") or {}
    if not isinstance(raw_groups, Mapping):
        raise Invalid(
            f"must be a mapping of group name -> quota, got {checks.kind(raw_groups)}",
            (*at, "groups"),
        )
    groups = []
    for group, spec in raw_groups.items():
        here = (*at, "groups", group)
        spec = _within(here, checks.mapping, spec or {}, GROUP_KEYS)
        if not spec:
            raise Invalid("a group quota needs 'user' or 'pool' limits", here)
        groups.append(
            GroupQuota(
                group=str(group),
                user=_limits(spec.get("user"), (*here, "user")),
                pool=_limits(spec.get("pool"), (*here, "pool")),
            )
        )
    return Quotas(_limits(section.get("defaults"), (*at, "defaults")), tuple(groups), rule)


def check_quota_groups(quotas: Quotas, known: Iterable[str], key) -> None:
    """Every group under ``quotas.groups`` must be a group of the policy (a typo fails the load)."""
    known = list(known)
    keys = {key(g) for g in known}
    for quota in quotas.groups:
        if key(quota.group) not in keys:
            listed = ", ".join(known) or "none"
            raise Invalid(
                f"{quota.group!r} is not a group of this policy (groups: {listed})",
                ("quotas", "groups", quota.group),
            )


def _limits(value: object, at: FieldPath) -> Limits:
    if value is None:
        return Limits()
    spec = _within(at, checks.mapping, value, LIMIT_KEYS)
    return Limits(**{k: _within((*at, k), _PARSERS[k], v) for k, v in spec.items()})


def _within(at: FieldPath, check, value, *args):
    try:
        return check(value, *args)
    except Invalid as e:
        raise e.within(at) from None
