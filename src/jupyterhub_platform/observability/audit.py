"""The audit trail: one JSON line per security-relevant action, with the same fields wherever it
happens (hub, culler, backup, credentials), never a secret.

Each event is an object ``{"audit": 1, "time", "action", "actor", "subject", "result",
"reason", "details"}``; ``audit`` is the schema version (a change that removes or renames a field
raises it). It is written as the whole message of the ``jupyterhub_platform.audit`` logger,
which by default prints it, alone on its line, to the process's stderr: the hub's log stream,
which hub-managed services share. A site routes that logger elsewhere with ordinary logging
configuration. In the hub the event also goes through JupyterHub's event log under
:data:`SCHEMA_ID`, so ``c.EventLogger.handlers`` receive it too (:mod:`.hub`).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Mapping
from datetime import datetime, timezone

VERSION = 1
SCHEMA_ID = "https://jupyterhub-platform.readthedocs.io/schemas/audit"
AUDIT_LOGGER = "jupyterhub_platform.audit"

ACTIONS: Mapping[str, str] = {
    "login": "A user logged in (result ok) or a login was refused or failed.",
    "admin.granted": "The group policy made a user admin (at login or refresh).",
    "admin.revoked": "The group policy took a user's admin rights away.",
    "roles.changed": "The group policy changed a user's JupyterHub roles.",
    "server.start": "A server started (details: profile, size, options, seconds).",
    "server.refused": "A spawn was refused before it began (reason: invalid_options, "
    "not_entitled, quota).",
    "server.failed": "A spawn began and failed (details: profile).",
    "server.cull": "The culler stopped (or in dry-run would stop) an idle or old server.",
    "other_user.server": "A user reached another user's server (through the hub's OAuth) or "
    "started or stopped it.",
    "other_user.token": "A user created an API token for another user (impersonation).",
    "other_user.account": "A user changed or deleted another user's account.",
    "backup.run": "The backup service started a backup of a user's home.",
    "backup.restore": "A restore of a user's files was started.",
    "credential.issue": "A credential set was issued to a user's server, or refused.",
}
RESULTS = ("ok", "refused", "failed", "dry_run")

SCHEMA: dict = {
    "$id": SCHEMA_ID,
    "version": str(VERSION),
    "title": "jupyterhub-platform audit event",
    "description": "One security-relevant action: who did what to whom, with what outcome.",
    "type": "object",
    "required": ["audit", "time", "action", "actor", "subject", "result", "reason", "details"],
    "additionalProperties": False,
    "properties": {
        "audit": {"const": VERSION, "description": "The schema version."},
        "time": {"type": "string", "description": "When, RFC 3339 in UTC."},
        "action": {"enum": sorted(ACTIONS), "description": "What happened (docs list each)."},
        "actor": {
            "type": "string",
            "description": "Who did it: a hub user, a service's name, or '' when unknown "
            "(a refused login before the user is known).",
        },
        "subject": {"type": "string", "description": "The user it was done to or for."},
        "result": {"enum": list(RESULTS), "description": "The outcome."},
        "reason": {"type": "string", "description": "Why, as a short word; '' when ok."},
        "details": {"type": "object", "description": "Action-specific fields, never a secret."},
    },
}
"""JSON Schema of an event; also registered with JupyterHub's event log (jupyter_events)."""

log = logging.getLogger(AUDIT_LOGGER)


class AuditError(ValueError):
    """An event that does not fit the schema: a programming error, never user input."""


def audit_event(
    action: str,
    *,
    actor: str,
    subject: str,
    result: str = "ok",
    reason: str = "",
    now: datetime | None = None,
    **details,
) -> dict:
    """The event as the schema describes it; ``details`` must be JSON values."""
    if action not in ACTIONS:
        raise AuditError(f"audit action {action!r} is not one of {sorted(ACTIONS)}")
    if result not in RESULTS:
        raise AuditError(f"audit result {result!r} is not one of {RESULTS}")
    when = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    return {
        "audit": VERSION,
        "time": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "action": action,
        "actor": actor or "",
        "subject": subject or "",
        "result": result,
        "reason": reason or "",
        "details": details,
    }


def audit_line(event: Mapping) -> str:
    return json.dumps(event, sort_keys=True, separators=(",", ":"), default=str)


_sinks: list = []


def add_sink(sink) -> None:
    """Also hand every event to ``sink(event)`` (the hub's event log); never twice the same."""
    if sink not in _sinks:
        _sinks.append(sink)


def emit(event: Mapping) -> None:
    _ensure_handler()
    log.info(audit_line(event))
    for sink in list(_sinks):
        sink(event)


def audit(action: str, **fields) -> dict:
    """Write one event (see :func:`audit_event`); returns it."""
    event = audit_event(action, **fields)
    emit(event)
    return event


def _ensure_handler() -> None:
    """The event alone on a line of stderr, unless the site configured the logger itself."""
    if log.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False  # a service's root handler would print it a second time, prefixed
