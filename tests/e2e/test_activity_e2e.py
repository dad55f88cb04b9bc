"""Honest activity, end to end: the hub's ``last_activity`` for a server moves when a person uses
the workspace, or a job they started is busy, and not otherwise (docs/activity.md).

A platform of its own, with the servers reporting every :data:`INTERVAL` seconds and the hub
polling the proxy as often: with stock CHP activity, any byte an open tab sends would move the
value within one interval. Each kind runs for real in headless Chromium (JupyterLab, code-server,
Streamlit, noVNC); the busy terminal speaks the browser's protocol with aiohttp. Assertions are
on the hub's REST ``last_activity`` values only. What each open tab sent while it was left alone
is written to ``test-artifacts/e2e/activity/<kind>.json`` (the measurement behind the rules).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import Counter
from collections.abc import Callable
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from urllib.parse import urlsplit

import aiohttp
import pytest
import pytest_asyncio
from browser import (
    SCREENSHOTS,
    START_TIMEOUT_MS,
    jupyterlab_loaded,
    log_in,
    visible_after_reloads,
)
from hub_user import ARTIFACTS, hub_users, local_platform, require_programs

from jupyterhub_platform.devcluster.procs import wait_for
from jupyterhub_platform.workspace.protocols import vscode_messages

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.waits,
    pytest.mark.asyncio(loop_scope="session"),
]

INTERVAL = 2
"""JUPYTERHUB_ACTIVITY_INTERVAL of the servers and the hub's last_activity_interval (seconds)."""
QUIET = 6 * INTERVAL
"""A value unchanged over this many seconds has settled (every report in between agreed)."""
LEFT_ALONE = 30
"""How long an open tab is left untouched: longer than JupyterLab's 10 s polling, VS Code's 5 s
keep-alives and many reports and proxy polls."""
MEASUREMENTS = ARTIFACTS / "activity"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def activity_platform(z2jh_chart):
    extra = {
        "singleuser": {"extraEnv": {"JUPYTERHUB_ACTIVITY_INTERVAL": str(INTERVAL)}},
        "hub": {"config": {"JupyterHub": {"last_activity_interval": INTERVAL}}},
    }
    async with local_platform(z2jh_chart, "activity-", extra_values=extra) as running:
        yield running


@pytest_asyncio.fixture(loop_scope="session")
async def users(activity_platform):
    async with hub_users(activity_platform) as make:
        yield make


@pytest_asyncio.fixture(loop_scope="session")
async def activity(activity_platform, users):
    """The hub's view of alice's server (stopped after the test)."""
    users("alice")
    return HubActivity(activity_platform, "alice")


class HubActivity:
    """The hub's REST view of one user's default server: its ``last_activity``."""

    def __init__(self, platform, name: str):
        self.url = f"{platform.hub_api_url}/users/{name}"
        self.headers = {"Authorization": f"token {platform.admin_token}"}

    async def value(self) -> datetime:
        async with aiohttp.ClientSession(headers=self.headers) as session:
            async with session.get(self.url) as resp:
                assert resp.status == 200, await resp.text()
                server = (await resp.json())["servers"][""]
        return datetime.fromisoformat(server["last_activity"].replace("Z", "+00:00"))

    async def values_over(self, seconds: float) -> list[datetime]:
        """Every distinct value the hub reported while ``seconds`` passed, in order."""
        seen: list[datetime] = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            value = await self.value()
            if not seen or seen[-1] != value:
                seen.append(value)
            await asyncio.sleep(0.5)
        return seen

    async def settled(self, timeout: float = 120) -> datetime:
        """The value once it has not moved for :data:`QUIET` seconds (the load's use reported)."""
        result: list[datetime] = []

        async def quiet() -> bool:
            seen = await self.values_over(QUIET)
            result[:] = seen[-1:]
            return len(seen) == 1

        await wait_for(quiet, timeout=timeout, interval=0, what="the server's activity to settle")
        return result[0]

    async def moved_past(self, value: datetime, what: str, timeout: float = 60) -> datetime:
        """The first value after ``value`` (fails after ``timeout`` seconds)."""
        latest: list[datetime] = []

        async def moved() -> bool:
            latest[:] = [await self.value()]
            return latest[0] > value

        await wait_for(moved, timeout=timeout, interval=0.5, what=what)
        return latest[0]


def head(payload: str | bytes) -> str:
    """The start of a websocket frame, to read in a measurement."""
    return payload[:40] if isinstance(payload, str) else payload[:24].hex()


def vscode_names(payload: str | bytes) -> str:
    """A VS Code frame's PersistentProtocol messages, named as the extension's rule sees them."""
    names = vscode_messages(payload) if isinstance(payload, bytes) else None
    return " ".join(names) if names is not None else f"unparsed {head(payload)}"


class Traffic:
    """What a page sends: HTTP requests by method and path, websocket frames by path and what
    ``describe`` makes of them."""

    def __init__(self, page, describe: Callable[[str | bytes], str] = head):
        self.describe = describe
        self.requests: Counter[str] = Counter()
        self.frames: dict[str, Counter[str]] = {}
        page.on("request", lambda r: self.requests.update([f"{r.method} {_path(r.url)}"]))
        page.on("websocket", self._websocket)

    def _websocket(self, ws) -> None:
        path = _path(ws.url)
        ws.on(
            "framesent",
            lambda payload: self.frames.setdefault(path, Counter()).update(
                [self.describe(payload)]
            ),
        )

    def reset(self) -> None:
        self.requests.clear()
        self.frames.clear()

    def save(self, kind: str) -> dict:
        MEASUREMENTS.mkdir(parents=True, exist_ok=True)
        sent = {
            "seconds": LEFT_ALONE,
            "http": dict(self.requests),
            "ws_frames": {path: dict(frames) for path, frames in self.frames.items()},
        }
        (MEASUREMENTS / f"{kind}.json").write_text(json.dumps(sent, indent=2) + "\n")
        return sent


def now() -> datetime:
    """The machine's clock, which the hub and the servers share on the local platform."""
    return datetime.now(timezone.utc)


def _path(url: str) -> str:
    return urlsplit(url).path


@asynccontextmanager
async def workspace(browser, platform, name: str, profile: str, landing: str, kind: str, **traffic):
    """Log in in Chromium, start ``profile`` from the spawn page, land at ``landing``; yields
    the page and its :class:`Traffic`. A screenshot of the end (or of the failure) stays in
    test-artifacts/browser/; the tab is closed on exit."""
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    recorder = Traffic(page, **traffic)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    try:
        form = await log_in(page, platform.hub_url, name)
        await form.get_by_role("radio", name=profile).click()
        await page.get_by_role("button", name="Start").click()
        await page.wait_for_url(re.compile(f"/user/{name}/{landing}"), timeout=START_TIMEOUT_MS)
        yield page, recorder
    except BaseException:
        await page.screenshot(path=SCREENSHOTS / f"activity-{kind}-failure.png")
        # the text too: a proxy's error page says why an app never appeared
        (SCREENSHOTS / f"activity-{kind}-failure.txt").write_text(
            f"{page.url}\n{await page.inner_text('body')}\n"
        )
        raise
    else:
        await page.screenshot(path=SCREENSHOTS / f"activity-{kind}.png")
    finally:
        await context.close()


async def left_alone(
    activity: HubActivity, traffic: Traffic, kind: str, page=None, polls: tuple[str, ...] = ()
) -> datetime:
    """Leave the open tab untouched: the hub's value must not move, though the tab talks.

    ``polls``: paths the tab also GETs every few seconds, as its own pollers do (JupyterLab's
    timers may be throttled by the browser and send nothing in the window)."""
    try:
        settled = await activity.settled()
    except TimeoutError:
        traffic.save(kind)  # what kept it moving, for the post-mortem
        raise
    traffic.reset()
    answers: list[str] = []
    poller = asyncio.create_task(_poll_from(page, polls, answers)) if polls else None
    try:
        seen = await activity.values_over(LEFT_ALONE)
    finally:
        if poller:
            poller.cancel()
            await asyncio.gather(poller, return_exceptions=True)
    assert not polls or answers, "the tab's polls never got an answer"
    assert all(a.startswith("200 ") for a in answers), answers
    sent = traffic.save(kind)
    assert seen == [settled], f"an untouched {kind} tab moved the activity; it sent {sent}"
    return settled


JUPYTERLAB_POLLS = ("api/kernels", "api/sessions", "api/terminals", "api/contents?content=1")
"""What JupyterLab's pollers GET (relative to the server's base URL)."""


GET_AS_JUPYTERLAB = """url => {
    const xsrf = document.cookie.match(/(?:^|; )_xsrf=([^;]*)/);
    const headers = xsrf ? {"X-XSRFToken": decodeURIComponent(xsrf[1])} : {};
    return fetch(url, {credentials: "same-origin", headers}).then(r => r.status);
}"""
"""A GET as JupyterLab's ServerConnection sends it: the session cookie and the XSRF header."""


async def _poll_from(page, paths: tuple[str, ...], answers: list[str]) -> None:
    """GET ``paths`` from the page, with its cookies, every 5 s until cancelled; each answer's
    status goes to ``answers``."""
    base = re.sub(r"(/user/[^/]+/).*", r"\1", page.url)
    while True:
        for path in paths:
            status = await page.evaluate(GET_AS_JUPYTERLAB, base + path)
            answers.append(f"{status} GET {path}")
        await asyncio.sleep(5)


@pytest.mark.jh55_only
async def test_jupyterlab_counts_use_and_a_busy_kernel_not_an_open_tab(
    browser, activity_platform, activity
):
    async with workspace(
        browser, activity_platform, "alice", "JupyterLab", "lab", "jupyterlab"
    ) as (page, traffic):
        await jupyterlab_loaded(page)
        await page.locator(".jp-LauncherCard[data-category='Notebook']").first.click(
            timeout=START_TIMEOUT_MS
        )
        cell = page.locator(".jp-Notebook .jp-Cell .cm-content").first
        await cell.wait_for(timeout=START_TIMEOUT_MS)
        # the notebook's kernel is ready when the toolbar shows it idle
        await page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").first.wait_for(
            timeout=START_TIMEOUT_MS
        )
        idle = await left_alone(activity, traffic, "jupyterlab", page, JUPYTERLAB_POLLS)
        assert traffic.requests, "the open JupyterLab tab sent no requests: nothing was measured"

        await cell.click()
        action = now()
        await page.keyboard.type("6 * 7")
        await page.keyboard.press("Shift+Enter")
        await page.locator(".jp-OutputArea-output", has_text="42").wait_for()
        assert await activity.moved_past(max(idle, action), "a cell run to count") > idle

        # A long computation that prints nothing, then nobody is connected at all.
        cell = page.locator(".jp-Notebook .jp-Cell .cm-content").last
        await cell.click()
        await page.keyboard.type("import time; time.sleep(600)")
        await page.keyboard.press("Shift+Enter")
        await page.locator(".jp-Notebook-ExecutionIndicator[data-status='busy']").first.wait_for()
    # Reports later than the moment the last tab closed: only the busy kernel can make them.
    closed = now()
    busy = await activity.moved_past(closed, "the busy kernel to count after the tab closed")
    assert await activity.moved_past(busy, "the busy kernel to keep counting") > busy


@pytest.mark.jh55_only
async def test_a_cpu_busy_terminal_counts_an_idle_one_does_not(users, activity):
    alice = users("alice")
    assert await alice.login() == 302
    await alice.spawn({"profile": "jupyterlab"})
    await alice.wait_ready()

    async def run_in_terminal(command: str) -> None:
        """Open a terminal, type ``command`` as a person would, and leave (the job stays)."""
        resp = await alice.server("POST", "/terminals")
        assert resp.status == 200, await resp.text()
        name = (await resp.json())["name"]
        url = f"{alice.server_url}/terminals/websocket/{name}"
        async with alice.session.ws_connect(url) as ws:
            await ws.send_str(json.dumps(["set_size", 24, 80, 600, 800]))
            await ws.send_str(json.dumps(["stdin", f"{command}\r"]))
            await ws.receive(timeout=30)  # the shell answered

    before = await activity.settled()
    await run_in_terminal("sleep 600")
    left = now()
    idle_job = await activity.settled()
    assert before < idle_job <= left  # typing counted, and nothing after the person left:
    assert await activity.values_over(LEFT_ALONE / 2) == [idle_job]  # a sleeping job is idle

    await run_in_terminal("timeout 600 sh -c 'while :; do :; done'")
    left = now()
    busy = await activity.moved_past(left, "the CPU-busy terminal to count after the user left")
    assert await activity.moved_past(busy, "the CPU-busy terminal to keep counting") > busy


@pytest.mark.jh6_only
async def test_vscode_counts_use_not_an_open_window(browser, activity_platform, activity):
    require_programs("code-server")
    async with workspace(
        browser, activity_platform, "alice", "VS Code", "vscode/", "vscode", describe=vscode_names
    ) as (page, traffic):
        await page.locator(".monaco-workbench").wait_for(timeout=START_TIMEOUT_MS)
        # A fresh home: VS Code asks whether to trust the folder first.
        await page.get_by_role("button", name="Yes, I trust the authors").click(
            timeout=START_TIMEOUT_MS
        )
        idle = await left_alone(activity, traffic, "vscode")
        assert traffic.frames, "the open VS Code window sent nothing: nothing was measured"

        action = now()
        # The command center, then a terminal (it runs on the server) and a command typed in it.
        await page.locator(".command-center-center").click()
        await page.keyboard.type(">Terminal: Create New Terminal")
        await page.keyboard.press("Enter")
        await page.locator(".xterm").first.wait_for(timeout=START_TIMEOUT_MS)
        await page.keyboard.type("echo used\n")
        assert await activity.moved_past(max(idle, action), "typing in VS Code to count") > idle


@pytest.mark.jh6_only
async def test_streamlit_counts_widget_changes_not_an_open_app(
    browser, activity_platform, activity
):
    require_programs("streamlit", "jupyterhub-platform-streamlit")
    async with workspace(
        browser, activity_platform, "alice", "Streamlit app", "streamlit/", "streamlit"
    ) as (page, traffic):
        slider = page.get_by_role("slider")
        await visible_after_reloads(page, slider, "the Streamlit app")
        idle = await left_alone(activity, traffic, "streamlit")

        action = now()
        await slider.focus()
        await page.keyboard.press("ArrowRight")
        await page.keyboard.press("ArrowRight")
        assert await activity.moved_past(max(idle, action), "a slider change to count") > idle


@pytest.mark.jh55_only
async def test_desktop_counts_input_not_an_open_viewer(browser, activity_platform, activity):
    require_programs("vncserver", "Xvnc", "openbox", "xterm", "jupyterhub-platform-desktop-session")
    async with workspace(
        browser, activity_platform, "alice", "Linux desktop", "desktop/", "desktop"
    ) as (page, traffic):
        canvas = page.locator("#screen canvas")
        await canvas.wait_for(timeout=START_TIMEOUT_MS)
        status = page.locator("#status")
        await page.wait_for_function(
            "el => /connected/i.test(el.textContent) && !/dis/i.test(el.textContent)",
            arg=await status.element_handle(),
            timeout=START_TIMEOUT_MS,
        )
        idle = await left_alone(activity, traffic, "desktop")  # its websocket stays open

        box = await canvas.bounding_box()
        action = now()
        await page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        await page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        await page.keyboard.type("echo used")
        assert await activity.moved_past(max(idle, action), "VNC input to count") > idle
