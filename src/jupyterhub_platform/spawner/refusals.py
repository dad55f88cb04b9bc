"""Refuse a bad REST spawn request before JupyterHub starts a spawn, so it never counts as one.

JupyterHub counts every failed spawn towards ``Spawner.consecutive_failure_limit`` and exits when
the limit is reached (the chart sets 5). A request refused by the spawner's own checks
(``apply_user_options``) fails *inside* the spawn: on JupyterHub 5.5 each refusal counts, so five
malformed ``POST /hub/api/users/<me>/server`` bodies from any user stop the hub; 5.5 also stores
the refused body as the server's saved options first, and answers a list or string body with 500.

:class:`RefusingServerAPIHandler` is JupyterHub's own server API handler with one step added:
after JupyterHub's scope, pending and "already running" checks, and before
``spawn_single_user``, it asks the spawner (:meth:`ProfileSpawner.refuse_spawn_request`) whether
the options may start; a refusal is an ordinary 400/403 API error and no spawn exists to fail.
Authenticators register it through ``get_handlers``, whose routes JupyterHub matches before its
own (:class:`~jupyterhub_platform.auth.policy_bridge.PolicyBridge` does it for the platform's).
"""

from __future__ import annotations

from jupyterhub.apihandlers import users as users_api

from jupyterhub_platform.upstream import SERVER_API_HANDLER


class RefusingServerAPIHandler(SERVER_API_HANDLER):
    """``POST /api/users/<name>/server[s/<server>]`` that lets the spawner refuse first."""

    async def spawn_single_user(self, user, server_name="", *args, options=None, **kwargs):
        refuse = getattr(user.get_spawner(server_name), "refuse_spawn_request", None)
        if refuse is not None:
            refuse(options)
        return await super().spawn_single_user(user, server_name, *args, options=options, **kwargs)


def server_api_handlers() -> list[tuple[str, type]]:
    """JupyterHub's own routes for the server API, served by :class:`RefusingServerAPIHandler`."""
    return [
        (pattern, RefusingServerAPIHandler)
        for pattern, handler, *_ in users_api.default_handlers
        if handler is SERVER_API_HANDLER
    ]
