"""The audit trail: one JSON line per issuance or refusal, on a logger of its own (a site routes
it to its audit store). Never a value: only who, which set, the outcome and the expiry."""

from __future__ import annotations

import json
import logging

AUDIT_LOGGER = "jupyterhub_platform.credentials.audit"
log = logging.getLogger(AUDIT_LOGGER)


def audit_line(
    *,
    user: str,
    set_name: str,
    provider: str,
    result: str,
    reason: str = "",
    expires_at: float | None = None,
    via: str = "api",
) -> str:
    """``result``: issued, refused (policy or identity) or failed (the provider);
    ``via``: api (a workspace's request) or renewal (the service's loop)."""
    return json.dumps(
        {
            "user": user,
            "set": set_name,
            "provider": provider,
            "result": result,
            "reason": reason,
            "expires_at": expires_at,
            "via": via,
        },
        sort_keys=True,
    )


def audit(**fields) -> None:
    log.info(audit_line(**fields))
