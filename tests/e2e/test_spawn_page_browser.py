"""A real browser on the local platform: log in at the IdP, choose on the spawn page, land in the
workspace (JupyterLab, the VNC desktop, VS Code).

Headless Chromium (Debian's, driven by Playwright; Playwright's own browser downloads are never
used). Screenshots of the spawn page and of each workspace stay in ``test-artifacts/browser/``
for people to look at.
"""

from __future__ import annotations

import re

import aiohttp
import pytest
from browser import SCREENSHOTS, START_TIMEOUT_MS, log_in, sign_in_at_the_idp
from hub_user import require_programs

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]


async def test_a_user_logs_in_picks_a_profile_and_lands_in_jupyterlab(browser, platform, hub):
    hub("alice")  # registers alice's server for stopping after the test
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    try:
        form = await log_in(page, platform.hub_url, "alice")
        await page.screenshot(path=SCREENSHOTS / "spawn-page.png", full_page=True)

        # choose by click and keyboard, through the accessible names users see
        await form.get_by_role("radio", name="JupyterLab").click()
        card = page.locator(".jhp-card").filter(has=page.locator("#profile-jupyterlab"))
        image = card.get_by_label("Image", exact=True)
        await image.focus()
        await page.keyboard.press("ArrowDown")  # Minimal Python → Scientific Python
        assert await image.input_value() == "scipy"
        size = card.get_by_label("Size", exact=True)
        await size.select_option(label="High memory (4 CPU, 16 GiB RAM)")
        await page.screenshot(path=SCREENSHOTS / "spawn-page-chosen.png", full_page=True)
        await page.get_by_role("button", name="Start").click()

        await page.wait_for_url(re.compile(r"/user/alice/lab"), timeout=START_TIMEOUT_MS)
        await page.locator("#jp-main-dock-panel").wait_for(timeout=START_TIMEOUT_MS)
        await page.get_by_role("main").wait_for()
        await page.screenshot(path=SCREENSHOTS / "jupyterlab.png")
    except Exception:
        await page.screenshot(path=SCREENSHOTS / "failure.png", full_page=True)
        raise
    finally:
        await context.close()

    headers = {"Authorization": f"token {platform.admin_token}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.get(f"{platform.hub_api_url}/users/alice") as resp:
            server = (await resp.json())["servers"][""]
    assert server["user_options"] == {"profile": "jupyterlab", "image": "scipy", "size": "highmem"}


@pytest.mark.jh55_only
async def test_the_desktop_profile_shows_a_desktop_in_the_browser(browser, platform, hub):
    require_programs("vncserver")
    hub("bob")  # registers bob's server for stopping after the test
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    try:
        form = await log_in(page, platform.hub_url, "bob")
        await form.get_by_role("radio", name="Linux desktop").click()
        await page.get_by_role("button", name="Start").click()
        await page.wait_for_url(re.compile(r"/user/bob/desktop/"), timeout=START_TIMEOUT_MS)
        # noVNC draws the remote screen into a canvas once it is connected to the VNC server
        await page.locator("#screen canvas").wait_for(timeout=START_TIMEOUT_MS)
        status = page.locator("#status")
        await page.wait_for_function(
            "el => /connected/i.test(el.textContent) && !/dis/i.test(el.textContent)",
            arg=await status.element_handle(),
            timeout=START_TIMEOUT_MS,
        )
        await page.screenshot(path=SCREENSHOTS / "desktop.png")
    except Exception:
        await page.screenshot(path=SCREENSHOTS / "desktop-failure.png", full_page=True)
        raise
    finally:
        await context.close()


@pytest.mark.jh55_only
async def test_the_vscode_profile_opens_the_vscode_workbench(browser, platform, hub):
    require_programs("code-server")
    hub("alice")
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    try:
        form = await log_in(page, platform.hub_url, "alice")
        await form.get_by_role("radio", name="VS Code").click()
        await page.get_by_role("button", name="Start").click()
        await page.wait_for_url(re.compile(r"/user/alice/vscode/"), timeout=START_TIMEOUT_MS)
        await page.locator(".monaco-workbench").wait_for(timeout=START_TIMEOUT_MS)
        await page.screenshot(path=SCREENSHOTS / "vscode.png")
    except Exception:
        await page.screenshot(path=SCREENSHOTS / "vscode-failure.png", full_page=True)
        raise
    finally:
        await context.close()


async def test_a_refused_user_reads_the_reason_once_at_text_size(browser, platform):
    """carol is in no allowed group: the page titles the status and says why, once, as text."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    try:
        await sign_in_at_the_idp(page, platform.hub_url, "carol")
        heading = page.get_by_role("heading", level=1)
        await heading.wait_for()
        await page.screenshot(path=SCREENSHOTS / "refused.png", full_page=True)
        assert (await heading.inner_text()).strip() == "403 : Forbidden"
        reason = "Your account (carol) is not in any group that may use this hub."
        assert (await page.locator("body").inner_text()).count(reason) == 1
        text = page.get_by_text(reason)  # the innermost element holding the sentence
        text_size = await text.evaluate("e => getComputedStyle(e).fontSize")
        body_size = await page.evaluate("getComputedStyle(document.body).fontSize")
        assert text_size == body_size
    finally:
        await context.close()
