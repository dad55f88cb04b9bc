"""HubOAuth pages and JSON APIs for services, with scope checks.

:class:`UserHandler` needs a hub login (browser: the OAuth dance; API: a hub token in
``Authorization``) and the service's access scope; :meth:`UserHandler.require` adds checks such
as "admin only". :func:`oauth_settings` and :func:`oauth_routes` wire HubOAuth into the app.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from jupyterhub.services.auth import HubOAuth, HubOAuthCallbackHandler, HubOAuthenticated
from tornado import httputil, web
from tornado.template import Loader

TEMPLATES = Loader(str(Path(__file__).parent.parent))
"""Every service's page templates, ``<service>/templates/<page>.html``; each extends
``common/templates/page.html`` (one look for all the services' pages)."""


def oauth_settings(service_prefix: str, api_url: str, api_token: str) -> dict:
    """tornado settings for HubOAuth: the hub_auth object and a fresh cookie secret.

    ``api_url`` and ``api_token``: the service's (``ServiceApp.api_url``/``api_token``).
    The secret only signs the OAuth state and the service's session cookie; a restart logs
    users out of the service page, never out of the hub.
    """
    # the singleton: HubOAuthCallbackHandler finds it by HubOAuth.instance() (JupyterHub 6 keeps
    # the PKCE code verifier of a login there)
    auth = HubOAuth.instance(
        api_url=api_url,
        api_token=api_token,
        cache_max_age=60,
        oauth_redirect_uri=os.environ.get("JUPYTERHUB_OAUTH_CALLBACK_URL")
        or service_prefix.rstrip("/") + "/oauth_callback",
    )
    return {"hub_auth": auth, "cookie_secret": secrets.token_bytes(32)}


def oauth_routes() -> list[tuple]:
    """Routes (relative to the service prefix) HubOAuth needs."""
    return [("oauth_callback", HubOAuthCallbackHandler)]


class UserHandler(HubOAuthenticated, web.RequestHandler):
    """A page or API for logged-in hub users holding the service's access scope."""

    def prepare(self) -> None:
        self.hub_auth = self.settings["hub_auth"]

    @property
    def user(self) -> dict:
        """The hub's model of the current user (``name``, ``admin``, ``groups``, ``scopes``)."""
        return self.current_user

    def is_admin(self) -> bool:
        """Hub admins, and users whose token has admin:servers (every server), are admins here."""
        return bool(self.user.get("admin")) or "admin:servers" in self.user.get("scopes", [])

    def require_admin(self) -> None:
        if not self.is_admin():
            raise web.HTTPError(403, "admins only")

    def write_json(self, data: object) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(data))

    def write_error(self, status_code: int, **kwargs) -> None:
        """Errors as JSON for APIs, short text for pages: never a traceback."""
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = exc.log_message if isinstance(exc, web.HTTPError) and exc.log_message else ""
        reason = httputil.responses.get(status_code, "Error")
        if self.request.headers.get("Accept", "").startswith("application/json"):
            self.write_json({"status": status_code, "message": message or reason})
        else:
            self.set_header("Content-Type", "text/plain")
            self.finish(f"{status_code} {reason}: {message}".rstrip(": "))
