"""The JupyterHub and KubeSpawner internals this package relies on, in one place.

Public APIs do not cover everything the platform needs (refusing a spawn before it counts as a
failure, telling cookie from token requests in ``refresh_user``, applying one chosen profile).
Each private name used anywhere in the package is listed in :data:`INTERNALS`;
``tests/unit/test_upstream_internals.py`` checks every entry against the installed JupyterHub and
KubeSpawner, so a release that renames or rewires one fails that test by name instead of
breaking a hub at run time.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass

from jupyterhub.apihandlers.users import UserServerAPIHandler
from jupyterhub.handlers.pages import SpawnHandler

SERVER_API_HANDLER = UserServerAPIHandler
"""JupyterHub's ``/api/users/<name>/server`` handler (not part of JupyterHub's public API)."""
SPAWN_FORM_HANDLER = SpawnHandler
"""JupyterHub's ``/spawn[/<user>[/<server>]]`` form handler (not part of its public API)."""


@dataclass(frozen=True)
class Internal:
    """``owner.name`` must exist; when ``source_contains`` is set its source must contain it."""

    owner: str  # "package.module" or "package.module:Class"
    name: str
    used_by: str
    source_contains: str = ""

    def problem(self) -> str | None:
        """Why this internal is not as the package expects, or None."""
        module_name, _, class_name = self.owner.partition(":")
        try:
            owner = importlib.import_module(module_name)
        except ImportError as exc:
            return f"{self}: cannot import {module_name} ({exc})"
        if class_name:
            owner = getattr(owner, class_name, None)
            if owner is None:
                return f"{self}: {module_name} has no {class_name}"
        value = inspect.getattr_static(owner, self.name, None)
        if value is None:
            return f"{self}: missing"
        if isinstance(value, property):
            value = value.fget
        if self.source_contains and self.source_contains not in inspect.getsource(value):
            return f"{self}: its source no longer contains {self.source_contains!r}"
        return None

    def __str__(self) -> str:
        return f"{self.owner}.{self.name} (used by {self.used_by})"


INTERNALS = (
    # Refusing REST spawn requests before the spawn (spawner/refusals.py)
    Internal("jupyterhub.apihandlers.users", "default_handlers", "spawner/refusals.py: its routes"),
    Internal(
        "jupyterhub.apihandlers.users:UserServerAPIHandler",
        "post",
        "spawner/refusals.py: post() ends in spawn_single_user(..., options=...)",
        "options=options",
    ),
    Internal(
        "jupyterhub.handlers.base:BaseHandler",
        "spawn_single_user",
        "spawner/refusals.py: overridden to refuse first",
        "options=None",
    ),
    Internal(
        "jupyterhub.handlers.pages",
        "default_handlers",
        "spawner/refusals.py: the spawn form's routes",
    ),
    Internal(
        "jupyterhub.handlers.pages:SpawnHandler",
        "_wrap_spawn_single_user",
        "spawner/refusals.py: the form's spawn goes through the handler's spawn_single_user",
        "self.spawn_single_user(user, server_name",
    ),
    # Cookie or token request, in refresh_user (auth/policy_bridge.py, auth/cloudflare.py)
    Internal(
        "jupyterhub.handlers.base:BaseHandler",
        "get_current_user_token",
        "auth: handler._token_authenticated tells token requests from cookie ones",
        "self._token_authenticated = True",
    ),
    Internal(
        "jupyterhub.handlers.base:BaseHandler",
        "get_current_user",
        "auth/cloudflare.py: handler._jupyterhub_user is the requesting user",
        "self._jupyterhub_user",
    ),
    Internal(
        "jupyterhub.handlers.base:BaseHandler",
        "get_current_user_token",
        "auth/cloudflare.py: server API tokens are the ones noted 'Server at ...'",
        'startswith("Server at ")',
    ),
    Internal("jupyterhub.handlers.base:BaseHandler", "get_token", "auth/cloudflare.py"),
    # Ending a browser session like the logout does (auth/sessions.py)
    Internal("jupyterhub.handlers.base", "SESSION_COOKIE_NAME", "auth/sessions.py"),
    Internal(
        "jupyterhub.handlers.base:BaseHandler",
        "clear_login_cookie",
        "auth/sessions.py: the logout revokes the session id's tokens",
        "session_id=session_id",
    ),
    Internal(
        "jupyterhub.services.auth:HubOAuth",
        "cookie_name",
        "auth/sessions.py: a server's cookie is named by its OAuth client id",
        "self.oauth_client_id",
    ),
    # The OIDC nonce cookie, encrypted like oauthenticator's state cookie (auth/oidc.py)
    Internal(
        "jupyterhub.handlers.base:BaseHandler",
        "_set_cookie",
        "auth/oidc.py: the nonce cookie (encrypted by default)",
        "encrypted=True",
    ),
    # Every class the hub loads from entry points, for `check` (chart/values_check.py)
    Internal("jupyterhub.app:JupyterHub", "_load_classes", "chart/values_check.py"),
    # Applying one chosen profile (spawner/profile_spawner.py: load_user_options)
    Internal(
        "kubespawner:KubeSpawner",
        "_load_profile",
        "spawner/profile_spawner.py: applies the chosen entry's overrides",
        "def _load_profile(self, slug, profile_list)",
    ),
    Internal(
        "kubespawner:KubeSpawner",
        "_get_initialized_profile_list",
        "spawner/profile_spawner.py: initialises the one chosen entry",
        "def _get_initialized_profile_list(self, profile_list",
    ),
    Internal(
        "kubespawner:KubeSpawner",
        "load_user_options",
        "spawner/profile_spawner.py: replaced whole; KubeSpawner's applies profiles the same way",
        "self._load_profile(",
    ),
    # Failing fast while the pod starts (spawner/profile_spawner.py: _start, is_pod_running)
    Internal(
        "kubespawner:KubeSpawner",
        "_start",
        "spawner/profile_spawner.py: wrapped; its wait for the pod polls is_pod_running",
        "self.is_pod_running(",
    ),
    Internal("jupyterhub.spawner:Spawner", "_log_name", "spawner/profile_spawner.py: log lines"),
    # Credential injection (spawner/profile_spawner.py: prepare_credentials and the Secret)
    Internal(
        "kubespawner:KubeSpawner",
        "_make_create_pod_request",
        "spawner/profile_spawner.py: wrapped; the Secret is created once it returns True",
        "return True",
    ),
    Internal(
        "kubespawner:KubeSpawner",
        "_start",
        "spawner/profile_spawner.py: profile first, pods watched, then the pod is created",
        "partial(self._make_create_pod_request, pod",
    ),
    Internal(
        "kubespawner:KubeSpawner",
        "get_pod_manifest",
        "spawner/profile_spawner.py: the pod's env is get_env() (secretKeyRef dicts)",
        "env=self.get_env()",
    ),
    Internal(
        "kubespawner.objects",
        "make_pod",
        "spawner/profile_spawner.py: dict env values become EnvVars (valueFrom)",
        "get_k8s_model(V1EnvVar, env)",
    ),
)

PRIVATE_NAMES = frozenset(i.name for i in INTERNALS if i.name.startswith("_"))
"""The upstream private names the package may use (checked against its source by a test)."""


def problems() -> list[str]:
    """Every listed internal that the installed JupyterHub or KubeSpawner does not provide."""
    return [p for p in (i.problem() for i in INTERNALS) if p]
