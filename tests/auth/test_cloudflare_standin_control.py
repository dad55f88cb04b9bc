"""The stand-in's ``/_standin`` control API mints any identity: only its owner may call it.

A browser page on another site can POST ``text/plain`` to any local port without a CORS
preflight; a local user can call any port. Neither knows the bearer token, and neither can send
it or a JSON body cross-site without a preflight the stand-in never answers.
"""

from __future__ import annotations

import sys

import aiohttp
import cloudflare_fixtures as fixtures
import pytest

from jupyterhub_platform.devcluster.procs import ManagedProcess, free_port, wait_serving

pytestmark = pytest.mark.processes  # the stand-in

cloudflare = fixtures.cloudflare


async def test_control_api_needs_the_bearer_token_and_json(cloudflare):
    tokens = f"{cloudflare.url}/_standin/tokens"
    bearer = {"Authorization": f"Bearer {cloudflare.control_token}"}
    async with aiohttp.ClientSession() as s:
        async with s.post(tokens, json={"email": "bob@example.org"}) as r:
            assert r.status == 401 and "eyJ" not in await r.text()  # no JWT minted
        async with s.post(tokens, json={}, headers={"Authorization": "Bearer wrong"}) as r:
            assert r.status == 401
        cross_site = {**bearer, "Content-Type": "text/plain"}
        async with s.post(tokens, data='{"email": "bob@example.org"}', headers=cross_site) as r:
            assert r.status == 415
        async with s.put(f"{cloudflare.url}/_standin/outage", json={"certs": True}) as r:
            assert r.status == 401
        async with s.get(f"{cloudflare.url}/_standin/stats") as r:
            assert r.status == 401
        async with s.get(cloudflare.ready_url) as r:
            assert r.status == 200  # the refused outage request changed nothing
        async with s.post(tokens, json={"email": "bob@example.org"}, headers=bearer) as r:
            assert r.status == 200 and (await r.json())["token"].count(".") == 2
    assert cloudflare.control_token not in " ".join(cloudflare.argv())


async def test_control_api_is_off_without_a_token_file(tmp_path):
    port = free_port()
    proc = ManagedProcess(
        [
            sys.executable,
            "-m",
            "jupyterhub_platform.devcluster.cloudflare",
            "--port",
            str(port),
        ],
        name="cloudflare-standin",
        log_path=tmp_path / "standin.log",
    )
    try:
        await wait_serving(
            proc, f"http://127.0.0.1:{port}/cdn-cgi/access/certs", timeout=30, what="stand-in"
        )
        async with aiohttp.ClientSession() as s:
            async with s.post(f"http://127.0.0.1:{port}/_standin/tokens", json={}) as r:
                assert r.status == 404
    finally:
        await proc.astop(grace=2)
