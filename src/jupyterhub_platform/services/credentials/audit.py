"""Credential issuance in the platform's audit trail (``credential.issue`` events): who, which
set and provider, the outcome and the expiry — never a value."""

from __future__ import annotations

from jupyterhub_platform.observability.audit import audit_event, emit

RESULTS = {"issued": "ok", "refused": "refused", "failed": "failed"}


def credential_event(
    *,
    user: str,
    set_name: str,
    provider: str,
    result: str,
    reason: str = "",
    expires_at: float | None = None,
    via: str = "api",
) -> dict:
    """``result``: issued, refused (policy or identity) or failed (the provider);
    ``via``: api (a workspace's request), spawn (the hub) or renewal (the service's loop)."""
    return audit_event(
        "credential.issue", actor=user, subject=user, result=RESULTS[result], reason=reason,
        set=set_name, provider=provider, expires_at=expires_at, via=via,
    )  # fmt: skip


def audit(**fields) -> None:
    emit(credential_event(**fields))
