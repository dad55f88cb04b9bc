"""What the culler thinks of each server, as plain data (pure): for cycles, pages and the API."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from jupyterhub_platform.observability.audit import audit_event
from jupyterhub_platform.policy.cull_decision import (
    CULL,
    PROFILE_KEY,
    Decision,
    applicable,
    decide,
    parse_time,
)
from jupyterhub_platform.policy.model import Policy


@dataclass(frozen=True)
class ServerView:
    user: str
    server: str  # "" for the default server
    profile: str | None
    decision: Decision

    def as_json(self) -> dict:
        d = self.decision
        return {
            "user": self.user,
            "server": self.server,
            "profile": self.profile,
            "policy": d.policy,
            "action": d.action,
            "reason": d.reason,
            "idle_seconds": None if d.idle_seconds is None else round(d.idle_seconds),
            "age_seconds": None if d.age_seconds is None else round(d.age_seconds),
            "cull_at": d.cull_at.isoformat() if d.cull_at else None,
            "due": d.due,
        }

    def audit_event(self, dry_run: bool, actor: str) -> dict:
        """The audit event of a stop (``actor``: the culler service's name)."""
        d = self.decision
        return audit_event(
            "server.cull", actor=actor, subject=self.user,
            result="dry_run" if dry_run else "ok", reason=d.reason, server=self.server,
            profile=self.profile or "", policy=d.policy,
            idle_seconds=None if d.idle_seconds is None else round(d.idle_seconds),
            age_seconds=None if d.age_seconds is None else round(d.age_seconds),
        )  # fmt: skip

    def summary(self, dry_run: bool) -> str:
        """The log line of a stop: user, server, profile, policy and reason."""
        d = self.decision
        return (
            f"{'would cull' if dry_run else 'culling'} user={self.user} "
            f"server={self.server or '(default)'} profile={self.profile or '-'} "
            f"policy={d.policy} reason={d.reason} idle={_secs(d.idle_seconds)} "
            f"age={_secs(d.age_seconds)}"
        )


def server_views(user: Mapping, policy: Policy, now: datetime) -> list[ServerView]:
    """Each of a user model's servers with its decision."""
    groups = user.get("groups") or []
    views = []
    for name, server in sorted((user.get("servers") or {}).items()):
        options = server.get("user_options") or {}
        applied = applicable(policy, groups, options)
        profile = options.get(PROFILE_KEY) if isinstance(options, Mapping) else None
        views.append(ServerView(user["name"], name, profile, decide(server, applied, now)))
    return views


def to_cull(views: Iterable[ServerView]) -> list[ServerView]:
    return [v for v in views if v.decision.action == CULL]


def user_is_idle(user: Mapping, now: datetime, timeout: int, cull_admins: bool) -> bool:
    """A user with no servers, inactive (or, never active, created) longer than ``timeout``."""
    if user.get("servers") or (user.get("admin") and not cull_admins):
        return False
    since = parse_time(user.get("last_activity")) or parse_time(user.get("created"))
    return since is not None and (now - since).total_seconds() > timeout


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{round(value)}s"
