"""The hub's side of quotas: what servers count, and reservations that stop spawns racing.

Usage comes from the hub's own state only: every active (running or pending) spawner of the user
and of their pools' group members, each counted at the requests its saved profile and size imply
(so a restarted hub, which reloads spawners and their user_options from its database, counts the
same). No Kubernetes request is made.

A spawn is checked and reserved in one synchronous step (no ``await`` in between, so within the
hub's single event loop no other check can interleave) before JupyterHub's ``spawn_single_user``;
the reservation counts until that returns or fails, by which time the spawner is pending, running
or failed and counts (or not) by itself. See docs/quotas.md.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import NamedTuple

from jupyterhub_platform.policy.quota_decision import Decision, Server, Usage, decide
from jupyterhub_platform.policy.quotas import UserQuota
from jupyterhub_platform.profiles.catalogue import Catalogue
from jupyterhub_platform.profiles.model import SIZE_OPTION, Profile, Size
from jupyterhub_platform.profiles.options import PROFILE_KEY


class QuotaState(NamedTuple):
    """:func:`~jupyterhub_platform.policy.quota_decision.decide`'s arguments but the request."""

    quota: UserQuota
    user: str
    counted: list[Server]
    members: Mapping[str, list[str]]

    def decide(self, request: Usage) -> Decision:
        return decide(self.quota, self.user, self.counted, request, self.members)


_reserved: dict[tuple[str, str], Server] = {}


def size_usage(profile: Profile, size: Size) -> Usage:
    """What one server of ``profile`` at ``size`` requests (notebook container plus sidecars)."""
    sidecars = profile.sidecars
    return Usage(
        servers=1,
        cpu=size.resources.cpu_request + sum(s.resources.cpu_request for s in sidecars),
        memory=size.resources.mem_request + sum(s.resources.mem_request for s in sidecars),
        gpus=size.gpu.count if size.gpu else 0,
    )


def quota_refusal(state: QuotaState) -> Callable[[Profile, Size], str | None]:
    """For the spawn page: why a server of a profile at a size would be refused now, or None."""

    def refusal(profile: Profile, size: Size) -> str | None:
        decision = state.decide(size_usage(profile, size))
        return None if decision.allowed else decision.message

    return refusal


def saved_usage(catalogue: Catalogue, user_options: Mapping | None) -> Usage:
    """What a server started with ``user_options`` requests; a profile or size no longer in the
    catalogue still counts as one server."""
    options = user_options or {}
    profile = catalogue.get(options.get(PROFILE_KEY) or "")
    if profile is None or not profile.sizes:
        return Usage(servers=1)
    key = options.get(SIZE_OPTION)
    size = next((s for s in profile.sizes if s.key == key), None)
    if size is None:
        size = next((s for s in profile.sizes if s.default), profile.sizes[0])
    return size_usage(profile, size)


def counted_servers(catalogue: Catalogue, users: Iterable, skip: tuple[str, str]) -> list[Server]:
    """The active servers of JupyterHub ``users`` (User wrappers) and the reservations, except
    the server ``skip`` (user name, server name) being started."""
    counted = {
        (user.name, name): Server(
            user.name,
            name,
            saved_usage(catalogue, spawner.user_options or spawner.orm_spawner.user_options),
        )
        for user in users
        for name, spawner in user.spawners.items()
        if spawner.active
    }
    for key, server in _reserved.items():
        counted.setdefault(key, server)
    counted.pop(skip, None)
    return list(counted.values())


@contextlib.contextmanager
def reserved(server: Server | None) -> Iterator[None]:
    """Count ``server`` as running while the block runs (None: nothing to reserve)."""
    if server is None:
        yield
        return
    key = (server.user, server.name)
    _reserved[key] = server
    try:
        yield
    finally:
        if _reserved.get(key) is server:
            del _reserved[key]
