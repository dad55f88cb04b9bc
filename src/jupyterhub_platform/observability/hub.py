"""Observability inside the hub process: the audit trail through JupyterHub's event log, the
request log that sees one user acting on another's things, and the running-servers collector.

:func:`install` runs once when the hub builds its handlers (the platform authenticators call it
from ``get_handlers``: after JupyterHub merged its tornado settings, before it creates the web
application from them).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from jupyterhub import orm

from . import hub_metrics
from .audit import SCHEMA, SCHEMA_ID, add_sink, audit
from .hub_metrics import RunningServer, register_running_servers, server_labels
from .requests import other_user_request

log = logging.getLogger(__name__)


def install(app, group_names: Callable[[], Iterable[str]]) -> None:
    """Wire the hub ``app``; ``group_names``: the groups configuration names (metric labels)."""
    eventlog = getattr(app, "eventlog", None)
    if eventlog is not None:
        if SCHEMA_ID not in eventlog.schemas.schema_ids:
            eventlog.register_event_schema(SCHEMA)
        add_sink(_EventLogSink(eventlog))
    settings = app.tornado_settings
    inner = settings.get("log_function")
    if inner is not None and not isinstance(inner, AuditedRequestLog):
        settings["log_function"] = AuditedRequestLog(inner, app.hub.base_url)
    register_running_servers(lambda: running_servers(app.users.values(), group_names()))


class _EventLogSink:
    """Hands events to JupyterHub's event log; equal for the same log (added once)."""

    def __init__(self, eventlog):
        self.eventlog = eventlog

    def __eq__(self, other):
        return isinstance(other, _EventLogSink) and other.eventlog is self.eventlog

    __hash__ = None

    def __call__(self, event) -> None:
        self.eventlog.emit(schema_id=SCHEMA_ID, data=dict(event))


class AuditedRequestLog:
    """JupyterHub's ``log_function``, then an audit event for a request on another user's
    server, tokens or account. Requests by services are left to the services' own events."""

    def __init__(self, inner: Callable, hub_prefix: str):
        self.inner = inner
        self.hub_prefix = hub_prefix

    def __call__(self, handler) -> None:
        self.inner(handler)
        try:
            self._audit(handler)
        except Exception:  # the request is served; never let the audit break the log
            log.exception("audit of a request failed")

    def _audit(self, handler) -> None:
        actor = getattr(handler, "_jupyterhub_user", None)
        if actor is None or getattr(actor, "kind", "user") != "user":
            return
        request = handler.request
        owner = None
        if request.path.rstrip("/").endswith("api/oauth2/authorize"):
            owner = _oauth_owner(handler)
        found = other_user_request(
            request.method, request.path, handler.get_status(), actor.name, self.hub_prefix, owner
        )
        if found is None:
            return
        hub_metrics.OTHER_USER_ACTIONS.labels(found.action, found.result).inc()
        audit(found.action, actor=actor.name, subject=found.subject, result=found.result,
              reason="" if found.result == "ok" else "forbidden",
              admin=bool(getattr(actor, "admin", False)), **found.details)  # fmt: skip


def _oauth_owner(handler) -> str | None:
    """The user whose server an OAuth authorize request is for (None: a service's client)."""
    client_id = handler.get_argument("client_id", None)
    if not client_id:
        return None
    client = handler.db.query(orm.OAuthClient).filter_by(identifier=client_id).first()
    spawner = getattr(client, "spawner", None)
    return spawner.user.name if spawner is not None and spawner.user is not None else None


def running_servers(users: Iterable, groups: Iterable[str]) -> list[RunningServer]:
    """Every ready server of the hub's ``users``, with bounded labels."""
    known_groups = set(groups)
    found = []
    for user in users:
        names = tuple(sorted(g.name for g in user.groups if g.name in known_groups))
        for spawner in list(user.spawners.values()):
            if not spawner.ready:
                continue
            profiles = getattr(spawner, "metric_profiles", None)
            profile, size = server_labels(spawner.user_options, profiles() if profiles else {})
            found.append(RunningServer(profile, size, names))
    return found
