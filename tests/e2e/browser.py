"""Headless Chromium for the e2e tests: Debian's, driven by Playwright (its own browser
downloads are never used), and the development IdP's login as a person does it."""

from __future__ import annotations

import re
from contextlib import asynccontextmanager

from hub_user import ARTIFACTS, require_programs
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import TimeoutError as PlaywrightTimeout
from playwright.async_api import async_playwright

from jupyterhub_platform.testing.browser import CHROMIUM, launch_options

SCREENSHOTS = ARTIFACTS.parent / "browser"
START_TIMEOUT_MS = 120_000


@asynccontextmanager
async def chromium():
    """A running headless Chromium (skips, naming the install script, without one)."""
    require_programs(CHROMIUM)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(**launch_options())
        try:
            yield browser
        finally:
            await browser.close()


async def goto(page, url: str, attempts: int = 3):
    """``page.goto``, again when Chromium aborts it with ``ERR_NETWORK_CHANGED``: it does so
    whenever the machine's interfaces change, as the process kubelet's pod sandboxes make
    them."""
    for attempt in range(attempts):
        try:
            return await page.goto(url)
        except PlaywrightError as exc:
            if "ERR_NETWORK_CHANGED" not in str(exc) or attempt == attempts - 1:
                raise


async def sign_in_at_the_idp(page, hub_url: str, name: str) -> None:
    """The hub's login button, then the development IdP's own form (its one text box: the
    subject, labelled differently by oidc-provider-mock 0.3 and 0.4)."""
    await goto(page, f"{hub_url}/hub/")
    await page.get_by_role("button", name=re.compile("^Sign in with")).click()
    await page.get_by_role("textbox").fill(name)
    await page.get_by_role("button", name="Authorize", exact=True).click()


async def log_in(page, hub_url: str, name: str):
    """Sign in through the development IdP's own form; return the spawn page's profile group."""
    await sign_in_at_the_idp(page, hub_url, name)
    await page.wait_for_url(re.compile(r"/hub/spawn"))
    form = page.get_by_role("group", name="Choose a server profile")
    await form.wait_for()
    return form


async def jupyterlab_loaded(page, timeout_ms: float = START_TIMEOUT_MS, attempts: int = 3) -> None:
    """Wait for JupyterLab's launcher. On a loaded machine Chromium now and then fails to load
    the theme's stylesheet (JupyterLab then opens an "Error Loading Theme" dialog over the page,
    and no request for it reaches the server): reload, as a person would, and say so."""
    failed: list[str] = []
    page.on("requestfailed", lambda r: failed.append(f"{r.url} ({r.failure})"))
    launcher = page.locator(".jp-LauncherCard").first
    theme_error = page.locator(".jp-Dialog", has_text="Error Loading Theme")
    for attempt in range(1, attempts + 1):
        await launcher.or_(theme_error).first.wait_for(timeout=timeout_ms)
        if not await theme_error.count():
            return
        print(f"JupyterLab: theme failed to load (attempt {attempt}); failed requests: {failed}")
        if attempt < attempts:
            failed.clear()
            await page.reload()
    raise AssertionError(f"JupyterLab's theme failed to load {attempts} times: {failed}")


async def visible_after_reloads(
    page, locator, what: str, attempt_ms: float = 45_000, attempts: int = 3
) -> None:
    """Wait for ``locator``, reloading a page that stays blank. On a loaded machine Chromium now
    and then drops one of an app's first requests (Streamlit's page then stays white, and no
    request after its scripts reaches the server): reload, as a person would, and say so."""
    failed: list[str] = []
    page.on("requestfailed", lambda r: failed.append(f"{r.url} ({r.failure})"))
    for attempt in range(1, attempts + 1):
        try:
            await locator.wait_for(timeout=attempt_ms)
            return
        except PlaywrightTimeout:
            print(f"{what}: not shown (attempt {attempt}); failed requests: {failed}")
            if attempt == attempts:
                raise
            failed.clear()
            await page.reload()
