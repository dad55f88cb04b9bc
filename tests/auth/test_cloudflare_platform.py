"""``dev --auth cloudflare`` end to end: browser → stand-in edge → proxy → hub → a spawned server.

The local platform (emulator, process kubelet, real JupyterLab) in its Cloudflare mode: the
stand-in's edge in front of the proxy, the hub running ``cloudflare-access`` against it. A user signs in at the edge, spawns a server and talks
to a kernel over a websocket, all through the edge, which adds the Access header throughout.
"""

from __future__ import annotations

import json
import uuid

import aiohttp
import pytest
from yarl import URL

from jupyterhub_platform.devcluster.platform import LocalPlatform
from jupyterhub_platform.devcluster.procs import wait_for

pytestmark = pytest.mark.e2e


async def test_sign_in_spawn_and_kernel_websocket_through_the_edge(tmp_path, z2jh_chart):
    platform = LocalPlatform(tmp_path / "platform", chart=z2jh_chart, auth="cloudflare")
    async with platform:
        edge_url = platform.public_url
        assert edge_url != platform.hub_url
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
            form = {"email": "alice@example.org", "redirect_url": "/hub/home"}
            async with browser.post(f"{edge_url}/cdn-cgi/access/login", data=form) as r:
                assert r.status == 200 and str(r.url) == f"{edge_url}/hub/home"
            xsrf = browser.cookie_jar.filter_cookies(URL(f"{edge_url}/hub/")).get("_xsrf").value
            async with browser.post(
                f"{edge_url}/hub/api/users/alice/server", headers={"X-XSRFToken": xsrf}, json={}
            ) as r:
                assert r.status in (201, 202), await r.text()

            async def ready() -> bool:
                async with browser.get(f"{edge_url}/user/alice/api/status") as r:
                    if r.status != 403:
                        return r.status == 200
                # Up, but no cookie for it yet: a page runs the server's OAuth with the hub.
                async with browser.get(f"{edge_url}/user/alice/lab") as r:
                    await r.read()
                return False

            await wait_for(ready, timeout=120, interval=0.5, what="alice's server through the edge")
            server_xsrf = browser.cookie_jar.filter_cookies(URL(f"{edge_url}/user/alice/")).get("_xsrf")
            headers = {"X-XSRFToken": server_xsrf.value} if server_xsrf else {}
            async with browser.post(f"{edge_url}/user/alice/api/kernels", headers=headers, json={}) as r:
                assert r.status == 201, await r.text()
                kernel = (await r.json())["id"]
            channels = f"{edge_url}/user/alice/api/kernels/{kernel}/channels"
            async with browser.ws_connect(channels) as socket:
                msg_id = uuid.uuid4().hex
                await socket.send_str(json.dumps({
                    "header": {"msg_id": msg_id, "msg_type": "kernel_info_request", "username": "alice",
                               "session": uuid.uuid4().hex, "version": "5.3"},
                    "parent_header": {}, "metadata": {}, "content": {}, "channel": "shell",
                }))

                async def reply() -> bool:
                    message = json.loads((await socket.receive(timeout=30)).data)
                    return message.get("parent_header", {}).get("msg_id") == msg_id and message["msg_type"] == "kernel_info_reply"

                await wait_for(reply, timeout=60, what="kernel_info_reply over the websocket")
        assert (await _user(platform, "alice"))["groups"] == ["researchers"]


async def _user(platform: LocalPlatform, name: str) -> dict:
    headers = {"Authorization": f"token {platform.admin_token}"}
    async with aiohttp.ClientSession() as s, s.get(f"{platform.hub_api_url}/users/{name}", headers=headers) as r:
        return await r.json()
