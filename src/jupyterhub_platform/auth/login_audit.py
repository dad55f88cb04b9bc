"""What logins and the group policy's decisions leave in the metrics and the audit trail.

Decisions are pure (:func:`login_outcome`, :func:`policy_changes`); :func:`record_login` and
:func:`record_changes` write them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from jupyterhub_platform.observability import hub_metrics
from jupyterhub_platform.observability.audit import audit

REASONS_BY_STATUS = {400: "bad_request", 401: "refused", 403: "refused", 503: "unavailable"}
"""The reason of a refusal raised without one (every page_error of ours names its own)."""


def reason_code(reason: str) -> str:
    """A fixed reason phrase as one word: ``"token expired"`` → ``token_expired``."""
    return "_".join(reason.lower().replace("-", " ").split())


def login_outcome(error: BaseException | None) -> tuple[str, str]:
    """(result, reason) of a login that raised ``error`` (None: it succeeded)."""
    if error is None:
        return "ok", ""
    status = getattr(error, "status_code", 500)
    reason = getattr(error, "audit_reason", None) or REASONS_BY_STATUS.get(status, "error")
    return ("failed" if status >= 500 else "refused"), reason


def record_login(authenticator: str, user: str, error: BaseException | None) -> None:
    result, reason = login_outcome(error)
    hub_metrics.LOGINS.labels(authenticator, result, reason).inc()
    audit("login", actor=user, subject=user, result=result, reason=reason,
          authenticator=authenticator)  # fmt: skip


def policy_changes(
    was_admin: bool, had_roles: Iterable[str], model: Mapping
) -> list[tuple[str, dict]]:
    """The audit actions an auth ``model`` makes to a user who was admin or not and had
    ``had_roles`` (a new user: False and none). The ``user`` role everyone has is no change."""
    changes: list[tuple[str, dict]] = []
    admin = bool(model.get("admin"))
    if admin != was_admin:
        changes.append(("admin.granted" if admin else "admin.revoked", {}))
    if "roles" in model:
        before = set(had_roles) - {"admin"}
        after = {r["name"] for r in model["roles"]} - {"admin"}
        if before - {"user"} or after - {"user"}:
            if before != after:
                changes.append(("roles.changed", {
                    "added": sorted(after - before), "removed": sorted(before - after)}))  # fmt: skip
    return changes


def record_changes(user, model: Mapping, via: str) -> None:
    """Audit what ``model`` changes for the hub ``user`` (None: a first login)."""
    was_admin = bool(getattr(user, "admin", False))
    had = [r.name for r in getattr(user, "roles", None) or []]
    groups = sorted(model.get("groups") or [])
    for action, details in policy_changes(was_admin, had, model):
        hub_metrics.POLICY_CHANGES.labels(action.replace(".", "_")).inc()
        audit(action, actor="policy", subject=model["name"], via=via, groups=groups, **details)
