"""What spawns leave in the metrics and the audit trail: refusals before a spawn begins, and
the start or failure of each one that began (profile and choices, never an environment)."""

from __future__ import annotations

from collections.abc import Mapping

from jupyterhub_platform.observability import hub_metrics
from jupyterhub_platform.observability.audit import audit
from jupyterhub_platform.profiles.options import OptionError


def refusal_reason(error: OptionError) -> str:
    """quota, not_entitled (403) or invalid_options (400)."""
    if error.refusal:
        return error.refusal
    return "not_entitled" if error.status_code == 403 else "invalid_options"


def record_refusal(user: str, server: str, profile: str, error: OptionError) -> None:
    """``profile``: the bounded label of the requested profile."""
    reason = refusal_reason(error)
    hub_metrics.SPAWN_REFUSALS.labels(profile, reason).inc()
    audit("server.refused", actor=user, subject=user, result="refused", reason=reason,
          server=server, profile=profile, message=error.jupyterhub_message)  # fmt: skip


def record_start(
    user: str, server: str, labels: tuple[str, str], options: Mapping, seconds: float
) -> None:
    profile, size = labels
    hub_metrics.SPAWNS.labels(profile, "started").inc()
    hub_metrics.SPAWN_DURATION.labels(profile).observe(seconds)
    audit("server.start", actor=user, subject=user, server=server, profile=profile, size=size,
          options=dict(options), seconds=round(seconds, 3))  # fmt: skip


def record_failure(user: str, server: str, labels: tuple[str, str], error: BaseException) -> None:
    profile, _ = labels
    hub_metrics.SPAWNS.labels(profile, "failed").inc()
    reason = "cancelled" if not isinstance(error, Exception) else type(error).__name__
    audit("server.failed", actor=user, subject=user, result="failed", reason=reason,
          server=server, profile=profile)  # fmt: skip
