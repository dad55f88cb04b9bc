"""The I/O an :class:`~.model.IssueContext` gives providers: a user's OIDC token verified by the
hub itself before any provider forwards it (:class:`TokenVerifier`), plain HTTP with a timeout
(:func:`http_fetch`) and Secrets of the hub's namespace (:func:`secret_reader`).

Verification reuses the authenticator's own parts (:mod:`~jupyterhub_platform.auth.discovery`,
:mod:`~jupyterhub_platform.auth.jwks`): ID tokens by signature, ``iss``, ``aud`` and ``exp``;
access tokens, which may be opaque, by the issuer's userinfo endpoint. A token that expires
within ``margin`` seconds counts as expired: it must still be valid when the STS checks it.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import jwt

from jupyterhub_platform.auth.discovery import DiscoveryUnavailable, LazyDiscovery, ProviderMetadata
from jupyterhub_platform.auth.jwks import (
    DEFAULT_ALGORITHMS,
    Expired,
    JWKSCache,
    KeySetUnavailable,
    TokenRejected,
    check_algorithms,
)

from .model import IssueError

if TYPE_CHECKING:
    from kubernetes_asyncio.client import CoreV1Api

log = logging.getLogger(__name__)

Fetch = Callable[..., Awaitable[tuple[int, Mapping[str, str], bytes]]]


def http_fetch(timeout: float = 10.0) -> Fetch:
    """``fetch(method, url, headers, body) -> (status, headers, body)`` on tornado's client;
    any HTTP status is an answer, an unreachable or silent server ``upstream_unavailable``."""

    async def fetch(
        method: str, url: str, headers: Mapping[str, str] | None = None, body: Any = None
    ) -> tuple[int, Mapping[str, str], bytes]:
        from tornado.httpclient import AsyncHTTPClient

        try:
            response = await AsyncHTTPClient().fetch(
                url, method=method, headers=dict(headers or {}), body=body,
                request_timeout=timeout, connect_timeout=timeout,
                follow_redirects=False, raise_error=False,
            )  # fmt: skip
        except Exception as exc:  # refused, reset, timed out, TLS: the message names no secret
            where = urlsplit(url)
            raise IssueError(
                "upstream_unavailable",
                f"cannot reach {where.scheme}://{where.netloc} ({type(exc).__name__})",
            ) from None
        return response.code, dict(response.headers.get_all()), response.body or b""

    return fetch


def secret_reader(core: CoreV1Api, namespace: str) -> Callable[[str], Awaitable[dict[str, str]]]:
    """``read_secret(name) -> {key: text}`` for Secrets in ``namespace``."""

    async def read_secret(name: str) -> dict[str, str]:
        from kubernetes_asyncio.client.exceptions import ApiException

        try:
            secret = await core.read_namespaced_secret(name, namespace)
        except ApiException as exc:
            if exc.status in (403, 404):
                missing = "no" if exc.status == 404 else "not allowed to read"
                raise IssueError(
                    "source_missing", f"{missing} Secret {name} in namespace {namespace}"
                ) from None
            raise IssueError(
                "upstream_unavailable", f"reading Secret {name}: HTTP {exc.status}"
            ) from None
        except Exception as exc:  # the API server is unreachable
            raise IssueError(
                "upstream_unavailable", f"reading Secret {name}: {type(exc).__name__}"
            ) from None
        try:
            return {k: base64.b64decode(v).decode("utf-8") for k, v in (secret.data or {}).items()}
        except (binascii.Error, UnicodeDecodeError):
            raise IssueError(
                "source_missing", f"Secret {name} holds a value that is not text"
            ) from None

    return read_secret


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
