"""Requests by one user on another user's things, found in the hub's request log.

JupyterHub's event log records only successful starts and stops, with no actor. Every request
the hub serves passes its ``log_function`` with the authenticated user and the status, which is
where an admin opening alice's server, starting or stopping it, or creating a token in her name
shows up; :func:`other_user_request` decides from the method, path and status alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

# under the hub's prefix (``/hub/``)
_API_SERVER = re.compile(r"^api/users/(?P<user>[^/]+)/servers?(?:/(?P<server>[^/]*))?/?$")
_API_TOKENS = re.compile(r"^api/users/(?P<user>[^/]+)/tokens(?:/[^/]+)?/?$")
_API_USER = re.compile(r"^api/users/(?P<user>[^/]+)/?$")
_SPAWN = re.compile(r"^spawn/(?P<user>[^/]+)(?:/(?P<server>[^/]*))?/?$")
_AUTHORIZE = "api/oauth2/authorize"


@dataclass(frozen=True)
class OtherUserRequest:
    action: str  # an audit action (other_user.server, .token, .account)
    subject: str
    result: str  # ok or refused
    details: dict


def other_user_request(
    method: str, path: str, status: int, actor: str, hub_prefix: str, oauth_owner: str | None = None
) -> OtherUserRequest | None:
    """The audit-worthy meaning of a request by ``actor``, or None.

    ``path`` is the request's path; ``oauth_owner`` the user whose server an OAuth authorize
    request is for (looked up from its ``client_id`` by the caller): access is granted when it
    redirects back to the server, at once or after the confirmation page. Successes (< 400) and
    refusals (401, 403) count; a 404 or a client error says nothing about another user.
    """
    if not actor or not path.startswith(hub_prefix):
        return None
    rest = path[len(hub_prefix) :]
    if rest.rstrip("/") == _AUTHORIZE and status in (200, 201):
        return None  # the confirmation page: nothing is granted until it is submitted
    if status < 400:
        result = "ok"
    elif status in (401, 403):
        result = "refused"
    else:
        return None
    rest = path[len(hub_prefix) :]
    found = _match(method.upper(), rest, oauth_owner)
    if found is None:
        return None
    action, subject, details = found
    if subject == actor:
        return None
    return OtherUserRequest(action, subject, result, {"method": method.upper(), **details})


def _match(method: str, rest: str, oauth_owner: str | None):
    if rest.rstrip("/") == _AUTHORIZE:
        if oauth_owner is None:
            return None
        return "other_user.server", oauth_owner, {"what": "access"}
    if m := _API_SERVER.match(rest):
        what = {"POST": "start", "DELETE": "stop"}.get(method)
        if what:
            return "other_user.server", unquote(m["user"]), {
                "what": what, "server": unquote(m["server"] or "")}  # fmt: skip
    if (m := _SPAWN.match(rest)) and method == "POST":
        return "other_user.server", unquote(m["user"]), {
            "what": "start", "server": unquote(m["server"] or "")}  # fmt: skip
    if (m := _API_TOKENS.match(rest)) and method in ("POST", "DELETE"):
        what = "create" if method == "POST" else "revoke"
        return "other_user.token", unquote(m["user"]), {"what": what}
    if (m := _API_USER.match(rest)) and method in ("PATCH", "DELETE"):
        what = "modify" if method == "PATCH" else "delete"
        return "other_user.account", unquote(m["user"]), {"what": what}
    return None
