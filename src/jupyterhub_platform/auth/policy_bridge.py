"""The part every platform authenticator shares: identity-provider groups -> the group policy.

An authenticator that feeds the policy only has to find the user's name and raw groups; this base
normalises the groups, resolves them against the policy and writes the answer into the auth model
(``groups`` for ``manage_groups``, ``admin``, ``roles`` for ``manage_roles``), refuses users in
no allowed group with a page that says so, and hands the policy's roles to
``load_managed_roles``. JupyterHub's own allow/admin lists are refused at start-up: two sources
of truth would let one silently override the other.

The hub creates its authenticator at start-up but spawners only when users spawn, so this is
also where a bad policy or profile file stops the hub, with messages naming file and field.
It is a :class:`PlatformPolicy` too, which makes ``c.PlatformPolicy`` a section the hub knows
(``jupyterhub --help-all`` lists it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from jupyterhub.auth import Authenticator
from traitlets import List, Unicode, Union, default

from jupyterhub_platform.policy import Entitlements, PlatformPolicy, Policy, PolicyError
from jupyterhub_platform.spawner.quota_api import quota_api_handlers
from jupyterhub_platform.spawner.refusals import server_api_handlers

from .error_pages import page_error
from .login_audit import record_changes, record_login

ENTITLEMENTS_KEY = "entitlements"
"""Where the auth model carries the policy's decision from ``authenticate`` to ``check_allowed``."""


def claim_at(claims: Mapping, path: Sequence[str]) -> object:
    """The value at ``path`` inside nested ``claims`` (None when any step is missing)."""
    value: object = claims
    for step in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(step)
    return value


def claim_paths(
    entries: Iterable[str | Sequence[str]], client_id: str = ""
) -> list[tuple[str, ...]]:
    """Claim settings (``"a.b"`` or ``["a", "b.c"]``) as key paths, ``{client_id}`` filled in."""
    paths = []
    for entry in entries:
        keys = entry.split(".") if isinstance(entry, str) else list(entry)
        paths.append(tuple(k.replace("{client_id}", client_id) for k in keys))
    return paths


def groups_from_claims(claims: Mapping, paths: Iterable[Sequence[str]]) -> list[str]:
    """Every group found at any of ``paths``; a single string counts as one group."""
    found: list[str] = []
    for path in paths:
        value = claim_at(claims, path)
        if isinstance(value, str):
            value = [value]
        if isinstance(value, list):
            found.extend(v for v in value if isinstance(v, str) and v)
    return sorted(set(found))


class PolicyBridge(Authenticator, PlatformPolicy):
    """Base for authenticators whose users' rights come from the platform group policy."""

    groups_claim = List(
        Union([Unicode(), List(Unicode())]),
        default_value=["groups"],
        config=True,
        help="""Where the user's groups are in the identity provider's claims.

        Each entry is a dotted path (``groups``, ``realm_access.roles``,
        ``resource_access.{client_id}.roles``) or a list of keys for claim names that
        contain dots (``["https://example.org/groups"]``). ``{client_id}`` is replaced by the
        client id. Groups from every path are combined.
        """,
    )

    refused_message = Unicode(
        "Your account ({username}) is not in any group that may use this hub. "
        "If you think it should be, ask the hub's administrators to add you to an allowed group.",
        config=True,
        help="""The message a user in no allowed group sees (``{username}`` is replaced).""",
    )

    @default("manage_groups")
    def _manage_groups_default(self) -> bool:
        return True

    @default("manage_roles")
    def _manage_roles_default(self) -> bool:
        return True

    @default("any_allow_config")
    def _any_allow_config_default(self) -> bool:
        return True  # the policy file is the allow config

    @default("allow_existing_users")
    def _allow_existing_users_default(self) -> bool:
        return False  # an existing user stays only while the policy still lets them in

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._check_no_second_source()
        self._refresh_fails_closed()
        self.policy: Policy = self._load_at_start_up()

    def _load_at_start_up(self) -> Policy:
        """The policy; with the hub's ProfileSpawner, its profile files are checked now too."""
        from jupyterhub_platform.spawner import ProfileSpawner, check_configuration

        spawner_class = getattr(self.parent, "spawner_class", None)
        try:
            if isinstance(spawner_class, type) and issubclass(spawner_class, ProfileSpawner):
                check_configuration(self.config, self.log)
            return self.load()
        except PolicyError as e:
            raise SystemExit(
                f"jupyterhub-platform: refusing to start, invalid policy:\n{e}"
            ) from None

    def _refresh_fails_closed(self) -> None:
        """A refused refresh refuses the request, API-token requests included.

        JupyterHub 6.1 added ``auth_refresh_strict`` (default False): a token request whose
        refresh fails then keeps the user's stale rights. 5.5 always refused, and the policy
        must: a user the identity provider removed may not keep using their API tokens.
        """
        if not self.has_trait("auth_refresh_strict"):
            return  # JupyterHub 5.5: always strict
        sections = [cls.__name__ for cls in type(self).mro()]
        if any("auth_refresh_strict" in self.config.get(name, {}) for name in sections):
            if not self.auth_refresh_strict:
                self.log.warning(
                    "auth_refresh_strict is False: API tokens of users whose refresh fails keep "
                    "their stale rights"
                )
            return
        self.auth_refresh_strict = True

    def get_handlers(self, app):
        """The authenticator's handlers plus the server API that lets the spawner refuse first.

        JupyterHub matches authenticator routes before its own: with them, a spawn request the
        spawner refuses answers 400/403 before any spawn exists, so refusals never count towards
        ``consecutive_failure_limit`` (see :mod:`jupyterhub_platform.spawner.refusals`). Also
        the admin view of quota use by group (:mod:`jupyterhub_platform.spawner.quota_api`).
        """
        from jupyterhub_platform.observability.hub import install

        install(app, lambda: [grant.group for grant in self.policy.grants])
        return [*super().get_handlers(app), *server_api_handlers(), *quota_api_handlers()]

    async def get_authenticated_user(self, handler, data):
        """JupyterHub's login, with its outcome in the metrics and the audit trail."""
        try:
            model = await super().get_authenticated_user(handler, data)
        except Exception as exc:
            record_login(type(self).__name__, getattr(exc, "audit_user", ""), exc)
            raise
        if model is None:  # refused by JupyterHub itself (a blocked user)
            record_login(type(self).__name__, "", page_error(403, "", reason="blocked"))
            return None
        record_login(type(self).__name__, model["name"], None)
        record_changes(handler.find_user(model["name"]) if handler else None, model, "login")
        return model

    async def refresh_user(self, user, handler=None, **kwargs):
        """:meth:`refresh_model`, with what it changes in the user's rights audited."""
        result = await self.refresh_model(user, handler, **kwargs)
        if isinstance(result, dict):
            record_changes(user, result, "refresh")
        return result

    async def refresh_model(self, user, handler=None, **kwargs):
        """The provider's refresh: True (unchanged), False (log in again) or an auth model."""
        return True

    def _check_no_second_source(self) -> None:
        conflicting = {
            "allow_all": self.allow_all,
            "allowed_users": self.allowed_users,
            "admin_users": self.admin_users,
            "allow_existing_users": self.allow_existing_users,
        }
        for name in ("allowed_groups", "admin_groups"):
            if self.has_trait(name):
                conflicting[name] = getattr(self, name)
        set_ = sorted(name for name, value in conflicting.items() if value)
        if set_:
            raise ValueError(
                f"{type(self).__name__}: {', '.join(set_)} cannot be used; who may log in and who is "
                "admin comes from the group policy file (c.PlatformPolicy.policy_file)"
            )

    @staticmethod
    def mark_cookie_session(handler) -> None:
        """Say a refreshed request is not token-authenticated unless JupyterHub said it is.

        When a refresh fails, JupyterHub (5.5 and 6.x) reads ``handler._token_authenticated`` to
        choose between forcing a new login and keeping stale rights, but sets it only on token
        authentication: without this, a failed cookie-session refresh raises AttributeError.
        """
        if handler is not None and not hasattr(handler, "_token_authenticated"):
            handler._token_authenticated = False

    def claim_paths(self, client_id: str = "") -> list[tuple[str, ...]]:
        """:attr:`groups_claim` as key paths, with ``{client_id}`` filled in."""
        return claim_paths(self.groups_claim, client_id)

    def apply_policy(self, auth_model: dict, idp_groups: Iterable[str]) -> dict:
        """Resolve ``idp_groups`` and record the outcome in ``auth_model`` (returned)."""
        entitlements = self.policy.resolve(idp_groups)
        auth_model[ENTITLEMENTS_KEY] = entitlements
        auth_model["admin"] = entitlements.admin
        if self.manage_groups:
            auth_model["groups"] = sorted(entitlements.groups)
        if self.manage_roles:
            auth_model["roles"] = self.roles_for(entitlements)
        return auth_model

    def roles_for(self, entitlements: Entitlements) -> list[dict]:
        """The user's complete role list for ``manage_roles``.

        JupyterHub strips every role not in this list, the default ``user`` and ``admin`` roles
        included, so they are listed by name (without scopes, which leaves their definition alone).
        """
        roles = [{"name": "user"}] + self.policy.role_dicts(entitlements.roles)
        if entitlements.admin:
            roles.append({"name": "admin"})
        return roles

    async def check_allowed(self, username: str, authentication: dict | None = None) -> bool:
        entitlements = (authentication or {}).get(ENTITLEMENTS_KEY)
        if isinstance(entitlements, Entitlements) and entitlements.login_allowed:
            return True
        groups = sorted(entitlements.groups) if entitlements else []
        self.log.warning("Refusing %s: no group allowed to log in (groups: %s)", username, groups)
        error = page_error(403, self.refused_message.format(username=username), "no_allowed_group")
        error.audit_user = username
        raise error

    async def load_managed_roles(self) -> list[dict]:
        """Every role the policy defines, so JupyterHub knows them before anyone logs in."""
        return self.policy.role_dicts(self.policy.roles)
