"""This server's culling deadline, for the JupyterLab warning (labextension/, docs/culler.md).

The browser cannot ask the culler itself: JupyterHub refuses cookie-authenticated reads from a
page's scripts across its paths (its XSRF rule), so that one user's server page cannot read
another service as the user. The server asks instead, with its own ``$JUPYTERHUB_API_TOKEN``
(the hub's ``server`` role must hold ``access:services!service=culler``; chart-values grant it),
at ``$JUPYTERHUB_PLATFORM_CULLER_URL``, and answers only about itself.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError

CULLER_URL_ENV = "JUPYTERHUB_PLATFORM_CULLER_URL"
ROUTE = "jupyterhub-platform/cull-deadline"
TIMEOUT = 10.0  # seconds for the culler to answer


def own_deadline(listing: Mapping, user: str, server: str) -> dict:
    """The culler's ``api/servers`` answer cut down to one server: ``now``, ``warn_before`` and
    that server's entry (``None``: the culler does not know it, e.g. it is not running yet)."""
    entries = listing.get("servers") if isinstance(listing.get("servers"), list) else []
    mine = next(
        (
            e
            for e in entries
            if isinstance(e, Mapping) and (e.get("user"), e.get("server")) == (user, server)
        ),
        None,
    )
    return {"now": listing.get("now"), "warn_before": listing.get("warn_before"), "server": mine}


class CullDeadlineHandler(APIHandler):
    """``GET <base_url>jupyterhub-platform/cull-deadline``: :func:`own_deadline` of this server;
    ``{"server": null}`` when no culler is configured or it cannot be asked."""

    auth_resource = "api"

    @web.authenticated
    @authorized
    async def get(self) -> None:
        culler, token = os.environ.get(CULLER_URL_ENV), os.environ.get("JUPYTERHUB_API_TOKEN")
        answer: dict = {"server": None}
        if culler and token:
            try:
                resp = await AsyncHTTPClient().fetch(
                    culler.rstrip("/") + "/api/servers",
                    headers={"Authorization": f"token {token}", "Accept": "application/json"},
                    request_timeout=TIMEOUT,
                )
                answer = own_deadline(
                    json.loads(resp.body),
                    os.environ.get("JUPYTERHUB_USER", ""),
                    os.environ.get("JUPYTERHUB_SERVER_NAME", ""),
                )
            except (HTTPClientError, OSError, ValueError) as exc:
                self.log.warning("cull deadline: the culler at %s did not answer: %s", culler, exc)
        self.finish(json.dumps(answer))


def install(web_app) -> None:
    base_url = web_app.settings.get("base_url", "/")
    web_app.add_handlers(".*$", [(base_url.rstrip("/") + "/" + ROUTE, CullDeadlineHandler)])
