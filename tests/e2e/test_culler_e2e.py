"""The culler on the local platform: the stock chart's hub config runs it as a hub-managed
service (chart-values' ``hub.services.culler``), with the shipped policy's culling section
swapped for short timeouts. Activity is real: JupyterLab REST calls through the proxy, reported
to the hub by jupyterhub-singleuser every few seconds."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import tempfile
from functools import partial
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
import yaml
from audit_lines import audit_events
from browser import SCREENSHOTS, START_TIMEOUT_MS, goto, jupyterlab_loaded, sign_in_at_the_idp
from hub_user import ARTIFACTS, HubUser, require_programs
from platform_values import CULLER, fast_culler_values

from jupyterhub_platform.chart.values import load_values_file, policy_in_values
from jupyterhub_platform.devcluster.platform import LocalPlatform, shipped_values_dir
from jupyterhub_platform.devcluster.procs import wait_for

# On the hub image's matrix (the culler runs in the hub pod): its cases wait on real clocks, and
# both matrices at once exceed CI's time on two cores.
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.jh55_only,
    pytest.mark.waits,
    pytest.mark.asyncio(loop_scope="session"),
]

IDLE = 30  # seconds: the test policies' idle timeout
MAX_AGE = 120  # from the spawn request: leaves a slow spawn time to be used past IDLE
EVERY = 3
WARN_BEFORE = 15  # seconds: JupyterLab warns when the stop is this near


def short_policy_text() -> str:
    """The shipped policy with short limits: standard (the profiles' and the default) idles
    out after IDLE; jupyterlab with the scipy image also lives at most MAX_AGE."""
    shipped = policy_in_values(load_values_file(shipped_values_dir() / "values.yaml")).text
    policy = yaml.safe_load(shipped)
    culling = policy["culling"]
    culling["policies"]["standard"] = {"idle_timeout": IDLE}
    culling["policies"]["desktop"] = {"idle_timeout": IDLE * 2}  # the desktop kind's own
    culling["policies"]["short-life"] = {"idle_timeout": IDLE, "max_age": MAX_AGE}
    culling["rules"].append(
        {"profile": "jupyterlab", "choice": "image/scipy", "policy": "short-life"}
    )
    return yaml.safe_dump(policy, sort_keys=False)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def culled(z2jh_chart):
    """A platform whose culler checks every EVERY seconds under the test policy."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    state_dir = Path(tempfile.mkdtemp(prefix="culler-", dir=ARTIFACTS))
    extra = fast_culler_values(short_policy_text(), EVERY, WARN_BEFORE)
    async with LocalPlatform(state_dir, chart=z2jh_chart, extra_values=extra) as platform:
        yield platform


@pytest_asyncio.fixture(loop_scope="session")
async def users(culled):
    made: list[HubUser] = []

    def make(name: str) -> HubUser:
        made.append(HubUser(culled.hub_url, name))
        return made[-1]

    yield make
    headers = {"Authorization": f"token {culled.admin_token}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        for user in made:
            model = await (await session.get(f"{culled.hub_api_url}/users/{user.name}")).json()
            for name in model.get("servers", {}):
                path = f"servers/{name}" if name else "server"
                await session.delete(f"{culled.hub_api_url}/users/{user.name}/{path}")
            await user.close()


async def servers(user: HubUser) -> dict:
    return (await user.model()).get("servers", {})


async def spawn(user: HubUser, name: str = "", **options) -> None:
    path = f"/users/{user.name}/servers/{name}" if name else f"/users/{user.name}/server"
    resp = await user.api("POST", path, json={"profile": "jupyterlab"} | options)
    assert resp.status in (201, 202), await resp.text()

    async def ready() -> bool:
        return bool((await servers(user)).get(name, {}).get("ready"))

    await wait_for(ready, timeout=120, interval=0.5, what=f"{user.name}/{name} ready")


async def wait_stopped(user: HubUser, name: str = "", timeout: float = IDLE * 4) -> None:
    async def gone() -> bool:
        return name not in await servers(user)

    await wait_for(gone, timeout=timeout, interval=0.5, what=f"{user.name}/{name} culled")


def hub_log(platform) -> str:
    return (platform.logs_dir / "hub.log").read_text(errors="replace")


async def test_idle_server_is_culled_and_an_exempt_groups_is_not(culled, users):
    alice, bob = users("alice"), users("bob")  # bob is in platform-admins: policy "admins"
    assert await alice.login() == 302 and await bob.login() == 302
    await asyncio.gather(spawn(alice), spawn(bob))
    await wait_stopped(alice)
    log = hub_log(culled)
    (event,) = audit_events(log, "server.cull", subject="alice", server="")
    assert (event["actor"], event["result"], event["reason"]) == ("culler", "ok", "idle")
    assert (event["details"]["profile"], event["details"]["policy"]) == ("jupyterlab", "standard")
    assert not audit_events(log, "server.cull", subject="bob")
    bob_server = (await servers(bob))[""]
    assert bob_server["ready"]
    # bob's server has now been idle past alice's limit too: exempt, not merely lucky
    await asyncio.sleep(EVERY * 2)
    assert "" in await servers(bob)
    headers = {"Authorization": f"token {culled.admin_token}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        resp = await session.get(f"{culled.hub_url}/services/culler/metrics")
        metrics = await resp.text()
        assert resp.status == 200, metrics
        resp = await session.get(f"{culled.hub_url}/services/culler/api/servers?all=1")
        listing = await resp.json()
    assert 'culler_servers_culled_total{dry_run="false",policy="standard",reason="idle"}' in metrics
    (row,) = [s for s in listing["servers"] if s["user"] == "bob"]
    assert (row["policy"], row["action"]) == ("admins", "exempt")


async def test_real_traffic_keeps_a_server_and_max_age_still_culls_it(culled, users):
    alice = users("alice")
    assert await alice.login() == 302
    await spawn(alice, image="scipy")  # the short-life policy: idle IDLE, max age MAX_AGE
    await alice.wait_ready()
    started = asyncio.get_running_loop().time()
    survived_idle = False
    saves = 0
    while "" in await servers(alice):
        # a person saving their notes (reads alone are not use: docs/activity.md)
        saves += 1
        note = {"type": "file", "format": "text", "content": f"draft {saves}\n"}
        resp = await alice.server("PUT", "/contents/notes.txt", json=note)
        if resp.status in (200, 201) and asyncio.get_running_loop().time() - started > IDLE + EVERY:
            survived_idle = True  # used past the idle timeout and still running
        await asyncio.sleep(2)
        assert asyncio.get_running_loop().time() - started < MAX_AGE * 4, "never culled"
    assert survived_idle
    assert "user=alice server=(default) profile=jupyterlab policy=short-life reason=max-age" in (
        hub_log(culled)
    )


async def test_an_idle_server_of_every_other_kind_is_culled_by_its_policy(culled, users):
    """VS Code, Streamlit and the desktop, each running for real and left alone (no browser:
    the activity tests show an open, untouched tab of each kind reports no use): culled by the
    policy their profile gets — the desktop by the rule for its kind."""
    require_programs("code-server", "streamlit", "jupyterhub-platform-streamlit")
    require_programs("vncserver", "Xvnc", "openbox", "xterm", "jupyterhub-platform-desktop-session")
    alice = users("alice")
    assert await alice.login() == 302
    kinds = {"code": "vscode", "app": "streamlit", "desk": "desktop"}
    await asyncio.gather(*(spawn(alice, name, profile=p) for name, p in kinds.items()))
    landing = {"code": "code-server", "app": "<title>Streamlit</title>", "desk": "noVNC"}

    async def opened(name: str) -> bool:  # the program started (a GET is not use)
        async with alice.session.get(f"{culled.hub_url}/user/alice/{name}/") as resp:
            return resp.status == 200 and landing[name] in await resp.text()

    for name in kinds:
        await wait_for(partial(opened, name), timeout=60, interval=0.5, what=f"{name} landed")
    await asyncio.gather(*(wait_stopped(alice, name, timeout=IDLE * 8) for name in kinds))
    log = hub_log(culled)
    for name, profile, policy in [
        ("code", "vscode", "standard"),
        ("app", "streamlit", "standard"),
        ("desk", "desktop", "desktop"),
    ]:
        assert audit_events(log, "server.cull", subject="alice", server=name, profile=profile,
                            policy=policy, reason="idle"), name  # fmt: skip


async def test_named_server_is_culled(culled, users):
    alice = users("alice")
    assert await alice.login() == 302
    await spawn(alice, "analysis")
    await wait_stopped(alice, "analysis")
    assert audit_events(hub_log(culled), "server.cull", subject="alice", server="analysis",
                        profile="jupyterlab", policy="standard", result="ok")  # fmt: skip


async def test_dry_run_stops_nothing(culled, users, tmp_path):
    """A one-shot dry-run culler with a policy under which alice's fresh server is idle."""
    alice = users("alice")
    assert await alice.login() == 302
    await spawn(alice, "dry")
    policy = yaml.safe_load(short_policy_text())
    policy["culling"]["policies"]["standard"] = {"idle_timeout": 1}
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump(policy, sort_keys=False))
    await asyncio.sleep(2)
    env = {
        "PATH": os.environ["PATH"],
        "JUPYTERHUB_API_URL": culled.hub_api_url,
        "JUPYTERHUB_API_TOKEN": culled.admin_token,
        "JUPYTERHUB_PLATFORM_POLICY": str(tmp_path / "policy.yaml"),
    }
    done = await asyncio.to_thread(
        subprocess.run,
        [CULLER, "--dry-run", "--once"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        start_new_session=True,
    )
    assert done.returncode == 0, done.stderr
    assert audit_events(done.stderr, "server.cull", subject="alice", server="dry",
                        profile="jupyterlab", policy="standard", result="dry_run")  # fmt: skip
    assert (await servers(alice))["dry"]["ready"]


async def test_user_page_shows_the_countdown_in_a_browser(culled, users, browser):
    """alice opens /services/culler/ (HubOAuth through the hub) and sees her server's policy and
    a countdown that ticks."""
    alice = users("alice")
    assert await alice.login() == 302
    await spawn(alice)
    await alice.wait_ready()

    async def use() -> None:  # she works in JupyterLab meanwhile, so the idle limit is not hit
        while True:
            await alice.server("GET", "/contents")
            await asyncio.sleep(2)

    working = asyncio.ensure_future(use())
    context = await browser.new_context()
    page = await context.new_page()
    try:
        await sign_in_at_the_idp(page, culled.hub_url, "alice")
        # with a running server the hub sends her on to JupyterLab: logged in is enough
        await page.wait_for_url(re.compile(r"/(hub|user)/"), wait_until="commit")
        await goto(page, f"{culled.hub_url}/services/culler/")
        row = page.locator("tr.server", has_text="(default)")
        await row.wait_for()
        assert "standard" in await row.inner_text()
        countdown = row.locator(".countdown")
        first = await countdown.inner_text()
        assert re.fullmatch(r"stops in \d+s if unused", first), first
        await page.wait_for_function(
            "t => document.querySelector('.countdown').textContent !== t", arg=first
        )
        later = await countdown.inner_text()
        assert int(re.search(r"\d+", later)[0]) < int(re.search(r"\d+", first)[0])
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(SCREENSHOTS / "culler-page.png"))
    finally:
        working.cancel()
        await context.close()


async def test_jupyterlab_warns_before_the_stop(culled, users, browser):
    """alice's JupyterLab shows no warning while she works, warns once she has left it
    WARN_BEFORE seconds before the idle stop (the cull-warning extension asking the culler),
    and the server is stopped after the warning."""
    alice = users("alice")
    assert await alice.login() == 302
    await spawn(alice)
    await alice.wait_ready()
    saves = 0

    async def work() -> (
        None
    ):  # saving her notes every 2 s: use, so the stop stays > IDLE - 4 s away
        nonlocal saves
        while True:
            saves += 1
            note = {"type": "file", "format": "text", "content": f"draft {saves}\n"}
            await alice.server("PUT", "/contents/notes.txt", json=note)
            await asyncio.sleep(2)

    working = asyncio.ensure_future(work())
    context = await browser.new_context()
    page = await context.new_page()
    warning = page.get_by_text(re.compile("will be stopped in about"))
    try:
        await sign_in_at_the_idp(page, culled.hub_url, "alice")
        await page.wait_for_url(re.compile(r"/user/alice/lab"), timeout=START_TIMEOUT_MS)
        await jupyterlab_loaded(page)
        at = saves
        await wait_for(lambda: saves >= at + 4, timeout=60, interval=0.5, what="more saves")
        assert await warning.count() == 0, "warned while in use"
        working.cancel()
        await warning.wait_for(timeout=IDLE * 3 * 1000)
        text = await warning.first.inner_text()
        assert "if it stays unused" in text and "culling policy 'standard'" in text, text
        assert "" in await servers(alice), "the warning came after the stop"
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(SCREENSHOTS / "culler-warning.png"))
        await wait_stopped(alice)
    finally:
        working.cancel()
        await context.close()
