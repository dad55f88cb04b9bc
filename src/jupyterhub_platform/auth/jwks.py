"""Verify JWTs signed by an identity provider against its published key set (JWKS).

Shared by the OIDC authenticator (ID tokens) and the Cloudflare Access authenticator (access
JWTs). Keys are cached for ``ttl`` seconds; a token naming an unknown ``kid`` triggers a refetch
(the provider rotated its keys) at most once per ``min_refetch_interval``, so a stream of forged
``kid`` values cannot turn the hub into a JWKS hammer. When the endpoint is down, cached keys keep
being served. Every rejection is a :class:`TokenRejected` subclass whose ``reason`` is safe to log:
it never contains the token.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable

import jwt
from jwt.algorithms import has_crypto

log = logging.getLogger(__name__)

# Asymmetric algorithms only: a JWKS holds public keys, and an HS* token "signed" with a public
# key (the classic algorithm-confusion attack) must never verify. "none" is never accepted.
ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
DEFAULT_ALGORITHMS = ("RS256", "ES256")
_KTY_FOR_ALG = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}


class TokenRejected(Exception):
    """A token failed verification; ``reason`` says why and is safe to log."""

    reason = "invalid token"

    def __init__(self, detail: str = ""):
        self.detail = detail
        super().__init__(f"{self.reason}: {detail}" if detail else self.reason)


class MalformedToken(TokenRejected):
    reason = "malformed token"


class DisallowedAlgorithm(TokenRejected):
    reason = "algorithm not allowed"


class UnknownKey(TokenRejected):
    reason = "signing key not in the provider's key set"


class BadSignature(TokenRejected):
    reason = "bad signature"


class Expired(TokenRejected):
    reason = "token expired"


class NotYetValid(TokenRejected):
    reason = "token not yet valid"


class WrongIssuer(TokenRejected):
    reason = "wrong issuer"


class WrongAudience(TokenRejected):
    reason = "wrong audience"


class WrongNonce(TokenRejected):
    reason = "wrong nonce"


class MissingClaim(TokenRejected):
    reason = "required claim missing"


class KeySetUnavailable(Exception):
    """The JWKS could not be fetched and no keys are cached."""


JsonFetcher = Callable[[str], Awaitable[dict]]


async def fetch_json(url: str, timeout: float = 10.0) -> dict:
    """GET ``url`` and parse JSON (the default fetcher; authenticators may pass their own)."""
    from tornado.httpclient import AsyncHTTPClient

    response = await AsyncHTTPClient().fetch(
        url,
        request_timeout=timeout,
        connect_timeout=timeout,
        headers={"Accept": "application/json"},
    )
    return json.loads(response.body)


def check_algorithms(algorithms: Iterable[str]) -> tuple[str, ...]:
    """The allow-list, refusing anything that is not an asymmetric signature algorithm."""
    algorithms = tuple(algorithms)
    bad = [a for a in algorithms if a not in ASYMMETRIC_ALGORITHMS]
    if bad or not algorithms:
        raise ValueError(
            f"allowed algorithms must be a non-empty subset of {sorted(ASYMMETRIC_ALGORITHMS)}, got {list(algorithms)}"
        )
    if not has_crypto:
        raise RuntimeError("PyJWT needs the 'cryptography' package to verify signatures")
    return algorithms


class JWKSCache:
    """The key set at ``url``, cached, with rate-limited refetches on unknown key ids."""

    def __init__(
        self,
        url: str,
        *,
        fetch: JsonFetcher = fetch_json,
        ttl: float = 3600.0,
        min_refetch_interval: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        log: logging.Logger | logging.LoggerAdapter = log,
    ):
        self.url = url
        self.log = log
        self._fetch = fetch
        self.ttl = ttl
        self.min_refetch_interval = min_refetch_interval
        self._clock = clock
        self._keys: dict[str | None, jwt.PyJWK] = {}
        self._declared_alg: dict[str | None, str | None] = {}  # the JWK's own "alg", if any
        self._fetched_at: float | None = None  # last successful fetch
        self._attempted_at: float | None = None  # last attempt, successful or not
        self._lock = asyncio.Lock()

    @property
    def kids(self) -> frozenset[str | None]:
        return frozenset(self._keys)

    def _fresh(self) -> bool:
        return self._fetched_at is not None and self._clock() - self._fetched_at < self.ttl

    def _may_refetch(self) -> bool:
        return (
            self._attempted_at is None
            or self._clock() - self._attempted_at >= self.min_refetch_interval
        )

    async def refresh(self, *, force: bool = False) -> None:
        """Fetch the key set now; on failure keep the cached keys (raise only if there are none)."""
        async with self._lock:
            if not force and self._fresh():
                return
            self._attempted_at = self._clock()
            try:
                data = await self._fetch(self.url)
                keys = _parse_jwks(data, self.log)
            except Exception as exc:
                if not self._keys:
                    raise KeySetUnavailable(f"cannot fetch JWKS from {self.url}: {exc}") from None
                self.log.warning(
                    "JWKS refetch from %s failed (%s); serving cached keys", self.url, exc
                )
                return
            self._keys = {kid: jwk for kid, (jwk, _) in keys.items()}
            self._declared_alg = {kid: alg for kid, (_, alg) in keys.items()}
            self._fetched_at = self._clock()
            self.log.info("Loaded %d signing key(s) from %s", len(keys), self.url)

    async def key_for(self, kid: str | None, alg: str) -> jwt.PyJWK:
        """The key a token signed with ``alg`` under ``kid`` must verify against."""
        if not self._fresh() and (self._fetched_at is None or self._may_refetch()):
            await self.refresh()
        key = self._select(kid, alg)
        if key is None and self._may_refetch():
            await self.refresh(force=True)  # maybe the provider rotated its keys
            key = self._select(kid, alg)
        if key is None:
            raise UnknownKey(f"kid {kid!r} not among {sorted(map(str, self._keys))}")
        return key

    def _select(self, kid: str | None, alg: str) -> jwt.PyJWK | None:
        family = _KTY_FOR_ALG.get(alg[:2])
        if kid is not None:
            key = self._keys.get(kid)
        else:  # a token without kid is only acceptable when the choice is unambiguous
            candidates = [k for k in self._keys.values() if k.key_type == family]
            key = candidates[0] if len(candidates) == 1 else None
        if key is None:
            return None
        declared = self._declared_alg.get(kid)
        if key.key_type != family or declared not in (None, alg):
            raise DisallowedAlgorithm(
                f"key {kid!r} ({key.key_type}, {declared}) cannot verify {alg}"
            )
        return key

    async def verify(
        self,
        token: str,
        *,
        issuer: str,
        audience: str | Iterable[str],
        algorithms: Iterable[str] = DEFAULT_ALGORITHMS,
        leeway: float = 30.0,
        nonce: str | None = None,
        authorized_party: str | None = None,
        require: Iterable[str] = ("exp", "iat", "iss", "aud", "sub"),
    ) -> dict:
        """The verified claims of ``token``; raises a :class:`TokenRejected` subclass otherwise.

        ``authorized_party``: the client id an ``azp`` claim must name (required when the token
        has several audiences, as OIDC Core 3.1.3.7 says). ``nonce``: the value the login sent.
        """
        header = peek_header(token)
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in algorithms or alg not in ASYMMETRIC_ALGORITHMS:
            raise DisallowedAlgorithm(f"{alg!r} not in {list(algorithms)}")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise MalformedToken("kid is not a string")
        key = await self.key_for(kid, alg)
        check = {"algorithms": [alg], "audience": audience, "issuer": issuer, "leeway": leeway}
        check["options"] = {"require": list(require)}
        try:
            claims = _decode(token, key, check)
        except BadSignature:
            # Without a kid a rotated key looks like a bad signature (oidc-provider-mock 0.3.x
            # sends none): refetch once, rate-limited like an unknown kid, and try the new key.
            if kid is not None or not self._may_refetch():
                raise
            await self.refresh(force=True)
            claims = _decode(token, self._select(kid, alg) or key, check)
        _check_azp(claims, authorized_party)
        if nonce is not None:
            got = claims.get("nonce")
            if not isinstance(got, str) or not hmac.compare_digest(got, nonce):
                raise WrongNonce("nonce does not match the login request")
        return claims


def _decode(token: str, key: jwt.PyJWK, check: dict) -> dict:
    """``jwt.decode`` with its failures sorted into :class:`TokenRejected` subclasses."""
    try:
        return jwt.decode(token, key=key.key, **check)
    except jwt.ExpiredSignatureError as exc:
        raise Expired(str(exc)) from None
    except jwt.ImmatureSignatureError as exc:
        raise NotYetValid(str(exc)) from None
    except jwt.InvalidIssuerError as exc:
        raise WrongIssuer(str(exc)) from None
    except jwt.InvalidAudienceError as exc:
        raise WrongAudience(str(exc)) from None
    except jwt.MissingRequiredClaimError as exc:
        raise MissingClaim(str(exc)) from None
    except jwt.InvalidSignatureError as exc:
        raise BadSignature(str(exc)) from None
    except jwt.InvalidTokenError as exc:  # DecodeError, bad claim types, ...
        raise MalformedToken(str(exc)) from None


def peek_header(token: str) -> dict:
    """The token's JOSE header, read only to choose the key and algorithm.

    ``jwt.get_unverified_header`` would parse (and validate character by character) the whole
    token a second time; ``jwt.decode`` checks every part of it anyway, header included.
    """
    if not isinstance(token, str) or token.count(".") != 2:
        raise MalformedToken("not a compact JWS (three dot-separated parts)")
    segment = token.split(".", 1)[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except ValueError:  # binascii.Error, UnicodeDecodeError and JSONDecodeError included
        raise MalformedToken("header is not base64url-encoded JSON") from None
    if not isinstance(header, dict):
        raise MalformedToken("header is not a JSON object")
    return header


def _check_azp(claims: dict, authorized_party: str | None) -> None:
    if authorized_party is None:
        return
    azp = claims.get("azp")
    several = isinstance(claims.get("aud"), list) and len(claims["aud"]) > 1
    if azp is None and several:
        raise WrongAudience("several audiences and no azp claim")
    if azp is not None and azp != authorized_party:
        raise WrongAudience(f"azp {azp!r} is not this client")


def _parse_jwks(
    data: object, log: logging.Logger | logging.LoggerAdapter
) -> dict[str | None, tuple[jwt.PyJWK, str | None]]:
    """Signing keys (and their declared alg) by kid; unusable or encryption keys are skipped."""
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise ValueError("not a JWK set (no 'keys' list)")
    keys: dict[str | None, tuple[jwt.PyJWK, str | None]] = {}
    for raw in data["keys"]:
        if not isinstance(raw, dict) or raw.get("use", "sig") != "sig":
            continue
        if raw.get("kty") == "oct":  # a symmetric key has no place in a public key set
            continue
        try:
            keys[raw.get("kid")] = (jwt.PyJWK(raw), raw.get("alg"))
        except jwt.PyJWKError as exc:
            log.warning("Skipping unusable JWK %r: %s", raw.get("kid"), exc)
    if not keys:
        raise ValueError("no usable signing keys")
    return keys
