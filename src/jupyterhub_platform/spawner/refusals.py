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

The spawn form's handler gets the same step, for quotas: the form's options were validated by
``options_from_form`` already, and the quota check needs the hub's users. A refusal raised there
is shown on the form with its status (403), as JupyterHub shows any HTTPError of a spawn.

The refusal may return a quota reservation (:mod:`.quota_gate`), held until JupyterHub's
``spawn_single_user`` returns or fails, so concurrent spawns cannot race past a quota.
"""

from __future__ import annotations

from jupyterhub.apihandlers import users as users_api
from jupyterhub.handlers import pages

from jupyterhub_platform.upstream import SERVER_API_HANDLER, SPAWN_FORM_HANDLER

from .quota_gate import reserved


class RefuseFirst:
    """Handler mixin: ask the spawner to refuse (and reserve quota) before the spawn starts."""

    async def spawn_single_user(self, user, server_name="", *args, options=None, **kwargs):
        refuse = getattr(user.get_spawner(server_name), "refuse_spawn_request", None)
        reservation = refuse(options, self.users) if refuse is not None else None
        with reserved(reservation):
            return await super().spawn_single_user(
                user, server_name, *args, options=options, **kwargs
            )


class RefusingServerAPIHandler(RefuseFirst, SERVER_API_HANDLER):
    """``POST /api/users/<name>/server[s/<server>]`` that lets the spawner refuse first."""


class RefusingSpawnHandler(RefuseFirst, SPAWN_FORM_HANDLER):
    """``/spawn[/<user>[/<server>]]`` (the form) that lets the spawner refuse first."""


def server_api_handlers() -> list[tuple[str, type]]:
    """JupyterHub's own routes for the server API and the spawn form, served by the refusing
    handlers above."""
    ours = {SERVER_API_HANDLER: RefusingServerAPIHandler, SPAWN_FORM_HANDLER: RefusingSpawnHandler}
    return [
        (pattern, ours[handler])
        for pattern, handler, *_ in [*users_api.default_handlers, *pages.default_handlers]
        if handler in ours
    ]
