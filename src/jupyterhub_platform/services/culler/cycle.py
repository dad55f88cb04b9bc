"""One culling cycle against the hub: list, decide, re-check, stop, audit."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime

from jupyterhub_platform.observability.audit import emit
from jupyterhub_platform.policy.cull_decision import CULL
from jupyterhub_platform.policy.model import Policy

from ..common.hub_client import HubAPIError, HubClient, server_url, user_url
from .metrics import CullerMetrics
from .views import ServerView, server_views, to_cull, user_is_idle


@dataclass(frozen=True)
class CullSettings:
    dry_run: bool = False
    remove_named_servers: bool = False
    cull_users: bool = False
    user_idle_timeout: int = 0
    cull_admin_users: bool = False
    actor: str = "culler"  # the service's name in the audit trail


@dataclass
class CycleReport:
    seen: Counter = field(default_factory=Counter)  # action -> servers
    culled: list[ServerView] = field(default_factory=list)
    users_culled: list[str] = field(default_factory=list)
    duration: float = 0.0


def list_users(client: HubClient, cull_users: bool) -> AsyncIterator[dict]:
    """Users with ready servers; with ``cull_users`` also those without (JupyterHub's state
    filter: ``ready`` and ``inactive``), as the hub's pages arrive."""
    states = ("ready", "inactive") if cull_users else ("ready",)
    return (u for state in states async for u in client.paged("/users", {"state": state}))


async def run_cycle(
    client: HubClient,
    policy: Policy,
    settings: CullSettings,
    metrics: CullerMetrics,
    log: logging.Logger,
    clock: Callable[[], datetime],
) -> CycleReport:
    """Decide every server as its page arrives; stop those to cull (each re-checked on a fresh
    user model)."""
    started = time.monotonic()
    report = CycleReport()
    now = clock()
    culls: list[ServerView] = []
    idle: dict[str, bool] = {}  # user -> deletable; the last listing of a user counts
    async for user in list_users(client, settings.cull_users):
        views = server_views(user, policy, now)
        report.seen.update(v.decision.action for v in views)
        culls.extend(to_cull(views))
        if settings.cull_users:
            idle[user["name"]] = user_is_idle(
                user, now, settings.user_idle_timeout, settings.cull_admin_users
            )
    stops = [_stop(client, v, policy, settings, metrics, log, clock) for v in culls]
    report.culled = [v for v in await asyncio.gather(*stops) if v is not None]
    if settings.cull_users:
        names = [n for n, deletable in idle.items() if deletable]
        done = await asyncio.gather(*(_delete_user(client, n, settings, log) for n in names))
        report.users_culled = [n for n, ok in zip(names, done, strict=True) if ok]
        metrics.users_culled.inc(len(report.users_culled))
    report.duration = time.monotonic() - started
    for action in ("keep", "cull", "exempt"):
        metrics.servers.labels(action).set(report.seen.get(action, 0))
    metrics.cycle_duration.observe(report.duration)
    return report


async def _stop(client, view, policy, settings, metrics, log, clock) -> ServerView | None:
    """Stop one server if a fresh look at its user still says cull; None if not stopped."""
    try:
        _, fresh_user = await client.request("GET", user_url(view.user))
    except HubAPIError as exc:
        if exc.status == 404:
            return None
        raise
    fresh = next(
        (v for v in server_views(fresh_user, policy, clock()) if v.server == view.server), None
    )
    if fresh is None or fresh.decision.action != CULL:
        log.info("not culling %s/%s: changed since listed", view.user, view.server)
        return None
    log.info("%s", fresh.summary(settings.dry_run))
    emit(fresh.audit_event(settings.dry_run, settings.actor))
    metrics.culled.labels(
        fresh.decision.policy, fresh.decision.reason, str(settings.dry_run).lower()
    ).inc()
    if settings.dry_run:
        return fresh
    body = {"remove": True} if view.server and settings.remove_named_servers else None
    try:
        await client.request("DELETE", server_url(view.user, view.server), body)
    except HubAPIError as exc:
        if exc.status in (400, 404):  # already stopped or gone
            log.info("server %s/%s already stopped: %s", view.user, view.server, exc)
            return None
        raise
    return fresh


async def _delete_user(client: HubClient, name: str, settings: CullSettings, log) -> bool:
    log.info(
        "AUDIT %s user=%s reason=inactive-user",
        "would delete" if settings.dry_run else "deleting",
        name,
    )
    if settings.dry_run:
        return True
    try:
        await client.request("DELETE", user_url(name))
    except HubAPIError as exc:
        log.warning("could not delete user %s: %s", name, exc)
        return False
    return True
