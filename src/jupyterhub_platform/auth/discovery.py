"""OpenID provider metadata from ``<issuer>/.well-known/openid-configuration`` (OIDC Discovery 1.0).

Discovery is lazy and heals itself: the hub must start and serve while the provider is down (a
hub restart during an outage must not take the platform down), so nothing is fetched while the
authenticator is built. :class:`LazyDiscovery` fetches in the background, retrying with capped
exponential backoff until it has the metadata; a login may also trigger an immediate
(rate-limited) attempt, so the first login after the provider returns works. Once had, the
metadata is refreshed after a TTL; a failed refresh keeps the last good metadata.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

REQUIRED = ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri")


class DiscoveryError(RuntimeError):
    """The issuer's metadata cannot be fetched or does not describe this issuer."""


@dataclass(frozen=True)
class ProviderMetadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str = ""
    end_session_endpoint: str = ""
    id_token_signing_alg_values_supported: tuple[str, ...] = ()
    token_endpoint_auth_methods_supported: tuple[str, ...] = ()
    """Empty when the document has none: RFC 8414 then means ``client_secret_basic``."""


def discovery_url(issuer: str) -> str:
    return issuer.rstrip("/") + "/.well-known/openid-configuration"


def parse_metadata(data: object, issuer: str) -> ProviderMetadata:
    """Validate a discovery document for ``issuer`` (its ``issuer`` must match exactly)."""
    if not isinstance(data, dict):
        raise DiscoveryError(f"{discovery_url(issuer)} did not return a JSON object")
    missing = [k for k in REQUIRED if not isinstance(data.get(k), str) or not data[k]]
    if missing:
        raise DiscoveryError(f"{discovery_url(issuer)} lacks {', '.join(missing)}")
    if data["issuer"].rstrip("/") != issuer.rstrip("/"):
        raise DiscoveryError(
            f"issuer mismatch: configured {issuer!r}, but {discovery_url(issuer)} says "
            f"{data['issuer']!r} (OIDC Discovery 4.3); fix OIDCAuthenticator.issuer"
        )
    return ProviderMetadata(
        issuer=data["issuer"],
        authorization_endpoint=data["authorization_endpoint"],
        token_endpoint=data["token_endpoint"],
        jwks_uri=data["jwks_uri"],
        userinfo_endpoint=data.get("userinfo_endpoint") or "",
        end_session_endpoint=data.get("end_session_endpoint") or "",
        id_token_signing_alg_values_supported=_strings(
            data, "id_token_signing_alg_values_supported"
        ),
        token_endpoint_auth_methods_supported=_strings(
            data, "token_endpoint_auth_methods_supported"
        ),
    )


def _strings(data: dict, key: str) -> tuple[str, ...]:
    """The strings listed under ``key`` (a missing or malformed list reads as empty)."""
    values = data.get(key)
    return tuple(v for v in values if isinstance(v, str)) if isinstance(values, list) else ()


def retry_delay(failures: int, initial: float, maximum: float) -> float:
    """Seconds before the next attempt after ``failures`` failed ones: doubling, capped."""
    return min(maximum, initial * 2 ** max(failures - 1, 0))


class DiscoveryUnavailable(Exception):
    """No provider metadata yet; the message says why the last attempt failed."""


class LazyDiscovery:
    """The provider metadata of ``issuer``, fetched in the background and on demand.

    ``fetch(url)`` returns the parsed JSON document; ``on_metadata`` is called with each newly
    fetched :class:`ProviderMetadata`. Background retries start with :meth:`start` (which needs a
    running event loop; without one, the first :meth:`current` call fetches).
    """

    def __init__(
        self,
        issuer: str,
        fetch: Callable[[str], Awaitable[object]],
        on_metadata: Callable[[ProviderMetadata], None],
        *,
        log: logging.Logger | logging.LoggerAdapter,
        ttl: float = 3600.0,
        retry_initial: float = 1.0,
        retry_max: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.issuer = issuer
        self._fetch = fetch
        self._on_metadata = on_metadata
        self.log = log
        self.ttl, self.retry_initial, self.retry_max = ttl, retry_initial, retry_max
        self._clock = clock
        self.metadata: ProviderMetadata | None = None
        self.last_error = "discovery has not run yet"
        self.failures = 0
        self._fetched_at = 0.0
        self._attempted_at: float | None = None
        self._attempt: asyncio.Task | None = None
        self._retry: asyncio.TimerHandle | None = None

    def start(self) -> None:
        """Begin fetching now, in the background, if an event loop runs."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return
        self._begin()

    async def current(self) -> ProviderMetadata:
        """The metadata; :class:`DiscoveryUnavailable` while there is none.

        Without metadata, the caller waits for an attempt that starts after it asked, at least
        ``retry_initial`` seconds after the previous one: the first login once the provider is
        back works, and a burst of logins during an outage shares one request. Metadata older
        than the TTL is refreshed first.
        """
        if self.metadata is None:
            asked = self._clock()
            if self._attempt is not None:  # started before this call: its answer may be stale
                await asyncio.shield(self._attempt)
            if self.metadata is None and self._attempted_at is not None:
                await asyncio.sleep(self._attempted_at + self.retry_initial - self._clock())
            stale = self._attempted_at is None or self._attempted_at < asked
            if self.metadata is None and self._attempt is None and stale:
                self._begin()
            if self._attempt is not None:  # begun now, or by another caller that asked
                await asyncio.shield(self._attempt)
            if self.metadata is None:
                raise DiscoveryUnavailable(self.last_error)
        elif self._clock() - self._fetched_at >= self.ttl:
            self._begin()
            await asyncio.shield(self._attempt)
        return self.metadata

    def _begin(self) -> None:
        if self._attempt is None:
            if self._retry is not None:
                self._retry.cancel()
                self._retry = None
            self._attempt = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        self._attempted_at = self._clock()
        url = discovery_url(self.issuer)
        try:
            metadata = parse_metadata(await self._fetch(url), self.issuer)
            self._on_metadata(metadata)  # may refuse it too (e.g. no usable client auth method)
        except Exception as exc:  # unreachable, an error status, not JSON, inconsistent
            self._failed(describe_failure(url, exc))
        else:
            self.metadata, self._fetched_at, self.failures = metadata, self._clock(), 0
            self.last_error = ""
            self.log.info("OIDC discovery for %s: endpoints loaded from %s", self.issuer, url)
        finally:
            self._attempt = None

    def _failed(self, reason: str) -> None:
        self.last_error, self.failures = reason, self.failures + 1
        if self.metadata is not None:
            self._fetched_at = self._clock()  # refresh again after another TTL
            self.log.warning("Refreshing OIDC discovery failed (%s); keeping the last", reason)
            return
        delay = retry_delay(self.failures, self.retry_initial, self.retry_max)
        self.log.error(
            "OIDC discovery failed (%s); logins answer 503 until it works; retrying in %gs",
            reason,
            delay,
        )
        self._retry = asyncio.get_running_loop().call_later(delay, self._begin)


def describe_failure(url: str, exc: Exception) -> str:
    """A one-line reason for a failed discovery fetch (never a traceback)."""
    if isinstance(exc, DiscoveryError):
        return str(exc)
    code = getattr(exc, "code", None)
    if isinstance(code, int) and code != 599:
        return f"{url} answered HTTP {code}; is the issuer URL right?"
    if isinstance(exc, ValueError):
        return f"{url} did not return JSON"
    return f"cannot reach the OIDC issuer at {url}: {exc}"
