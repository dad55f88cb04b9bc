"""``cloudflare-access``: trust the signed token Cloudflare Access puts on every request.

Cloudflare authenticates the user before a request reaches the hub and adds an RS256 JWT in the
``Cf-Access-Jwt-Assertion`` header. There is no login form: ``auto_login`` makes the hub's login
page log in whoever the token names, and every cookie-authenticated request is re-checked
(``refresh_user`` on each request): a hub session whose browser now carries another person's
token, or none, ends entirely (its server cookies and OAuth tokens too) and has to log in again.
API-token requests are re-checked against the latest Access token kept in ``auth_state``, so a
user removed at the identity provider loses their API tokens too. Groups come from a token claim
or ``get-identity`` and go through the group policy (:mod:`.policy_bridge`). The hub must be
unreachable except through Access: this authenticator verifies the token, but a hub reachable
directly would still let anyone try stolen tokens without Cloudflare's own checks
(docs/cloudflare-access.md).
"""

from __future__ import annotations

import hashlib
import time

from jupyterhub.handlers.login import LogoutHandler
from tornado import web
from traitlets import Bool, Dict, Enum, Float, List, Unicode, Union, default, validate

from jupyterhub_platform.observability import hub_metrics

from .cloudflare_get_identity import IdentityUnavailable, TokenNotAccepted, TTLCache, fetch_identity
from .cloudflare_identity import (
    USERNAME_RULES,
    Identity,
    IdentityRefused,
    check_service_tokens,
    groups_at,
    identity_from_claims,
)
from .cloudflare_names import CERTS_PATH, LOGOUT_PATH, TOKEN_COOKIE, TOKEN_HEADER
from .jwks import JWKSCache, KeySetUnavailable, TokenRejected, check_algorithms, peek_header
from .jwt_traits import JWTVerifierTraits, renamed
from .login_audit import reason_code
from .policy_bridge import ENTITLEMENTS_KEY, PolicyBridge, claim_paths
from .sessions import end_browser_session

ALGORITHMS = check_algorithms(["RS256"])  # what Cloudflare Access signs with
EVERY_REQUEST = 1e-9  # auth_refresh_age: JupyterHub refreshes at most once per request anyway
ACCESS_TOKEN_KEY = "access_token"  # in auth_state: the latest verified Access token of the user
SERVER_TOKEN_NOTE = "Server at "  # how JupyterHub notes the API tokens it gives servers


class AccessDenied(Exception):
    """No usable Cloudflare token on the request; ``status``/``message`` make the error page.

    ``code``: the reason as one word for metrics and the audit trail, from a fixed set (the
    ``reason`` of an identity refusal may name a service token)."""

    def __init__(self, status: int, reason: str, message: str, code: str = ""):
        self.status, self.reason, self.message = status, reason, message
        self.code = code or reason_code(reason)
        super().__init__(reason)


class CloudflareLogoutHandler(LogoutHandler):
    """Ends the hub session, then the Cloudflare Access session (else the next request logs in)."""

    async def render_logout_page(self):
        self.redirect(self.authenticator.team_domain + LOGOUT_PATH, permanent=False)


class CloudflareAccessAuthenticator(JWTVerifierTraits, PolicyBridge):
    """Users authenticated by Cloudflare Access, their rights from the platform group policy."""

    team = Unicode(
        config=True,
        help="""The Cloudflare Zero Trust team name: tokens are issued by https://<team>.cloudflareaccess.com.""",
    )
    team_domain = Unicode(
        config=True,
        help="""The team domain as a base URL (no trailing slash): the tokens' issuer, and where
        ``/cdn-cgi/access/certs``, ``get-identity`` and ``logout`` are. Defaults to
        https://<team>.cloudflareaccess.com; set it to point at a stand-in for local testing.""",
    )
    audience = List(
        Unicode(),
        config=True,
        help="""The Access application AUD tag(s) whose tokens this hub accepts (at least one).""",
    )
    accept_cookie = Bool(
        False,
        config=True,
        help="""Also read the token from the ``CF_Authorization`` cookie when the header is absent.

        Cloudflare recommends the header; the cookie is not guaranteed to be sent.""",
    )
    certs_cache_ttl = renamed("keys_cache_ttl")
    certs_min_refetch_interval = renamed("keys_min_refetch_interval")
    username_from_email = Enum(
        USERNAME_RULES,
        default_value="email",
        config=True,
        help="""How the hub username is made from the token's ``email``: the whole address, or its
        local part (only safe when every allowed user shares one email domain). The result is
        then normalised like any JupyterHub username (lower-cased, ``username_map``).""",
    )
    allow_service_tokens = Bool(
        False,
        config=True,
        help="""Accept Access service-token JWTs (``common_name``, no ``email``) that are mapped in
        ``service_tokens``; unmapped ones are refused either way.""",
    )
    service_tokens = Dict(
        config=True,
        help="""Service token client id (the JWT's ``common_name``) -> ``{"name": <hub user>,
        "groups": [<policy groups>]}``. Used only with ``allow_service_tokens``.""",
    )
    identity_groups_claim = List(
        Union([Unicode(), List(Unicode())]),
        default_value=["groups"],
        config=True,
        help="""Where the groups are in the ``get-identity`` answer: dotted paths or key lists, as
        ``groups_claim`` (e.g. ``custom.groups``, ``oidc_fields.groups``). Used when the token
        itself carries no groups at ``groups_claim``.""",
    )
    identity_group_name_key = Unicode(
        "name",
        config=True,
        help="""The field naming a group when groups are objects (``{"id", "name", "email"}``).""",
    )
    identity_cache_ttl = Float(
        300.0,
        config=True,
        help="""Seconds a ``get-identity`` answer is reused for tokens of the same Access session
        (``identity_nonce``); group changes at the identity provider show after at most this.""",
    )
    identity_unavailable = Enum(
        ["deny", "no-groups"],
        default_value="deny",
        config=True,
        help="""When ``get-identity`` cannot be read: ``deny`` the request, or continue with
        ``no-groups`` (which the policy then judges; usually a refusal).""",
    )
    unauthenticated_message = Unicode(
        "This hub is reached through Cloudflare Access, and this request carried no valid Access "
        "token ({reason}). Open the hub at its public address; if you did, your Access session may "
        "have ended: reload the page to sign in again.",
        config=True,
        help="""The 403 page for a request without a valid token (``{reason}`` is replaced).""",
    )

    # Checked on every cookie-authenticated request (JupyterHub refreshes at most once per request):
    # the header, not the hub cookie, says who is at the browser.
    auth_refresh_age = Float(
        EVERY_REQUEST,
        config=True,
        help="""Not configurable here: the session is re-checked against the Access token on every
        request. A configured value (e.g. ``Authenticator.auth_refresh_age``) is ignored.""",
    )

    @validate("auth_refresh_age")
    def _every_request(self, proposal) -> float:
        if proposal.value != EVERY_REQUEST:
            self.log.info(
                "auth_refresh_age=%s ignored: cloudflare-access checks every request",
                proposal.value,
            )
        return EVERY_REQUEST

    @default("team_domain")
    def _team_domain_default(self) -> str:
        return f"https://{self.team}.cloudflareaccess.com" if self.team else ""

    @validate("team_domain")
    def _strip_slash(self, proposal) -> str:
        return proposal.value.rstrip("/")

    @default("groups_claim")
    def _groups_claim_default(self) -> list:
        return []  # Access tokens carry no groups unless the IdP's claims are passed through

    @default("enable_auth_state")
    def _enable_auth_state_default(self) -> bool:
        return True  # API tokens are re-checked with the Access token kept there

    @default("auto_login")
    def _auto_login_default(self) -> bool:
        return True  # the hub's login page logs in from the header; there is no form

    @default("login_service")
    def _login_service_default(self) -> str:
        return "Cloudflare Access"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        if not self.team_domain:
            raise ValueError("CloudflareAccessAuthenticator: set team (or team_domain)")
        if not self.audience:
            raise ValueError(
                "CloudflareAccessAuthenticator.audience: list the Access application AUD tag(s)"
            )
        check_service_tokens(self.service_tokens)
        self.jwks = JWKSCache(
            self.team_domain + CERTS_PATH,
            ttl=self.keys_cache_ttl,
            min_refetch_interval=self.keys_min_refetch_interval,
            log=self.log,
        )
        self.identities = TTLCache(self.identity_cache_ttl)
        self.verified = TTLCache(self.keys_cache_ttl)
        self.kept_tokens: dict[str, str] = {}  # user -> digest of the Access token in auth_state
        if not self.enable_auth_state:
            self.log.warning(
                "CloudflareAccessAuthenticator: enable_auth_state is off, so users' API tokens "
                "cannot be re-checked against Cloudflare Access and are refused"
            )
        self.identity_paths = claim_paths(self.identity_groups_claim)

    def get_handlers(self, app):
        return [("/logout", CloudflareLogoutHandler), *super().get_handlers(app)]

    # -- the token -----------------------------------------------------------------------------

    def token_from(self, handler) -> str | None:
        """The access token on the request: the header, else (when enabled) the cookie."""
        token = handler.request.headers.get(TOKEN_HEADER)
        if not token and self.accept_cookie:
            token = handler.get_cookie(TOKEN_COOKIE)
        return token or None

    async def verify_token(self, token: str) -> dict:
        """The verified claims; raises :class:`AccessDenied` (logged without the token).

        A browser sends the same token on every request until it expires, so a verified token is
        remembered until its ``exp`` (at most ``keys_cache_ttl``), and only while its key is
        still in the key set: a revoked key revokes its remembered tokens at the next refetch.
        """
        remembered = self.verified.get(token)
        if remembered is not None and remembered[1] in self.jwks.kids:
            return remembered[0]
        try:
            claims = await self.jwks.verify(
                token,
                issuer=self.team_domain,
                audience=self.audience,
                algorithms=ALGORITHMS,
                leeway=self.leeway,
                require=("exp", "iat", "iss", "aud"),
            )
        except TokenRejected as exc:
            hub_metrics.TOKEN_FAILURES.labels("cloudflare_access", reason_code(exc.reason)).inc()
            raise AccessDenied(
                403, exc.reason, self.unauthenticated_message.format(reason=exc.reason)
            ) from None
        except KeySetUnavailable as exc:
            self.log.error("Cloudflare Access token not verifiable: %s", exc)
            raise AccessDenied(
                503,
                "signing keys unavailable",
                "Cloudflare Access's signing keys cannot be fetched right now; please try again later.",
            ) from None
        lifetime = min(self.keys_cache_ttl, claims["exp"] - time.time())
        if lifetime > 0:
            self.verified.put(token, (claims, peek_header(token).get("kid")), ttl=lifetime)
        return claims

    async def claims_from(self, handler) -> tuple[dict, str]:
        """The request's token and its verified claims."""
        token = self.token_from(handler)
        if token is None:
            reason = f"no {TOKEN_HEADER} header"
            raise AccessDenied(403, reason, self.unauthenticated_message.format(reason=reason))
        return await self.verify_token(token), token

    # -- identity and groups -------------------------------------------------------------------

    def identity(self, claims: dict) -> Identity:
        """The normalised hub user named by verified ``claims``; AccessDenied when none is."""
        try:
            identity = identity_from_claims(
                claims,
                username_rule=self.username_from_email,
                allow_service_tokens=self.allow_service_tokens,
                service_tokens=self.service_tokens,
            )
        except IdentityRefused as exc:
            raise AccessDenied(
                403,
                exc.reason,
                f"Cloudflare Access vouched for this request, but {exc.reason}.",
                "identity_refused",
            ) from None
        return Identity(
            self.normalize_username(identity.name), identity.service_token, identity.groups
        )

    async def groups(self, identity: Identity, claims: dict, token: str) -> list[str]:
        """The identity's raw groups: mapped, from the token, or from (cached) get-identity."""
        if identity.groups is not None:
            return list(identity.groups)
        in_token = groups_at(claims, self.claim_paths(), self.identity_group_name_key)
        if in_token is not None:
            return in_token
        key = claims.get("identity_nonce") or hashlib.sha256(token.encode()).hexdigest()
        cached = self.identities.get(key)
        if cached is not None:
            return cached
        try:
            document = await fetch_identity(self.team_domain, token)
        except TokenNotAccepted as exc:
            # Typically a token past its exp but inside the leeway: the hub accepted it, Cloudflare no longer does.
            expired = claims["exp"] <= time.time()
            reason = "token expired" if expired else "token no longer accepted by Cloudflare Access"
            self.log.info("%s for %s: %s", reason, identity.name, exc)
            raise AccessDenied(
                403, reason, self.unauthenticated_message.format(reason=reason)
            ) from None
        except IdentityUnavailable as exc:
            if self.identity_unavailable == "no-groups":
                self.log.warning("%s; %s continues with no groups", exc, identity.name)
                return []
            self.log.error("%s; refusing %s", exc, identity.name)
            raise AccessDenied(
                503,
                "get-identity unavailable",
                "Your groups cannot be read from Cloudflare Access right now; please try again in a few minutes.",
            ) from None
        groups = groups_at(document, self.identity_paths, self.identity_group_name_key) or []
        self.identities.put(key, groups)
        return groups

    async def model_for(self, claims: dict, token: str) -> dict:
        """Verified claims -> user, groups, the policy's decision, and the token to keep."""
        identity = self.identity(claims)
        groups = await self.groups(identity, claims, token)
        model = {"name": identity.name, "auth_state": {ACCESS_TOKEN_KEY: token}}
        return self.apply_policy(model, groups)

    async def auth_model(self, handler) -> dict:
        """Header -> verified claims -> user, groups and the policy's decision."""
        claims, token = await self.claims_from(handler)
        return await self.model_for(claims, token)

    # -- the JupyterHub hooks ------------------------------------------------------------------

    async def authenticate(self, handler, data=None):
        try:
            model = await self.auth_model(handler)
        except AccessDenied as exc:
            self.log.warning("Cloudflare Access login refused: %s", exc.reason)
            error = web.HTTPError(exc.status, exc.message)
            error.audit_reason = exc.code
            raise error from None
        self.kept_tokens[model["name"]] = _digest(model["auth_state"][ACCESS_TOKEN_KEY])
        return model

    async def refresh_model(self, user, handler=None, **kwargs):
        """Re-check every request of ``user``: cookie sessions against the request's Access token,
        token (API) requests against the latest Access token the hub kept for the user.

        Requests about another user (an admin's, a pre-spawn refresh) are not judged here: they
        carry the requester's token, not ``user``'s.
        """
        requester = getattr(handler, "_jupyterhub_user", user)  # unset while 5.x resolves it
        self.mark_cookie_session(handler)
        if handler is None or requester is not user:
            return True
        if handler._token_authenticated:
            return await self.recheck_token_request(user, handler)
        return await self.recheck_cookie_session(user, handler)

    async def recheck_cookie_session(self, user, handler):
        """The request's Access token must still name the session's user, who may still log in.

        Otherwise the whole browser session ends, server cookies and tokens included
        (:func:`.sessions.end_browser_session`): a page then logs in whoever Access now vouches for.
        """
        try:
            model = await self.auth_model(handler)
        except AccessDenied as exc:
            if exc.status >= 500:  # Cloudflare unreachable: refuse this request, keep the session
                self.log.warning("Cannot re-check %s's hub session: %s", user.name, exc.reason)
                return False
            return self.end_session(user, handler, exc.reason)
        if model["name"] != user.name:
            self.log.warning(
                "A request with %s's hub session carries %s's Access token; logging in again",
                user.name,
                model["name"],
            )
            return self.end_session(user, handler, f"Access now vouches for {model['name']}")
        if not model[ENTITLEMENTS_KEY].login_allowed:
            return self.end_session(user, handler, "no longer in a group allowed to log in")
        return self.changes(user, model)

    async def recheck_token_request(self, user, handler):
        """An API token is only as good as its owner's Access identity, re-read each request.

        The identity comes from the request's own Access token when it names the owner (requests
        through Access), else from the latest one kept in ``auth_state``. When neither can be
        checked any more (expired, refused, none kept) the request is refused — except server API
        tokens, whose scopes are the server's own and which end with the server: a running
        server keeps reporting activity after its owner's Access session ended.
        """
        token = await self.token_to_recheck(user, handler)
        try:
            if token is None:
                raise AccessDenied(403, "no Access token kept for this user", "")
            model = await self.model_for(await self.verify_token(token), token)
        except AccessDenied as exc:
            if _is_server_token(handler):
                return True
            self.log.warning(
                "Refusing %s's API token: %s; log in through Access again", user.name, exc.reason
            )
            return False
        if model["name"] != user.name:
            self.log.warning(
                "Refusing %s's API token: the kept Access token names %s", user.name, model["name"]
            )
            return False
        if not model[ENTITLEMENTS_KEY].login_allowed:
            self.log.warning(
                "Refusing %s's API token: no longer in a group allowed to log in", user.name
            )
            return False
        return self.changes(user, model)

    async def token_to_recheck(self, user, handler) -> str | None:
        """The request's Access token if it names ``user``, else the one kept for ``user``."""
        token = self.token_from(handler)
        if token is not None:
            try:
                if self.identity(await self.verify_token(token)).name == user.name:
                    return token
            except AccessDenied:
                pass
        if not self.enable_auth_state:
            return None
        return (await user.get_auth_state() or {}).get(ACCESS_TOKEN_KEY)

    def changes(self, user, model: dict):
        """``True`` when nothing changed (no database write on this request), else ``model``."""
        entitlements = model[ENTITLEMENTS_KEY]
        token = _digest(model["auth_state"][ACCESS_TOKEN_KEY])
        same_groups = not self.manage_groups or set(model["groups"]) == {
            g.name for g in user.groups
        }
        if (
            entitlements.admin == user.admin
            and same_groups
            and self.kept_tokens.get(user.name) == token
        ):
            return True
        self.kept_tokens[user.name] = token
        return model

    def end_session(self, user, handler, reason: str) -> bool:
        """End ``user``'s session at this browser; False, for ``refresh_user`` to return."""
        revoked = end_browser_session(handler, user)
        self.log.info(
            "%s's hub session ends (%s); %d token(s) of it revoked", user.name, reason, revoked
        )
        return False


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _is_server_token(handler) -> bool:
    """JupyterHub's own test for a server's API token (``BaseHandler.get_current_user_token``)."""
    orm_token = handler.get_token()
    return bool(orm_token and orm_token.note and orm_token.note.startswith(SERVER_TOKEN_NOTE))
