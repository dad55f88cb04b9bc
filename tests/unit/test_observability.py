"""The audit trail's schema and the hub's metric decisions (pure: no hub, no server)."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

import jsonschema
import pytest
from jupyter_events import EventLogger

from jupyterhub_platform.auth.error_pages import page_error
from jupyterhub_platform.auth.login_audit import login_outcome, policy_changes, reason_code
from jupyterhub_platform.observability.audit import (
    ACTIONS,
    SCHEMA,
    SCHEMA_ID,
    AuditError,
    audit_event,
    audit_line,
)
from jupyterhub_platform.observability.hub_metrics import (
    OTHER,
    RunningServer,
    running_counts,
    server_labels,
)
from jupyterhub_platform.observability.requests import other_user_request
from jupyterhub_platform.profiles.options import OptionError
from jupyterhub_platform.spawner.spawn_audit import refusal_reason

NOW = datetime(2026, 12, 3, 9, 30, 1, 250000, tzinfo=timezone.utc)


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_every_action_makes_an_event_the_schema_accepts(action):
    event = audit_event(action, actor="bob", subject="alice", now=NOW, profile="jupyterlab")
    jsonschema.validate(event, SCHEMA)
    assert event["time"] == "2026-12-03T09:30:01.250Z"
    assert json.loads(audit_line(event)) == event


def test_unknown_actions_and_results_are_programming_errors():
    with pytest.raises(AuditError, match="'server.explode'"):
        audit_event("server.explode", actor="a", subject="a")
    with pytest.raises(AuditError, match="'maybe'"):
        audit_event("login", actor="a", subject="a", result="maybe")


def test_the_schema_registers_with_jupyterhubs_event_log_and_validates_events():
    written = []

    class Capture(logging.Handler):
        def emit(self, record):
            written.append(record.msg)

    eventlog = EventLogger(handlers=[Capture()])
    eventlog.register_event_schema(SCHEMA)
    event = audit_event("login", actor="alice", subject="alice", authenticator="OIDC")
    eventlog.emit(schema_id=SCHEMA_ID, data=event)
    (recorded,) = written
    assert recorded["__schema__"] == SCHEMA_ID and recorded["action"] == "login"
    with pytest.raises(jsonschema.ValidationError):
        eventlog.emit(schema_id=SCHEMA_ID, data={**event, "result": "maybe"})


HUB = "/hub/"


@pytest.mark.parametrize(
    ("method", "path", "status", "owner", "expected"),
    [
        ("POST", "/hub/api/users/alice/server", 201, None, ("other_user.server", "alice", "ok", "start")),
        ("DELETE", "/hub/api/users/alice/servers/lab", 204, None, ("other_user.server", "alice", "ok", "stop")),
        ("POST", "/hub/spawn/alice/lab", 302, None, ("other_user.server", "alice", "ok", "start")),
        ("POST", "/hub/api/users/alice/tokens", 201, None, ("other_user.token", "alice", "ok", "create")),
        ("POST", "/hub/api/users/alice/tokens", 403, None, ("other_user.token", "alice", "refused", "create")),
        ("PATCH", "/hub/api/users/alice", 200, None, ("other_user.account", "alice", "ok", "modify")),
        ("GET", "/hub/api/oauth2/authorize", 302, "alice", ("other_user.server", "alice", "ok", "access")),
        ("POST", "/hub/api/oauth2/authorize", 302, "alice", ("other_user.server", "alice", "ok", "access")),
        ("GET", "/hub/api/oauth2/authorize", 403, "alice", ("other_user.server", "alice", "refused", "access")),
        ("GET", "/hub/api/oauth2/authorize", 200, "alice", None),  # the confirmation page
        ("GET", "/hub/api/users/a%40b.org/server", 200, None, None),  # reading is not acting
        ("POST", "/hub/api/users/bob/server", 201, None, None),  # bob's own
        ("GET", "/hub/api/oauth2/authorize", 302, "bob", None),
        ("GET", "/hub/api/oauth2/authorize", 302, None, None),  # a service's client
        ("POST", "/hub/api/users/alice/server", 404, None, None),
        ("POST", "/user/alice/api/kernels", 201, None, None),
    ],
)  # fmt: skip
def test_requests_on_another_users_things(method, path, status, owner, expected):
    found = other_user_request(method, path, status, "bob", HUB, owner)
    if expected is None:
        assert found is None
    else:
        assert (found.action, found.subject, found.result, found.details["what"]) == expected


def test_escaped_user_names_are_unescaped():
    found = other_user_request("DELETE", "/hub/api/users/a%40b.org/server", 204, "bob", HUB)
    assert found.subject == "a@b.org"


def test_labels_take_only_configured_values():
    profiles = {"jupyterlab": ["small", "large"], "vscode": ["small"]}
    assert server_labels({"profile": "jupyterlab", "size": "large"}, profiles) == (
        "jupyterlab", "large")  # fmt: skip
    assert server_labels({"profile": "vscode", "size": "large"}, profiles) == ("vscode", OTHER)
    assert server_labels({"profile": "x" * 500, "size": "small"}, profiles) == (OTHER, OTHER)
    assert server_labels(None, profiles) == (OTHER, OTHER)


def test_running_servers_are_counted_by_size_and_once_in_each_group():
    servers = [
        RunningServer("jupyterlab", "small", ("data-team", "researchers")),
        RunningServer("jupyterlab", "small", ("researchers",)),
        RunningServer("vscode", "large", ()),
    ]
    by_size, by_group = running_counts(servers)
    assert by_size == {("jupyterlab", "small"): 2, ("vscode", "large"): 1}
    assert by_group == {("data-team", "jupyterlab"): 1, ("researchers", "jupyterlab"): 2}


def test_policy_changes_of_a_login():
    admin_model = {"name": "a", "admin": True, "roles": [{"name": "user"}, {"name": "admin"}]}
    assert policy_changes(False, [], admin_model) == [("admin.granted", {})]
    assert policy_changes(True, ["user", "admin"], admin_model) == []
    plain = {"name": "a", "admin": False, "roles": [{"name": "user"}]}
    assert policy_changes(False, [], plain) == []  # a first login with the default role
    assert policy_changes(True, ["user", "admin"], plain) == [("admin.revoked", {})]
    analyst = {"name": "a", "admin": False, "roles": [{"name": "user"}, {"name": "analyst"}]}
    assert policy_changes(False, ["user"], analyst) == [
        ("roles.changed", {"added": ["analyst"], "removed": []})]  # fmt: skip
    assert policy_changes(False, ["user", "analyst"], plain) == [
        ("roles.changed", {"added": [], "removed": ["analyst"]})]  # fmt: skip


def test_login_outcomes_name_a_reason():
    assert login_outcome(None) == ("ok", "")
    assert login_outcome(page_error(403, "no", "no_allowed_group")) == (
        "refused",
        "no_allowed_group",
    )
    assert login_outcome(page_error(503, "down")) == ("failed", "unavailable")
    assert reason_code("token expired") == "token_expired"
    assert reason_code("get-identity unavailable") == "get_identity_unavailable"


def test_spawn_refusal_reasons():
    assert refusal_reason(OptionError(400, "bad")) == "invalid_options"
    assert refusal_reason(OptionError(403, "not yours")) == "not_entitled"
    assert refusal_reason(OptionError(403, "over", "quota")) == "quota"
