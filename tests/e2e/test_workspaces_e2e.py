"""The workspace kinds run for real on the local platform, started from the shipped profiles.

Each server's programs are real local processes (the kubelet runs the container's command on the
pod's loopback IP), behind jupyter-server-proxy in the single-user server: code-server through
jupyter-vscode-proxy, the user's Streamlit app, TigerVNC + noVNC through
jupyter-remote-desktop-proxy (docs/workspaces.md). They are installed by
``.ci/install-workspace-tools``; a test whose programs are missing says so and skips (fails in CI).
"""

from __future__ import annotations

from pathlib import Path

import aiohttp
import psutil
import pytest
from hub_user import SPAWN_TIMEOUT, HubUser, require_programs

from jupyterhub_platform.devcluster.procs import wait_for

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.jh55_only,
    pytest.mark.asyncio(loop_scope="session"),
]


async def started(user: HubUser, profile: str) -> None:
    """Log in and start ``profile``; return once the hub reports the server ready."""
    assert await user.login() == 302
    await user.spawn({"profile": profile})

    async def ready() -> bool:
        server = (await user.model()).get("servers", {}).get("")
        return bool(server and server.get("ready"))

    await wait_for(ready, timeout=SPAWN_TIMEOUT, interval=0.25, what=f"{user.name}'s {profile}")


async def page(user: HubUser, path: str, *, expect: str, timeout: float = 60) -> str:
    """GET ``/user/<name>/<path>`` (following the OAuth redirects) until 200 with ``expect`` in it.

    Returns the path the redirects landed on. Proxied programs start on the first request and
    answer 5xx until they listen, hence the retries.
    """
    seen: dict[str, object] = {}

    async def loaded() -> bool:
        async with user.session.get(f"{user.server_url}/{path}") as resp:
            body = await resp.text()
            seen.update(status=resp.status, url=resp.url.path, body=body[:300])
            return resp.status == 200 and expect in body

    try:
        await wait_for(loaded, timeout=timeout, interval=0.5, what=f"{expect!r} at /{path}")
    except TimeoutError as exc:
        raise AssertionError(f"{exc}; last answer: {seen}") from exc
    return str(seen["url"])


async def test_vscode_users_land_in_code_server(hub):
    require_programs("code-server")
    alice = hub("alice")
    await started(alice, "vscode")
    landed = await page(alice, "", expect="code-server")
    assert landed == "/user/alice/vscode/"


async def test_streamlit_app_is_served_to_its_owner_only(hub):
    require_programs("streamlit", "jupyterhub-platform-streamlit")
    # bob runs the app and alice tries it: alice holds no access to other users' servers (bob is
    # a hub admin, and JupyterHub admins may open any server after an explicit consent page).
    bob = hub("bob")
    await started(bob, "streamlit")
    landed = await page(bob, "", expect="<title>Streamlit</title>")
    assert landed == "/user/bob/streamlit/"
    await page(bob, "streamlit/_stcore/health", expect="ok")
    # The app's content travels over Streamlit's websocket, through CHP and the server's proxy.
    async with bob.session.ws_connect(f"{bob.server_url}/streamlit/_stcore/stream") as ws:
        assert not ws.closed

    alice = hub("alice")
    assert await alice.login() == 302
    for path in ("streamlit/", "streamlit/_stcore/health"):
        async with alice.session.get(f"{bob.server_url}/{path}") as resp:
            body = await resp.text()
        assert resp.status == 403, f"alice got {resp.status} at {resp.url}"
        assert "<title>Streamlit</title>" not in body and body.strip() != "ok"
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        async with alice.session.ws_connect(f"{bob.server_url}/streamlit/_stcore/stream"):
            pass
    assert refused.value.status == 403


def vnc_servers(state_dir: Path) -> list[psutil.Process]:
    """The platform's VNC server processes (their HOME is a home directory in ``state_dir``)."""
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        try:
            if "rfbunixpath" not in " ".join(proc.info["cmdline"] or []):
                continue
            if proc.environ().get("HOME", "").startswith(str(state_dir)):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


async def test_desktop_users_land_on_a_vnc_desktop(hub, platform):
    require_programs("vncserver", "Xvnc", "openbox", "xterm", "jupyterhub-platform-desktop-session")
    alice = hub("alice")
    await started(alice, "desktop")
    landed = await page(alice, "", expect="noVNC")
    assert landed == "/user/alice/desktop/"
    # noVNC's websocket reaches TigerVNC, which greets with its RFB protocol version.
    async with alice.session.ws_connect(
        f"{alice.server_url}/desktop-websockify/", protocols=("binary",)
    ) as ws:
        greeting = await ws.receive_bytes(timeout=30)
    assert greeting.startswith(b"RFB 003."), greeting
    assert vnc_servers(platform.state_dir)

    await alice.stop()
    await wait_for(
        lambda: not vnc_servers(platform.state_dir),
        timeout=20,
        interval=0.25,
        what="the VNC server to stop with the server",
    )
