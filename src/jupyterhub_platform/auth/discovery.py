"""OpenID provider metadata from ``<issuer>/.well-known/openid-configuration`` (OIDC Discovery 1.0).

Fetched once at start-up (an unreachable or inconsistent issuer stops the hub with a clear error,
rather than failing at each login), then refreshed after a TTL while the hub runs; a failed
refresh keeps the last good metadata.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
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


def discover_blocking(issuer: str, timeout: float = 10.0) -> ProviderMetadata:
    """Fetch and validate the metadata now (start-up only: it blocks)."""
    url = discovery_url(issuer)
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - configured URL
            data = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise DiscoveryError(f"{url} answered HTTP {exc.code}; is the issuer URL right?") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DiscoveryError(f"cannot reach the OIDC issuer at {url}: {reason}") from None
    except ValueError:
        raise DiscoveryError(f"{url} did not return JSON") from None
    return parse_metadata(data, issuer)
