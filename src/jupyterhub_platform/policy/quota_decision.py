"""May this server start? The quota decision as a pure function (no I/O, no JupyterHub objects).

Inputs: the user's :class:`~.quotas.UserQuota`, the servers already counted (running, pending or
reserved) with what they request, and the request. The per-user limits sum the user's own
servers; each pool sums the servers of every member of its group. See docs/quotas.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from types import MappingProxyType

from .quotas import LIMIT_KEYS, Limits, Quotas, UserQuota

_NOUNS = {"servers": "servers", "cpu": "CPU cores", "memory": "GiB of memory", "gpus": "GPUs"}
_TITLES = {"servers": "Servers", "cpu": "CPU cores", "memory": "Memory (GiB)", "gpus": "GPUs"}
_GIB = 1024**3


@dataclass(frozen=True)
class Usage:
    """What servers request: a count, CPU cores, memory bytes and GPUs."""

    servers: int = 0
    cpu: float = 0.0
    memory: int = 0
    gpus: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(*(getattr(self, k) + getattr(other, k) for k in LIMIT_KEYS))


@dataclass(frozen=True)
class Server:
    """A counted server: its owner, its name (``""``: the default server) and its requests."""

    user: str
    name: str
    usage: Usage

    @property
    def label(self) -> str:
        return repr(self.name) if self.name else "your default server"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    message: str = ""


def total(servers: Iterable[Server]) -> Usage:
    return sum((s.usage for s in servers), Usage())


def amount(field: str, value: float) -> str:
    """``value`` of ``field`` as people read it (memory in GiB)."""
    if field == "memory":
        value = value / _GIB
    return f"{value:g}"


def decide(
    quota: UserQuota,
    user: str,
    counted: Iterable[Server],
    request: Usage,
    members: Mapping[str, Iterable[str]] = MappingProxyType({}),
) -> Decision:
    """Allow ``request`` by ``user`` unless it would take a per-user limit or a pool of one of
    their groups past its bound; the refusal names the limit, the use and what to stop.

    ``counted`` must not hold the server being started; ``members`` maps each pool's group to
    the names of its members (the user among them)."""
    counted = list(counted)
    mine = [s for s in counted if s.user == user]
    used = total(mine)
    for field in LIMIT_KEYS:
        limit = quota.limits.get(field)
        want = getattr(request, field)
        if limit is None or not want or getattr(used, field) + want <= limit.value:
            continue
        return Decision(
            False,
            _refusal(
                field,
                getattr(used, field),
                limit.value,
                want,
                f"({limit.source})",
                _stoppable(mine, field),
            ),
        )
    for pool in quota.pools:
        names = set(members.get(pool.group, ())) | {user}
        pool_used = total(s for s in counted if s.user in names)
        for field in LIMIT_KEYS:
            bound = getattr(pool.limits, field)
            want = getattr(request, field)
            if bound is None or not want or getattr(pool_used, field) + want <= bound:
                continue
            return Decision(
                False,
                _refusal(
                    field,
                    getattr(pool_used, field),
                    bound,
                    want,
                    f"for group {pool.group}",
                    _stoppable(mine, field),
                    shared=True,
                ),
            )
    return Decision(True)


def _stoppable(mine: list[Server], field: str) -> list[Server]:
    return sorted((s for s in mine if getattr(s.usage, field)), key=lambda s: s.name)


def _refusal(field, used, bound, want, where, stoppable, shared=False) -> str:
    noun = _NOUNS[field]
    who = "Your group's servers are" if shared else "You are"
    head = f"{who} using {amount(field, used)} of {amount(field, bound)} {noun} {where}"
    if field != "servers":
        head += f" and this server requests {amount(field, want)}"
    if stoppable:
        names = " or ".join(s.label for s in stoppable)
        return f"{head}: stop {names} to start another"
    return f"{head}: wait until other members of the group stop servers"


def usage_lines(
    quota: UserQuota,
    user: str,
    counted: Iterable[Server],
    members: Mapping[str, Iterable[str]] = MappingProxyType({}),
) -> list[str]:
    """Each limit with its current use, as the spawn page shows it ("GPUs: 1 of 2 in use
    (group gpu-users)")."""
    counted = list(counted)
    used = total(s for s in counted if s.user == user)
    lines = [
        f"{_TITLES[field]}: {amount(field, getattr(used, field))} of "
        f"{amount(field, limit.value)} in use ({limit.source})"
        for field, limit in quota.limits.items()
    ]
    for pool in quota.pools:
        names = set(members.get(pool.group, ())) | {user}
        pool_used = total(s for s in counted if s.user in names)
        lines += [
            f"{_TITLES[field]} shared by group {pool.group}: "
            f"{amount(field, getattr(pool_used, field))} of {amount(field, bound)} in use"
            for field in LIMIT_KEYS
            if (bound := getattr(pool.limits, field)) is not None
        ]
    return lines


def group_use(
    quotas: Quotas, members: Mapping[str, Iterable[str]], counted: Iterable[Server]
) -> dict:
    """Use by group, for the admin view: each quota group's members' servers, their summed
    requests and the group's per-user limits and pool (JSON-able; memory in bytes)."""
    counted = list(counted)
    report = {}
    for quota in quotas.groups:
        names = set(members.get(quota.group, ()))
        servers = [s for s in counted if s.user in names]
        report[quota.group] = {
            "members": len(names),
            "servers": [{"user": s.user, "name": s.name, **asdict(s.usage)} for s in servers],
            "use": asdict(total(servers)),
            "user_limits": _set_fields(quota.user),
            "pool": _set_fields(quota.pool),
        }
    return report


def _set_fields(limits: Limits) -> dict:
    return {k: v for k, v in asdict(limits).items() if v is not None}
