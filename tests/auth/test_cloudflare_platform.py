"""``dev --auth cloudflare`` end to end: browser → stand-in edge → proxy → hub → a spawned server.

The local platform (emulator, process kubelet, real JupyterLab) in its Cloudflare mode: the
stand-in's edge in front of the proxy, the hub running ``cloudflare-access`` against it. A user
signs in at the edge, spawns a server and talks to a kernel over a websocket, all through the
edge (which adds the Access header on the hub's paths; the server is reached by its OAuth).
"""

from __future__ import annotations

import aiohttp
import pytest
from edge_browser import EdgeBrowser

from jupyterhub_platform.devcluster.platform import LocalPlatform

pytestmark = [pytest.mark.jh6_only, pytest.mark.e2e]


async def test_sign_in_spawn_and_kernel_websocket_through_the_edge(tmp_path, z2jh_chart):
    platform = LocalPlatform(tmp_path / "platform", chart=z2jh_chart, auth="cloudflare")
    async with platform:
        edge_url = platform.public_url
        assert edge_url != platform.hub_url
        async with EdgeBrowser(edge_url) as browser:
            response = await browser.sign_in("alice@example.org")
            assert response.status == 200 and str(response.url) == f"{edge_url}/hub/home"
            await browser.spawn("alice")
            await browser.wait_ready("alice")
            kernel = await browser.start_kernel("alice")
            reply, _ = await browser.kernel_request("alice", kernel, "kernel_info_request", {})
            assert reply["msg_type"] == "kernel_info_reply"
        assert (await _user(platform, "alice"))["groups"] == ["researchers"]


async def _user(platform: LocalPlatform, name: str) -> dict:
    headers = {"Authorization": f"token {platform.admin_token}"}
    async with (
        aiohttp.ClientSession() as s,
        s.get(f"{platform.hub_api_url}/users/{name}", headers=headers) as r,
    ):
        return await r.json()
