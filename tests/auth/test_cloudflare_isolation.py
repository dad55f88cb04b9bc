"""Cloudflare Access on the local platform: one person's Access identity never serves another.

``dev --auth cloudflare``: browser → the stand-in's edge → proxy → hub and real JupyterLab
servers. Demo users: alice (researchers), bob (platform-admins: may open anyone's server).
"""

from __future__ import annotations

import json
import re

import aiohttp
import pytest
import pytest_asyncio
from edge_browser import EdgeBrowser

from jupyterhub_platform.auth.cloudflare import TOKEN_COOKIE, TOKEN_HEADER
from jupyterhub_platform.devcluster.platform import LocalPlatform

pytestmark = [pytest.mark.jh6_only, pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]

JWT = re.compile(r"eyJ[\w-]+\.eyJ[\w-]+\.[\w-]+")

# Alice's app: a tiny HTTP server in her kernel, reached at /user/alice/proxy/<port>/ through
# jupyter-server-proxy. It keeps every request's headers and shows them at /log.
RECORDER = """
import http.server, json, threading
seen = []
class Recorder(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/log":
            body = json.dumps(seen).encode()
        else:
            seen.append({"path": self.path, "headers": self.headers.items()})
            body = b"recorded"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
app = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
threading.Thread(target=app.serve_forever, daemon=True).start()
print(app.server_address[1])
"""


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def platform(tmp_path_factory):
    async with LocalPlatform(tmp_path_factory.mktemp("platform"), auth="cloudflare") as running:
        yield running


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def alice(platform):
    """Alice signed in at the edge, with her server running."""
    async with EdgeBrowser(platform.public_url) as browser:
        response = await browser.sign_in("alice@example.org")
        assert response.status == 200, await response.text()
        await browser.spawn("alice")
        await browser.wait_ready("alice")
        yield browser


async def test_alices_app_sees_no_access_credential_of_the_admin_who_opens_it(platform, alice):
    kernel = await alice.start_kernel("alice")
    port = int((await alice.execute("alice", kernel, RECORDER)).strip())
    app = f"/user/alice/proxy/{port}"

    async with EdgeBrowser(platform.public_url) as bob:
        assert (await bob.sign_in("bob@example.org")).status == 200
        bobs_access = next(c.value for c in bob.session.cookie_jar if c.key == TOKEN_COOKIE)
        status, body = await bob.authorize_oauth(f"{app}/opened-by-bob")  # admin: may open it
        assert (status, body) == (200, "recorded")

    status, body = await alice.get(f"{app}/log")
    assert status == 200
    requests = json.loads(body)
    assert [r["path"] for r in requests] == ["/opened-by-bob"]
    headers = {name.lower(): value for name, value in requests[0]["headers"]}
    assert TOKEN_HEADER.lower() not in headers
    assert TOKEN_COOKIE not in headers.get("cookie", "")
    assert bobs_access not in body and not JWT.search(body)  # nothing to replay at the hub

    # What a server could see under the alternative rule (Access on /user/ as a separate
    # application): its tokens carry another AUD, and the hub, reached directly from inside
    # (bypassing the edge, as a pod can), refuses them.
    replay = {TOKEN_HEADER: await mint_at_edge(platform, "bob@example.org", aud="user-servers")}
    async with aiohttp.ClientSession() as direct:
        async with direct.get(f"{platform.hub_url}/hub/home", headers=replay) as r:
            assert r.status == 403 and "wrong audience" in await r.text()
        async with direct.post(f"{platform.hub_url}/hub/api/users/bob/tokens", headers=replay) as r:
            assert r.status == 403


async def test_an_identity_switch_ends_the_previous_users_server_access(platform, alice):
    async with EdgeBrowser(platform.public_url) as browser:
        assert (await browser.sign_in("alice@example.org")).status == 200
        await browser.wait_ready("alice")  # this browser holds alice's server cookie now
        tokens_before = await oauth_tokens(platform, "alice")

        # The same browser signs in to Access as bob: the hub logs bob in, alice's session ends.
        response = await browser.sign_in("bob@example.org")
        assert response.status == 200 and str(response.url).endswith("/hub/home")
        status, body = await browser.get("/hub/api/user")
        assert status == 200 and json.loads(body)["name"] == "bob"

        status, _ = await browser.get("/user/alice/api/status", allow_redirects=False)
        assert status in (302, 403), status  # not alice's server any more, for this browser
        assert await oauth_tokens(platform, "alice") < tokens_before
    log = (platform.logs_dir / "hub.log").read_text(errors="replace")
    assert "alice's hub session ends (Access now vouches for bob)" in log


async def oauth_tokens(platform: LocalPlatform, name: str) -> int:
    """How many OAuth tokens the hub holds for ``name`` (those its servers' cookies carry)."""
    headers = {"Authorization": f"token {platform.admin_token}"}
    async with aiohttp.ClientSession(headers=headers) as s:
        async with s.get(f"{platform.hub_api_url}/users/{name}/tokens") as r:
            assert r.status == 200, await r.text()
            return sum(1 for t in (await r.json())["api_tokens"] if t.get("oauth_client"))


async def mint_at_edge(platform: LocalPlatform, email: str, **spec) -> str:
    """A token signed by the edge's Access keys, through its control API (owner only)."""
    token = (platform.logs_dir / "cloudflare-standin.control-token").read_text()
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(headers=headers) as s:
        async with s.post(
            f"{platform.public_url}/_standin/tokens", json={"email": email, **spec}
        ) as r:
            assert r.status == 200, await r.text()
            return (await r.json())["token"]
