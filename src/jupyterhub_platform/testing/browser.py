"""Headless Chromium for browser tests: Debian's build driven by Playwright (Playwright's own
browser downloads are never used)."""

from __future__ import annotations

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def launch_options() -> dict:
    """Keyword arguments for ``playwright.chromium.launch``."""
    return {"executable_path": CHROMIUM, "args": list(CHROMIUM_ARGS)}
