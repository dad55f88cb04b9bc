"""Authenticated hub requests per second: cloudflare-access vs the same hub trusting the header.

Both hubs run behind their own configurable-http-proxy, against one Cloudflare stand-in, at the
same time. The baseline is the same authenticator with signature and claim checks removed (it
decodes the header unverified), so the ratio is the price of verification on every request.
Clients are logged-in browsers (hub cookie + Access header) calling ``GET /hub/api/user``;
rounds alternate between the hubs, and which goes first, so that background load hits both alike.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

import aiohttp

from benchmarks.figures import Figure
from jupyterhub_platform.auth.cloudflare import TOKEN_HEADER
from jupyterhub_platform.testing import CloudflareStandIn, Hub, shipped_policy_file, start_hub

REPO = Path(__file__).resolve().parents[1]
CLIENTS = 8
ROUNDS = 4
ROUND_SECONDS = 5.0
BASELINE_MODULE = "cf_header_trust"


# The baseline authenticator, written into the hub's working directory (on its sys.path).
BASELINE_SOURCE = f'''
import sys
sys.path.insert(0, {str(REPO)!r})
import jwt
from jupyterhub_platform.auth.cloudflare import CloudflareAccessAuthenticator


class HeaderTrustingAuthenticator(CloudflareAccessAuthenticator):
    """Benchmark baseline only: believes the header without checking it."""

    async def verify_token(self, token):
        return jwt.decode(token, options={{"verify_signature": False}})
'''


def install_baseline(directory: Path) -> str:
    """Write the baseline module for a hub running in ``directory``; its class's import path."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{BASELINE_MODULE}.py").write_text(BASELINE_SOURCE)
    return f"{BASELINE_MODULE}.HeaderTrustingAuthenticator"


def settings(standin: CloudflareStandIn, authenticator_class: str) -> dict[str, dict]:
    policy = {"policy_file": str(shipped_policy_file())}
    settings = {**standin.hub_config_overrides(), "PlatformPolicy": policy}
    settings["JupyterHub"] = {"authenticator_class": authenticator_class, "log_level": "WARN"}
    return settings


async def requests_per_second(hub: Hub, tokens: list[str], seconds: float) -> float:
    """Completed ``GET /hub/api/user`` per second over ``seconds`` with one client per token."""
    sessions = [aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) for _ in tokens]
    try:
        for session, token in zip(sessions, tokens, strict=True):  # log in: the hub cookie
            async with session.get(f"{hub.url}/hub/home", headers={TOKEN_HEADER: token}) as r:
                assert r.status == 200, f"login failed: {r.status}"
        done = 0
        deadline = time.monotonic() + seconds

        async def client(session: aiohttp.ClientSession, token: str) -> None:
            nonlocal done
            while time.monotonic() < deadline:
                async with session.get(
                    f"{hub.url}/hub/api/user", headers={TOKEN_HEADER: token}
                ) as r:
                    await r.read()
                    if r.status != 200:
                        raise RuntimeError(f"authenticated request answered {r.status}")
                done += 1

        started = time.monotonic()
        await asyncio.gather(*(client(s, t) for s, t in zip(sessions, tokens, strict=True)))
        return done / (time.monotonic() - started)
    finally:
        await asyncio.gather(*(s.close() for s in sessions))


async def run() -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="bench-cloudflare-") as tmp:
        tmp = Path(tmp)
        standin = CloudflareStandIn(tmp / "standin")
        await standin.start()
        hubs: list[Hub] = []
        try:
            verified = await start_hub(
                tmp / "verified", lambda url: settings(standin, "cloudflare-access")
            )
            hubs.append(verified)
            baseline_class = install_baseline(tmp / "trusting")
            trusting = await start_hub(
                tmp / "trusting", lambda url: settings(standin, baseline_class)
            )
            hubs.append(trusting)
            emails = ["alice@example.org", "bob@example.org"]
            tokens = [await standin.mint(email=emails[i % len(emails)]) for i in range(CLIENTS)]
            await requests_per_second(verified, tokens, 1.0)  # warm-up: keys and identities cached
            await requests_per_second(trusting, tokens, 1.0)
            totals = {verified.url: 0.0, trusting.url: 0.0}
            for round_ in range(ROUNDS):  # alternate which hub goes first
                for hub in (verified, trusting) if round_ % 2 == 0 else (trusting, verified):
                    totals[hub.url] += await requests_per_second(hub, tokens, ROUND_SECONDS)
            ours, theirs = totals[verified.url], totals[trusting.url]
        finally:
            await asyncio.gather(*(h.stop() for h in hubs))
            await standin.stop()
    return [
        Figure(
            name=f"cloudflare-access: authenticated GET /hub/api/user ({CLIENTS} clients)",
            value=ours / ROUNDS,
            unit="req/s",
            baseline=theirs / ROUNDS,
            baseline_name="header trusted unverified",
            target=">= 0.9x",
        )
    ]
