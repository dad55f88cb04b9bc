"""Cloudflare Access's ``get-identity`` endpoint, and the TTL cache for its answers (and tokens).

The access JWT carries no groups unless the identity provider's claims are passed through; the
full identity (groups included) is served by ``<team domain>/cdn-cgi/access/get-identity`` to
whoever presents the token as the ``CF_Authorization`` cookie. Every token of one Access login
shares an ``identity_nonce``, so one answer serves the whole session until the TTL ends.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from tornado.httpclient import AsyncHTTPClient, HTTPClientError

from .cloudflare_names import GET_IDENTITY_PATH, TOKEN_COOKIE


class IdentityUnavailable(Exception):
    """get-identity did not answer with an identity (down, timed out, unusable answer)."""


class TokenNotAccepted(Exception):
    """get-identity answered, and refused the token (expired, or its Access session ended)."""


async def fetch_identity(team_domain: str, token: str, timeout: float = 10.0) -> dict:
    """The identity Cloudflare Access holds for ``token``.

    A 3xx or 4xx answer is Cloudflare refusing the token (:class:`TokenNotAccepted`; a refused
    cookie is redirected to the sign-in page, so redirects are not followed); no answer, a 5xx
    or a body that is not a JSON object is :class:`IdentityUnavailable`.
    """
    try:
        response = await AsyncHTTPClient().fetch(
            team_domain + GET_IDENTITY_PATH,
            headers={"Cookie": f"{TOKEN_COOKIE}={token}", "Accept": "application/json"},
            request_timeout=timeout,
            connect_timeout=timeout,
            follow_redirects=False,
        )
        identity = json.loads(response.body)
    except HTTPClientError as exc:
        if exc.code != 599 and exc.code < 500:
            raise TokenNotAccepted(f"get-identity refused the token ({exc.code})") from None
        raise IdentityUnavailable(f"get-identity answered {exc.code}") from None
    except (OSError, ValueError) as exc:
        raise IdentityUnavailable(f"get-identity: {type(exc).__name__}: {exc}") from None
    if not isinstance(identity, dict):
        raise IdentityUnavailable("get-identity did not return a JSON object")
    return identity


class TTLCache:
    """Values by key until their time is up; expired entries are dropped as new ones arrive."""

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic):
        self.ttl = ttl
        self._clock = clock
        self._entries: dict[str, tuple[float, object]] = {}

    def get(self, key: str) -> object | None:
        entry = self._entries.get(key)
        if entry is None or self._clock() >= entry[0]:
            return None
        return entry[1]

    def put(self, key: str, value: object, ttl: float | None = None) -> None:
        """Keep ``value`` for ``ttl`` seconds (default: the cache's)."""
        now = self._clock()
        self._entries = {k: e for k, e in self._entries.items() if now < e[0]}
        self._entries[key] = (now + (self.ttl if ttl is None else ttl), value)
