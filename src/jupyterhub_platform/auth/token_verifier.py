"""Verifying a user's OIDC token before anything forwards it (the credential providers give it
to an STS or a service): :class:`TokenVerifier`, built on the authenticator's own parts
(:mod:`.discovery`, :mod:`.jwks`). ID tokens by signature, ``iss``, ``aud`` and ``exp``; access
tokens, which may be opaque, by the issuer's userinfo endpoint. A token that expires within
``margin`` seconds counts as expired: it must still be valid when the STS checks it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import jwt

from jupyterhub_platform.services.credentials.model import IssueError
from jupyterhub_platform.services.credentials.transport import Fetch

from .discovery import DiscoveryUnavailable, LazyDiscovery, ProviderMetadata
from .jwks import (
    DEFAULT_ALGORITHMS,
    Expired,
    JWKSCache,
    KeySetUnavailable,
    TokenRejected,
    check_algorithms,
)

log = logging.getLogger(__name__)


def token_verifier(
    issuer: str, audience: str, fetch: Fetch
) -> Callable[[str, str], Awaitable[Mapping]]:
    """``verify(kind, token) -> claims``; without an issuer every token is refused (nothing
    is forwarded unverified)."""
    if not issuer:

        async def refuse(kind: str, token: str) -> Mapping:
            raise IssueError(
                "no_token", f"the {kind} cannot be verified: no OIDC issuer is configured"
            )

        return refuse
    return TokenVerifier(issuer, audience, fetch)


class TokenVerifier:
    """``await verifier(kind, token) -> claims`` for tokens of ``issuer`` issued to the client
    ``audience``; raises :class:`IssueError` ``token_invalid``, ``token_expired`` or
    ``upstream_unavailable``. Use as :attr:`IssueContext.verify_token`."""

    def __init__(
        self,
        issuer: str,
        audience: str,
        fetch: Fetch,
        *,
        margin: float = 30.0,
        leeway: float = 30.0,
        algorithms: Iterable[str] = DEFAULT_ALGORITHMS,
        clock: Callable[[], float] = time.time,
    ):
        self.issuer, self.audience = issuer, audience
        self.margin, self.leeway = margin, leeway
        self.algorithms = check_algorithms(algorithms)
        self._fetch, self._clock = fetch, clock
        self.jwks: JWKSCache | None = None
        self.discovery = LazyDiscovery(issuer, self._get_json, self._keys_of, log=log)

    async def __call__(self, kind: str, token: str) -> Mapping[str, Any]:
        metadata = await self._metadata()
        if kind == "id_token":
            claims = await self._id_token(metadata, token)
        elif kind == "access_token":
            claims = await self._access_token(metadata, token)
        else:
            raise IssueError("token_invalid", f"cannot verify a {kind!r}")
        exp = claims.get("exp")
        if isinstance(exp, (int, float)) and exp - self._clock() < self.margin:
            raise IssueError(
                "token_expired", f"the {kind} has expired or is about to; log in again"
            )
        return claims

    async def _metadata(self) -> ProviderMetadata:
        try:
            return await self.discovery.current()
        except DiscoveryUnavailable as exc:
            raise IssueError("upstream_unavailable", f"the identity provider: {exc}") from None

    def _keys_of(self, metadata: ProviderMetadata) -> None:
        if self.jwks is None or self.jwks.url != metadata.jwks_uri:
            self.jwks = JWKSCache(metadata.jwks_uri, fetch=self._get_json, log=log)

    async def _get_json(self, url: str) -> Any:
        status, _, body = await self._fetch("GET", url, {"Accept": "application/json"}, None)
        if status != 200:
            raise ValueError(f"{url} answered HTTP {status}")
        return json.loads(body)

    async def _id_token(self, metadata: ProviderMetadata, token: str) -> dict:
        assert self.jwks is not None  # set with the metadata
        try:
            return await self.jwks.verify(
                token, issuer=metadata.issuer, audience=self.audience,
                algorithms=self.algorithms, leeway=self.leeway, authorized_party=self.audience,
            )  # fmt: skip
        except Expired:
            raise IssueError("token_expired", "the id_token has expired; log in again") from None
        except TokenRejected as exc:  # its reason never holds the token
            raise IssueError("token_invalid", f"the id_token was refused: {exc.reason}") from None
        except KeySetUnavailable:
            raise IssueError(
                "upstream_unavailable", "the identity provider's signing keys are unavailable"
            ) from None

    async def _access_token(self, metadata: ProviderMetadata, token: str) -> dict:
        """The issuer's userinfo for ``token`` (it decides whether the token is valid), with the
        token's ``exp`` when it is a JWT: the issuer accepted it, so its payload is the issuer's."""
        if not metadata.userinfo_endpoint:
            raise IssueError(
                "token_invalid", "the issuer has no userinfo endpoint to verify access tokens at"
            )
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        status, _, body = await self._fetch("GET", metadata.userinfo_endpoint, headers, None)
        if status in (400, 401, 403):
            raise IssueError(
                "token_invalid", f"the issuer refused the access_token (HTTP {status})"
            )
        try:
            claims = json.loads(body) if status == 200 else None
        except ValueError:
            claims = None
        if not isinstance(claims, dict) or not claims.get("sub"):
            raise IssueError(
                "upstream_unavailable",
                f"the issuer's userinfo answered HTTP {status} without a sub",
            )
        exp = _unverified_exp(token)
        return {**claims, "exp": exp} if exp is not None else claims


def _unverified_exp(token: str) -> float | None:
    try:
        exp = jwt.decode(token, options={"verify_signature": False}).get("exp")
    except jwt.InvalidTokenError:
        return None  # opaque
    return exp if isinstance(exp, (int, float)) else None
