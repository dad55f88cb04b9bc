"""A browser at the Cloudflare stand-in's edge of the local platform: sign-in, servers, kernels."""

from __future__ import annotations

import html
import json
import re
import uuid

import aiohttp
from yarl import URL

from jupyterhub_platform.devcluster.procs import wait_for

HIDDEN_INPUT = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)"')


class EdgeBrowser:
    """One cookie jar talking to the hub and servers only through the edge, as a person would."""

    def __init__(self, edge_url: str):
        self.edge_url = edge_url
        self.session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))

    async def __aenter__(self) -> EdgeBrowser:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.session.close()

    async def sign_in(self, email: str, redirect: str = "/hub/home") -> aiohttp.ClientResponse:
        """Sign in at the edge's Access page, then follow the redirect (a hub page by default)."""
        form = {"email": email, "redirect_url": redirect}
        async with self.session.post(f"{self.edge_url}/cdn-cgi/access/login", data=form) as r:
            await r.read()
            return r

    def xsrf_headers(self, path: str) -> dict[str, str]:
        cookie = self.session.cookie_jar.filter_cookies(URL(f"{self.edge_url}{path}")).get("_xsrf")
        return {"X-XSRFToken": cookie.value} if cookie else {}

    async def get(self, path: str, **kwargs) -> tuple[int, str]:
        async with self.session.get(f"{self.edge_url}{path}", **kwargs) as r:
            return r.status, await r.text()

    async def spawn(self, name: str) -> None:
        path = f"/hub/api/users/{name}/server"
        async with self.session.post(
            f"{self.edge_url}{path}", headers=self.xsrf_headers("/hub/"), json={}
        ) as r:
            assert r.status in (201, 202), await r.text()

    async def wait_ready(self, name: str, timeout: float = 120) -> None:
        """Until ``name``'s server answers this browser (opening a page runs its OAuth)."""

        async def ready() -> bool:
            async with self.session.get(f"{self.edge_url}/user/{name}/api/status") as r:
                if r.status != 403:
                    return r.status == 200
            async with self.session.get(f"{self.edge_url}/user/{name}/lab") as r:
                await r.read()
            return False

        await wait_for(ready, timeout=timeout, interval=0.5, what=f"{name}'s server via the edge")

    async def authorize_oauth(self, path: str) -> tuple[int, str]:
        """GET ``path`` of someone else's server, confirming the hub's OAuth page on the way."""
        async with self.session.get(f"{self.edge_url}{path}") as r:
            page, url = await r.text(), r.url
        if "/hub/api/oauth2/authorize" not in url.path:
            return r.status, page
        form = [(n, html.unescape(v)) for n, v in HIDDEN_INPUT.findall(page)]
        async with self.session.post(url, data=form) as r:
            return r.status, await r.text()

    async def start_kernel(self, name: str) -> str:
        path = f"/user/{name}/api/kernels"
        async with self.session.post(
            f"{self.edge_url}{path}", headers=self.xsrf_headers(f"/user/{name}/"), json={}
        ) as r:
            assert r.status == 201, await r.text()
            return (await r.json())["id"]

    async def kernel_request(
        self, name: str, kernel: str, msg_type: str, content: dict
    ) -> tuple[dict, str]:
        """Send one shell request over the kernel's websocket; its reply and the printed output."""
        channels = f"{self.edge_url}/user/{name}/api/kernels/{kernel}/channels"
        msg_id = uuid.uuid4().hex
        header = {"msg_id": msg_id, "msg_type": msg_type, "username": name}
        message = {
            "header": {**header, "session": uuid.uuid4().hex, "version": "5.3"},
            "parent_header": {},
            "metadata": {},
            "content": content,
            "channel": "shell",
        }
        output: list[str] = []
        reply: dict = {}
        idle = []
        async with self.session.ws_connect(channels) as socket:
            await socket.send_str(json.dumps(message))

            async def replied() -> bool:
                """The reply and the kernel's return to idle (all output is in by then)."""
                got = json.loads((await socket.receive(timeout=60)).data)
                if got.get("parent_header", {}).get("msg_id") == msg_id:
                    if got["msg_type"] == "stream":
                        output.append(got["content"]["text"])
                    elif got["msg_type"] == msg_type.replace("_request", "_reply"):
                        reply.update(got)
                    elif (
                        got["msg_type"] == "status" and got["content"]["execution_state"] == "idle"
                    ):
                        idle.append(True)
                return bool(reply and idle)

            await wait_for(replied, timeout=90, what=f"the kernel's {msg_type} reply")
        return reply, "".join(output)

    async def execute(self, name: str, kernel: str, code: str) -> str:
        """Run ``code`` in the kernel; its printed output (a failed execution fails the test)."""
        reply, output = await self.kernel_request(
            name, kernel, "execute_request", {"code": code, "silent": False}
        )
        assert reply["content"]["status"] == "ok", reply["content"]
        return output
