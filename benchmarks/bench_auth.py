"""The OIDC authenticator's cost, against upstream baselines measured in the same run.

- ID-token verification with a cached JWKS (our :class:`JWKSCache.verify`: header checks, kid
  selection, nonce and azp on top) against a bare PyJWT ``decode`` of the same token with the
  same key and claim checks. Target: at most 20% slower.
- A full login round trip through the proxy (hub -> provider -> callback -> cookie) with
  ``platform-oidc`` against ``GenericOAuthenticator`` on the same provider.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

import jwt

from benchmarks.figures import Figure
from jupyterhub_platform.auth.jwks import JWKSCache, fetch_json
from jupyterhub_platform.testing import (
    CLIENT_ID,
    Provider,
    generic_settings,
    oidc_settings,
    start_hub,
)

VERIFICATIONS = 3000
LOGINS = 15


async def _verify_figure(provider: Provider) -> Figure:
    token = (await provider.code_flow("alice", nonce="bench-nonce"))["id_token"]
    issuer = provider.issuer
    cache = JWKSCache(f"{issuer}/jwks")
    await cache.refresh()
    key = jwt.PyJWK((await fetch_json(f"{issuer}/jwks"))["keys"][0]).key
    options = {"require": ["exp", "iat", "iss", "aud", "sub"]}

    async def ours() -> None:
        await cache.verify(
            token,
            issuer=issuer,
            audience=CLIENT_ID,
            algorithms=("RS256",),
            leeway=30,
            nonce="bench-nonce",
            authorized_party=CLIENT_ID,
        )

    def bare() -> None:
        jwt.decode(
            token,
            key,
            algorithms=["RS256"],
            audience=CLIENT_ID,
            issuer=issuer,
            leeway=30,
            options=options,
        )

    await ours()
    bare()
    # interleave rounds so that machine noise hits both sides alike
    ours_s, bare_s = [], []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(VERIFICATIONS // 5):
            await ours()
        ours_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        for _ in range(VERIFICATIONS // 5):
            bare()
        bare_s.append(time.perf_counter() - start)
    per = VERIFICATIONS // 5
    return Figure(
        name="ID-token verification, cached JWKS (platform-oidc)",
        value=min(ours_s) / per * 1e6,
        unit="us/token",
        baseline=min(bare_s) / per * 1e6,
        baseline_name="bare PyJWT decode",
        target="<= 1.20x",
    )


async def _login_seconds(hub) -> float:
    async with hub.browser() as browser:
        start = time.perf_counter()
        status, body = await hub.login(browser, "alice")
        elapsed = time.perf_counter() - start
    if status != 302:
        raise RuntimeError(f"login failed with HTTP {status}: {body[:200]}")
    return elapsed


async def _login_figure(provider: Provider, tmp: Path) -> Figure:
    (tmp / "ours").mkdir()
    (tmp / "generic").mkdir()
    ours = await start_hub(
        tmp / "ours", lambda url: oidc_settings(provider, url, auth_refresh_age=300)
    )
    try:
        generic = await start_hub(tmp / "generic", lambda url: generic_settings(provider, url))
        try:
            await _login_seconds(ours)  # warm-up: first JWKS fetch, first user creation
            await _login_seconds(generic)
            ours_t, generic_t = [], []
            for _ in range(LOGINS):
                ours_t.append(await _login_seconds(ours))
                generic_t.append(await _login_seconds(generic))
        finally:
            await generic.stop()
    finally:
        await ours.stop()
    return Figure(
        name="login round trip through the proxy (platform-oidc, median)",
        value=statistics.median(ours_t) * 1e3,
        unit="ms",
        baseline=statistics.median(generic_t) * 1e3,
        baseline_name="GenericOAuthenticator",
    )


async def run() -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="bench-auth-") as tmp:
        provider = Provider(Path(tmp))
        await provider.start()
        try:
            return [await _verify_figure(provider), await _login_figure(provider, Path(tmp))]
        finally:
            await provider.stop()
