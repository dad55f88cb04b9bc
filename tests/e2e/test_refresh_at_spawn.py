"""The pre-spawn refresh against the development IdP (issue 9), on whichever Python runs the suite.

OAuthenticator refreshes before every spawn (``refresh_pre_spawn``, on with auth_state). With the
client secret in the form body, oidc-provider-mock 0.3.x (Python 3.11) refused that refresh
grant and every spawn failed with "auth has expired"; the locks run this on 0.3.x (jh6 on the
machine's python3) and 0.4.x (jh55 on 3.12).
"""

from __future__ import annotations

import aiohttp
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]


async def auth_state(platform, name: str) -> dict:
    headers = {"Authorization": f"token {platform.admin_token}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.get(f"{platform.hub_api_url}/users/{name}") as resp:
            assert resp.status == 200
            return (await resp.json())["auth_state"]


async def test_the_spawn_refreshes_the_tokens_at_the_idp_and_starts(platform, hub):
    alice = hub("alice")
    assert await alice.login() == 302
    at_login = await auth_state(platform, "alice")

    await alice.spawn()  # the hub runs the refresh grant first (auth_refresh_age is 300 s)
    await alice.wait_ready()

    after = await auth_state(platform, "alice")
    assert after["access_token"] != at_login["access_token"]  # new tokens from the refresh
    assert after["oidc_identity"] == at_login["oidc_identity"]
    assert (await alice.model())["servers"][""]["ready"] is True
