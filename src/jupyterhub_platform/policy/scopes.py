"""Check role scopes against JupyterHub's scope grammar when the policy loads, not at first login.

A typo in a scope (``admin:server!group=students``) would otherwise surface as a 409 in the
middle of some user's login. JupyterHub's own scope table is the reference; ``custom:`` scopes
are defined by the deployment (``JupyterHub.custom_scopes``), so only their shape is checked.
"""

from __future__ import annotations

import re

from jupyterhub.scopes import scope_definitions

FILTER_KINDS = ("user", "group", "server", "service")
_EXACT_FILTERS = ("user", "server", "service")  # "!user" alone: the owner's own
_CUSTOM_SCOPE = re.compile(r"custom:[a-z0-9][a-z0-9_\-]*(:[a-z0-9_\-]+)*")


def scope_problem(scope: object) -> str | None:
    """Why ``scope`` is not a valid JupyterHub scope, or None when it is."""
    if not isinstance(scope, str) or not scope:
        return "a scope must be a non-empty string"
    name, bang, filter_ = scope.partition("!")
    if name not in scope_definitions and not _CUSTOM_SCOPE.fullmatch(name):
        if name == "all":
            return "scope 'all' is called 'inherit' in JupyterHub"
        return f"unknown scope {name!r}"
    if not bang:
        return None
    kind, eq, value = filter_.partition("=")
    if kind not in FILTER_KINDS:
        return f"unknown filter {kind!r} in {scope!r} (one of: {', '.join(FILTER_KINDS)})"
    if not eq:
        return None if kind in _EXACT_FILTERS else f"filter !{kind} needs a value in {scope!r}"
    if not value:
        return f"empty filter value in {scope!r}"
    if kind == "server" and value.count("/") != 1:
        return f"a server filter is '!server=<user>/<server name>', got {scope!r}"
    return None
