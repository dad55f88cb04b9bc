"""``platform-oidc``: an OpenID Connect authenticator that verifies what OAuthenticator does not.

Configured with an issuer URL and a client id/secret; the endpoints come from the issuer's
discovery document, fetched lazily (:class:`.discovery.LazyDiscovery`): the hub starts and
serves while the provider is down, and logins answer 503 naming the provider until it is back. Unlike ``GenericOAuthenticator`` (17.4), it sends a nonce and verifies the
ID token (signature against the JWKS, ``iss``, ``aud``/``azp``, time claims, nonce, algorithm
allow-list). Groups are read from configurable claim paths in the ID token and userinfo and go
through the group policy (:mod:`.policy_bridge`). ``refresh_user`` uses the refresh token at each
``auth_refresh_age``, so group and admin changes at the provider take effect without a new login;
while the provider is unreachable, logged-in users keep their current rights. Every token request
authenticates the client the way the provider's discovery says (:mod:`.client_auth`), each hub
user is bound to one (issuer, ``sub``) (:mod:`.subject_binding`), and OAuth codes and states are
redacted from the hub's log (:mod:`.log_redaction`).
"""

from __future__ import annotations

import secrets
from urllib.parse import urlparse

from oauthenticator.generic import GenericOAuthenticator
from oauthenticator.oauth2 import OAuthLoginHandler, OAuthLogoutHandler
from tornado import web
from tornado.httpclient import HTTPClientError
from tornado.httputil import url_concat
from traitlets import Bool, Enum, Float, List, Unicode, default

from jupyterhub_platform.observability import hub_metrics
from jupyterhub_platform.services.credentials.transport import http_fetch

from . import log_redaction
from .client_auth import BASIC, METHODS, ClientAuthMethodError, choose_method
from .discovery import DiscoveryError, DiscoveryUnavailable, LazyDiscovery, ProviderMetadata
from .error_pages import page_error
from .jwks import DEFAULT_ALGORITHMS, JWKSCache, KeySetUnavailable, TokenRejected, check_algorithms
from .jwt_traits import JWTVerifierTraits, renamed
from .login_audit import reason_code
from .policy_bridge import ENTITLEMENTS_KEY, PolicyBridge, groups_from_claims
from .subject_binding import BINDING_KEY, Identity, may_log_in
from .token_verifier import TokenVerifier

NONCE_COOKIE = "platform-oidc-nonce"


class ProviderUnavailable(Exception):
    """The identity provider did not answer (connection refused, timeout, 5xx)."""


class TokenRequestRefused(Exception):
    """The token endpoint refused the grant (expired code, revoked refresh token)."""


class OIDCLoginHandler(OAuthLoginHandler):
    """Adds a nonce bound to this browser (an encrypted cookie) to the authorization request.

    The provider's endpoints must be known first: without them the user gets a 503 page naming
    the provider instead of a redirect to nowhere.
    """

    async def get(self):
        await self.authenticator.provider_metadata()
        return super().get()

    def authorize_redirect(self, *args, **kwargs):
        nonce = secrets.token_urlsafe(32)
        self._set_cookie(NONCE_COOKIE, nonce, expires_days=1)
        kwargs["extra_params"] = {**(kwargs.get("extra_params") or {}), "nonce": nonce}
        return super().authorize_redirect(*args, **kwargs)


class OIDCLogoutHandler(OAuthLogoutHandler):
    """Hub logout; forgets the user's provider tokens and optionally ends the provider session."""

    _end_session_url: str | None = None

    async def handle_logout(self):
        await super().handle_logout()
        user = self.current_user
        if user is None:
            return
        state = await user.get_auth_state() or {}
        self._end_session_url = self.authenticator.end_session_url(self, state.get("id_token"))
        # The tokens go; the identity this user is bound to stays (subject_binding).
        await user.save_auth_state({k: v for k, v in state.items() if k == BINDING_KEY})

    async def render_logout_page(self):
        if self._end_session_url:
            self.redirect(self._end_session_url)
            return
        await super().render_logout_page()


class OIDCAuthenticator(JWTVerifierTraits, PolicyBridge, GenericOAuthenticator):
    """OpenID Connect login with verified ID tokens and the platform group policy."""

    login_handler = OIDCLoginHandler
    logout_handler = OIDCLogoutHandler

    issuer = Unicode(
        config=True,
        help="""The OpenID provider's issuer URL, e.g. https://keycloak.example.org/realms/research.

        Endpoints are read from <issuer>/.well-known/openid-configuration, in the background
        from start-up on (the hub does not wait for it); the document's ``issuer`` must equal
        this value.
        """,
    )
    allowed_algorithms = List(
        Unicode(),
        default_value=list(DEFAULT_ALGORITHMS),
        config=True,
        help="""ID-token signature algorithms accepted (asymmetric only; ``none`` and HS* are refused).""",
    )
    jwks_cache_ttl = renamed("keys_cache_ttl")
    jwks_min_refetch_interval = renamed("keys_min_refetch_interval")
    discovery_ttl = Float(
        3600.0,
        config=True,
        help="""Seconds before the discovery document is fetched again (at the next login).""",
    )
    discovery_retry_interval = Float(
        1.0,
        config=True,
        help="""Seconds before the first retry while discovery fails; each retry doubles it, up
        to ``discovery_retry_max_interval``. A login also triggers an attempt, at most once per
        this interval.""",
    )
    discovery_retry_max_interval = Float(
        60.0,
        config=True,
        help="""The longest wait between background discovery retries while the provider is
        unreachable.""",
    )
    discovery_timeout = Float(
        5.0,
        config=True,
        help="""Seconds a discovery or key-set request may take before it counts as failed.""",
    )
    userinfo_claims = Bool(
        True,
        config=True,
        help="""Also read the userinfo endpoint and merge its claims over the ID token's.

        Groups and the username are then looked up in the merged claims. Turn off for
        providers whose ID token carries everything and whose userinfo endpoint is slow.
        """,
    )
    end_session_redirect = Bool(
        False,
        config=True,
        help="""On hub logout, also end the provider session (RP-initiated logout) when the
        provider advertises an ``end_session_endpoint``.""",
    )
    token_endpoint_auth_method = Enum(
        ["", *METHODS],
        default_value="",
        config=True,
        help="""How the hub authenticates at the token endpoint, for the code exchange and every
        refresh: ``client_secret_basic`` (HTTP Basic) or ``client_secret_post`` (form body).

        Empty (default): follow the provider's ``token_endpoint_auth_methods_supported``,
        preferring ``client_secret_basic``; a provider that lists none means
        ``client_secret_basic`` (RFC 8414). Set it to override what discovery says.
        """,
    )
    subject_mismatch_message = Unicode(
        "The hub user {username!r} belongs to another account at the identity provider, so "
        "this account cannot use it. Ask the hub's administrators if you think this is wrong.",
        config=True,
        help="""The 403 message for a login whose (issuer, sub) differs from the identity the
        hub user was bound to at its first login (``{username}`` is replaced).""",
    )
    post_logout_redirect_url = Unicode(
        config=True,
        help="""Where the provider sends the user after RP-initiated logout (registered with the
        provider). Default: the hub's login page on the requesting host.""",
    )

    @default("login_service")
    def _login_service_default(self) -> str:
        return "OpenID Connect"

    @default("scope")
    def _scope_default(self) -> list[str]:
        return ["openid", "profile", "email"]

    @default("username_claim")
    def _username_claim_default(self) -> str:
        return "preferred_username"

    @default("enable_auth_state")
    def _enable_auth_state_default(self) -> bool:
        return True  # refresh needs the refresh token; z2jh seeds CryptKeeper keys

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        if not self.issuer:
            raise ValueError("OIDCAuthenticator.issuer is required (the provider's issuer URL)")
        if not self.client_id:
            raise ValueError("OIDCAuthenticator.client_id is required")
        if not self.enable_auth_state:
            raise ValueError(
                "OIDCAuthenticator: enable_auth_state cannot be turned off; the refresh token and "
                "the identity each hub user is bound to live in the encrypted auth_state"
            )
        if self._configured("basic_auth"):
            raise ValueError(
                "OIDCAuthenticator: basic_auth cannot be used; the token endpoint's client "
                "authentication follows discovery, or set token_endpoint_auth_method"
            )
        log_redaction.install(self.log)
        self.algorithms = check_algorithms(self.allowed_algorithms)
        self.jwks: JWKSCache | None = None
        self.metadata: ProviderMetadata | None = None
        self.discovery = LazyDiscovery(
            self.issuer,
            self._fetch_json,
            self._apply_metadata,
            log=self.log,
            ttl=self.discovery_ttl,
            retry_initial=self.discovery_retry_interval,
            retry_max=self.discovery_retry_max_interval,
        )
        self.discovery.start()
        self._credential_verifier: TokenVerifier | None = None

    def credential_token_verifier(self) -> TokenVerifier:
        """Verifies this hub's users' tokens before a credential provider forwards them (the
        spawner issues credential sets with it; docs/credentials.md). One per authenticator, so
        one JWKS cache."""
        if self._credential_verifier is None:
            self._credential_verifier = TokenVerifier(
                self.issuer, self.client_id, http_fetch(), algorithms=self.allowed_algorithms
            )
        return self._credential_verifier

    async def provider_metadata(self) -> ProviderMetadata:
        """The provider's metadata, or a 503 page naming the provider while there is none."""
        try:
            return await self.discovery.current()
        except DiscoveryUnavailable as exc:
            host = urlparse(self.issuer).netloc or self.issuer
            self.log.warning("Login refused with 503, no OIDC discovery yet: %s", exc)
            raise page_error(
                503,
                f"{self.login_service} ({host}) cannot be reached right now, so logging in is "
                "not possible; please try again in a few minutes.",
                reason="discovery_unavailable",
            ) from None

    def _configured(self, trait: str) -> bool:
        """Whether the config sets ``trait`` for this class or one it inherits from."""
        return any(
            trait in self.config[cls.__name__]
            for cls in type(self).__mro__
            if cls.__name__ in self.config
        )

    def _apply_metadata(self, metadata: ProviderMetadata) -> None:
        try:
            method = choose_method(
                metadata.token_endpoint_auth_methods_supported, self.token_endpoint_auth_method
            )
        except ClientAuthMethodError as exc:
            raise DiscoveryError(f"{metadata.issuer}: {exc}") from None
        # OAuthenticator's request builders read basic_auth for both the code and refresh grants.
        self.basic_auth = method == BASIC
        self.metadata = metadata
        self.authorize_url = metadata.authorization_endpoint
        self.token_url = metadata.token_endpoint
        self.userdata_url = metadata.userinfo_endpoint if self.userinfo_claims else ""
        if self.jwks is None or self.jwks.url != metadata.jwks_uri:
            self.jwks = JWKSCache(
                metadata.jwks_uri,
                fetch=self._fetch_json,
                ttl=self.keys_cache_ttl,
                min_refetch_interval=self.keys_min_refetch_interval,
                log=self.log,
            )

    async def _fetch_json(self, url: str) -> dict:
        return await self.httpfetch(
            url,
            label="fetching an OIDC provider document",
            method="GET",
            connect_timeout=self.discovery_timeout,
            request_timeout=self.discovery_timeout,
        )

    async def _token_request(self, handler, params: dict) -> dict:
        """POST to the token endpoint, sorting failures into provider-down and grant-refused."""
        try:
            return await self.get_token_info(handler, params)
        except HTTPClientError as exc:
            if exc.code == 599 or exc.code >= 500:
                raise ProviderUnavailable(f"token endpoint: {exc}") from None
            raise TokenRequestRefused(f"token endpoint answered {exc.code}") from None
        except web.HTTPError as exc:  # a 200 carrying an error (its text may quote tokens)
            raise TokenRequestRefused(
                f"token endpoint response unusable ({exc.status_code})"
            ) from None
        except OSError as exc:
            raise ProviderUnavailable(f"token endpoint: {exc}") from None

    def _pop_nonce(self, handler) -> str | None:
        nonce = handler.get_secure_cookie(NONCE_COOKIE)
        handler.clear_cookie(NONCE_COOKIE)
        return nonce.decode("ascii", "replace") if nonce else None

    async def authenticate(self, handler, data=None, **kwargs):
        await self.provider_metadata()
        nonce = self._pop_nonce(handler)
        if not nonce:
            raise page_error(
                400,
                "This login has expired or your browser blocked its cookie; please log in again.",
                reason="login_expired",
            )
        params = self.build_access_tokens_request_params(handler, data)
        host = urlparse(self.token_url).netloc
        try:
            token_info = await self._token_request(handler, params)
        except ProviderUnavailable as exc:
            self.log.error("Login failed, identity provider unavailable: %s", exc)
            raise page_error(
                503,
                f"The identity provider ({host}) is not reachable right now; please try again in a few minutes.",
                reason="provider_unavailable",
            ) from None
        except TokenRequestRefused as exc:
            self.log.warning("Login failed, token request refused: %s", exc)
            raise page_error(
                403,
                "The identity provider refused this login; please log in again.",
                reason="token_request_refused",
            ) from None
        model = await self._auth_model(token_info, nonce=nonce)
        await self._check_subject_binding(handler, model)
        return model

    async def _check_subject_binding(self, handler, model: dict) -> None:
        """Refuse a login into an existing hub user bound to another (issuer, sub)."""
        user = handler.find_user(model["name"])
        if user is None:
            return  # a new user: bound by this login's auth_state
        bound = Identity.from_state(await user.get_auth_state())
        presented = Identity.from_state(model["auth_state"])
        if not may_log_in(bound, presented):
            self.log.warning(
                "Refusing login as %s: it is bound to subject %r of %s, the provider "
                "authenticated subject %r",
                user.name,
                bound.subject,
                bound.issuer,
                presented.subject,
            )
            error = page_error(
                403, self.subject_mismatch_message.format(username=user.name), "subject_mismatch"
            )
            error.audit_user = user.name
            raise error

    async def verify_id_token(self, id_token: str, nonce: str | None = None) -> dict:
        """The verified claims of ``id_token``; rejections are logged (never the token) as 403s."""
        await self.provider_metadata()
        try:
            return await self.jwks.verify(
                id_token,
                issuer=self.metadata.issuer,
                audience=self.client_id,
                algorithms=self.algorithms,
                leeway=self.leeway,
                nonce=nonce,
                authorized_party=self.client_id,
            )
        except TokenRejected as exc:
            self.log.warning("ID token rejected: %s", exc)
            hub_metrics.TOKEN_FAILURES.labels("oidc_id_token", reason_code(exc.reason)).inc()
            raise page_error(
                403,
                f"The login could not be verified ({exc.reason}); please log in again.",
                reason="id_token_rejected",
            ) from None
        except KeySetUnavailable as exc:
            self.log.error("ID token not verifiable: %s", exc)
            raise page_error(
                503,
                "The identity provider's signing keys are unavailable; please try again later.",
                reason="keys_unavailable",
            ) from None

    async def _auth_model(
        self, token_info: dict, *, nonce: str | None = None, previous: dict | None = None
    ) -> dict:
        """Verified claims (+ userinfo) -> username, auth_state, and the policy's decision.

        ``previous``: the claims stored at login, when refreshing; the subject may not change.
        """
        id_token = token_info.get("id_token")
        if id_token:
            claims = await self.verify_id_token(id_token, nonce=nonce)
        elif previous is None:
            raise page_error(
                403,
                "The identity provider returned no ID token; is 'openid' in the scope?",
                reason="no_id_token",
            )
        else:
            claims = {}  # some providers issue no new ID token on refresh; userinfo must then say
        if self.userdata_url:
            userinfo = await self.token_to_user(token_info)
            if claims and userinfo.get("sub") != claims["sub"]:
                raise page_error(
                    403,
                    "userinfo describes another subject than the ID token",
                    reason="subject_mismatch",
                )
            claims = {**claims, **userinfo}
        if not claims:
            raise page_error(
                403, "Neither an ID token nor userinfo to refresh from", reason="no_claims"
            )
        if previous is not None and claims.get("sub") != previous.get("sub"):
            raise page_error(
                403, "The refreshed tokens describe another subject", reason="subject_mismatch"
            )
        username = self.normalize_username(self.user_info_to_username(claims))
        auth_state = self.build_auth_state_dict(token_info, claims)
        auth_state[BINDING_KEY] = Identity(self.metadata.issuer, str(claims["sub"])).as_state()
        groups = groups_from_claims(claims, self.claim_paths(self.client_id))
        return self.apply_policy({"name": username, "auth_state": auth_state}, groups)

    def user_info_to_username(self, user_info: dict) -> str:
        """The username claim; its absence is the provider's configuration problem, told as such."""
        name = (
            self.username_claim(user_info)
            if callable(self.username_claim)
            else user_info.get(self.username_claim)
        )
        if not isinstance(name, str) or not name:
            self.log.error("No %r claim for subject %r", self.username_claim, user_info.get("sub"))
            raise page_error(
                403,
                f"The identity provider sent no {self.username_claim!r} claim to name your hub user.",
                reason="no_username_claim",
            )
        return name

    async def refresh_model(self, user, handler=None, **kwargs):
        """Renew the tokens with the refresh token and re-read groups; False forces a new login."""
        self.mark_cookie_session(handler)
        state = await user.get_auth_state() or {}
        refresh_token = state.get("refresh_token")
        if not refresh_token:
            self.log.info("No refresh token for %s; a new login is required", user.name)
            return False
        try:
            await self.discovery.current()
        except DiscoveryUnavailable as exc:
            self.log.warning("Keeping %s's current rights, no OIDC discovery: %s", user.name, exc)
            return True
        params = self.build_refresh_token_request_params(refresh_token)
        try:
            token_info = await self._token_request(handler, params)
        except ProviderUnavailable as exc:
            self.log.warning(
                "Keeping %s's current rights, provider unavailable: %s", user.name, exc
            )
            return True
        except TokenRequestRefused as exc:
            self.log.info("Refresh for %s refused (%s); a new login is required", user.name, exc)
            return False
        if not token_info.get("refresh_token"):
            token_info["refresh_token"] = refresh_token
        try:
            model = await self._auth_model(
                token_info, previous=state.get(self.user_auth_state_key) or {}
            )
        except web.HTTPError as exc:
            self.log.warning(
                "Refresh for %s failed (%s); a new login is required", user.name, exc.log_message
            )
            return False
        if model["name"] != user.name:
            self.log.warning(
                "Refresh for %s returned user %s; a new login is required", user.name, model["name"]
            )
            return False
        if not model["auth_state"].get("id_token") and state.get("id_token"):
            # A refresh response may omit the ID token (OIDC Core 12.2; authlib-based providers
            # and Google do): keep the login's, which credential providers verify before use.
            model["auth_state"]["id_token"] = state["id_token"]
        if not model[ENTITLEMENTS_KEY].login_allowed:
            self.log.warning("%s is no longer in a group allowed to log in", user.name)
            return False
        return model

    def end_session_url(self, handler, id_token: str | None) -> str | None:
        """Where to send the browser to end the provider session, or None to stay on the hub."""
        endpoint = self.metadata.end_session_endpoint if self.metadata else ""
        if not (self.end_session_redirect and endpoint):
            return None
        after = self.post_logout_redirect_url or (
            f"{handler.request.protocol}://{handler.request.host}{handler.settings['login_url']}"
        )
        params = {"client_id": self.client_id, "post_logout_redirect_uri": after}
        if id_token:
            params["id_token_hint"] = id_token
        return url_concat(endpoint, params)
