"""The identity provider down while the hub starts: the hub serves, logins get a 503 naming the
provider, and the first login once the provider is back works, with no hub restart."""

from __future__ import annotations

import tempfile
from pathlib import Path

import aiohttp
import pytest
from hub_user import ARTIFACTS, HubUser

from jupyterhub_platform.devcluster.platform import LocalPlatform

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]


async def test_hub_starts_without_the_idp_and_logins_work_once_it_is_back(z2jh_chart):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    state_dir = Path(tempfile.mkdtemp(prefix="idp-outage-", dir=ARTIFACTS))
    async with LocalPlatform(
        state_dir, chart=z2jh_chart, kubelet="none", idp_running=False
    ) as platform:
        hub_pid = next(p.pid for p in platform.components() if p.name == "hub")
        alice = HubUser(platform.hub_url, "alice")
        try:
            async with alice.session.get(f"{platform.hub_url}/hub/login") as resp:
                assert resp.status == 200 and "Platform login" in await resp.text()
            async with alice.session.get(f"{platform.hub_url}/hub/oauth_login") as resp:
                page = await resp.text()
                assert resp.status == 503, page
            host = platform.idp_url.removeprefix("http://")
            assert f"Platform login ({host}) cannot be reached right now" in page

            await platform.start_idp()
            assert await alice.login() == 302  # the first login after the provider is back
            assert "researchers" in (await _user(platform, "alice"))["groups"]
            assert next(p.pid for p in platform.components() if p.name == "hub") == hub_pid
        finally:
            await alice.close()
    log = (state_dir / "logs" / "hub.log").read_text()
    assert "OIDC discovery failed" in log and "logins answer 503" in log


async def _user(platform: LocalPlatform, name: str) -> dict:
    headers = {"Authorization": f"token {platform.admin_token}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.get(f"{platform.hub_api_url}/users/{name}") as resp:
            assert resp.status == 200, await resp.text()
            return await resp.json()
