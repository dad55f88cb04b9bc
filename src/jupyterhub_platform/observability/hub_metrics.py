"""The hub's own metrics, beside JupyterHub's in its registry (served at ``/hub/metrics``).

Labels come from configuration only — profiles, sizes and groups the files name, authenticator
classes, reason words from a fixed set — never user names or request values: a value not in the
configuration is counted as ``other``, so no request can grow a label set.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily

PREFIX = "jupyterhub_platform"
OTHER = "other"

LOGINS = Counter(
    f"{PREFIX}_logins",
    "Logins by authenticator class, result (ok, refused, failed) and reason",
    ["authenticator", "result", "reason"],
)
TOKEN_FAILURES = Counter(
    f"{PREFIX}_token_verification_failures",
    "Tokens the hub refused (ID tokens, Cloudflare Access tokens), by verifier and reason",
    ["verifier", "reason"],
)
POLICY_CHANGES = Counter(
    f"{PREFIX}_policy_changes",
    "Rights the group policy changed at login or refresh (admin_granted, admin_revoked, "
    "roles_changed)",
    ["change"],
)
SPAWN_REFUSALS = Counter(
    f"{PREFIX}_spawn_refusals",
    "Spawns refused before they began, by profile and reason (invalid_options, not_entitled, "
    "quota)",
    ["profile", "reason"],
)
SPAWNS = Counter(
    f"{PREFIX}_spawns",
    "Spawns that began, by profile and result (started, failed)",
    ["profile", "result"],
)
SPAWN_DURATION = Histogram(
    f"{PREFIX}_spawn_duration_seconds",
    "Seconds from the spawner's start to a running pod, by profile (started spawns)",
    ["profile"],
    buckets=(1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600),
)
CREDENTIALS_ISSUED = Counter(
    f"{PREFIX}_credentials_issued",
    "Credential sets the hub issued at spawn, by set, provider and result (issued, failed); "
    "the credentials service counts its own issuances",
    ["set", "provider", "result"],
)
OTHER_USER_ACTIONS = Counter(
    f"{PREFIX}_other_user_actions",
    "Requests by a user on another user's server, tokens or account, by action and result",
    ["action", "result"],
)


def known(value: object, allowed: Iterable[str]) -> str:
    """``value`` if configuration names it, else ``other`` (bounded labels)."""
    return value if isinstance(value, str) and value in set(allowed) else OTHER


@dataclass(frozen=True)
class RunningServer:
    """One active server as the metrics see it: labels already bounded."""

    profile: str
    size: str
    groups: tuple[str, ...]


def running_counts(
    servers: Iterable[RunningServer],
) -> tuple[dict[tuple[str, str], int], dict[tuple[str, str], int]]:
    """(profile, size) → servers, and (group, profile) → servers of the group's members (a
    server counts once in each of its user's groups)."""
    by_size: dict[tuple[str, str], int] = {}
    by_group: dict[tuple[str, str], int] = {}
    for server in servers:
        key = (server.profile, server.size)
        by_size[key] = by_size.get(key, 0) + 1
        for group in server.groups:
            by_group[(group, server.profile)] = by_group.get((group, server.profile), 0) + 1
    return by_size, by_group


class RunningServers:
    """A collector: read at each scrape from the hub's users, so a restarted hub is right at
    once (nothing to count up or down). ``servers()`` yields the active ones."""

    def __init__(self, servers: Callable[[], Iterable[RunningServer]]):
        self.servers = servers

    def describe(self):
        return []  # no samples at registration: the hub's users are not loaded yet

    def collect(self):
        by_size, by_group = running_counts(self.servers())
        sizes = GaugeMetricFamily(
            f"{PREFIX}_servers_running",
            "Running servers by profile and size",
            labels=["profile", "size"],
        )
        for (profile, size), count in sorted(by_size.items()):
            sizes.add_metric([profile, size], count)
        groups = GaugeMetricFamily(
            f"{PREFIX}_servers_running_by_group",
            "Running servers by group of their user (once in each group) and profile",
            labels=["group", "profile"],
        )
        for (group, profile), count in sorted(by_group.items()):
            groups.add_metric([group, profile], count)
        yield sizes
        yield groups


def server_labels(
    options: Mapping | None, profiles: Mapping[str, Iterable[str]]
) -> tuple[str, str]:
    """(profile, size) of a server's options; ``profiles``: slug → its size keys."""
    options = options if isinstance(options, Mapping) else {}
    profile = known(options.get("profile"), profiles)
    sizes = profiles.get(profile, ())
    return profile, known(options.get("size"), sizes)


_collector: list[RunningServers] = []


def register_running_servers(servers: Callable[[], Iterable[RunningServer]]) -> None:
    """The hub's collector; a second hub application in the process replaces the first's."""
    while _collector:
        REGISTRY.unregister(_collector.pop())
    _collector.append(RunningServers(servers))
    REGISTRY.register(_collector[0])
