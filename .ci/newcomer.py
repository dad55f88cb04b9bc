"""The newcomer's path, exactly as the README tells it, on a fresh clone.

Clones the repository's HEAD beside it (so ``../shared`` resolves as in a contributor's checkout),
runs ``./run dev`` there in the background with the machine's default ``python3``, and acts as a
person in headless Chromium: signs in on the development IdP's own form, starts JupyterLab from
the spawn page's form, sees it load, stops the server from the hub's home page. Then Ctrl-C
(SIGINT to ``./run dev``'s process group, as a terminal sends it) must leave no process behind.
Run by ``nox -s newcomer`` (``.ci/run`` does, before the test suite).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
from playwright.sync_api import sync_playwright

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts" / "newcomer"
"""./run dev's output and the screenshots (gitignored)."""
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
BANNER_URL = re.compile(r"^\s+(http://127\.0\.0\.1:\d+)\s*$", re.M)
DEMO_USERS = ("alice", "bob", "carol")
START_TIMEOUT = 600.0  # a fresh clone installs its tools and environment first
SPAWN_TIMEOUT_MS = 120_000


class NewcomerFailed(Exception):
    pass


def step(message: str, began: float) -> None:
    print(f"newcomer [{time.monotonic() - began:6.1f}s] {message}", flush=True)


def fresh_clone(target: Path) -> None:
    if target.exists():
        shutil.rmtree(target)
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(target)], check=True)


def wait_for_banner(dev: subprocess.Popen, output: Path) -> str:
    """The URL ``./run dev`` prints once the platform runs; its demo users must be listed."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        text = output.read_text(errors="replace")
        found = BANNER_URL.search(text)
        if found and "Press Ctrl-C" in text:
            absent = [u for u in DEMO_USERS if not re.search(rf"^\s+{u}\s", text, re.M)]
            if absent:
                raise NewcomerFailed(f"the banner lists no {', '.join(absent)}:\n{text}")
            return found[1]
        if dev.poll() is not None:
            raise NewcomerFailed(f"./run dev exited with {dev.returncode}:\n{text}")
        time.sleep(0.5)
    raise NewcomerFailed(f"no URL from ./run dev within {START_TIMEOUT:.0f}s:\n{text}")


def use_jupyterlab(url: str, screenshots: Path) -> None:
    """A person's visit: IdP login form, spawn form, JupyterLab, stop from the home page."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        try:
            page.goto(f"{url}/hub/")
            page.get_by_role("button", name=re.compile("^Sign in with")).click()
            page.get_by_role("textbox").fill("alice")
            page.get_by_role("button", name="Authorize", exact=True).click()
            page.wait_for_url(re.compile(r"/hub/spawn"))
            form = page.get_by_role("group", name="Choose a server profile")
            form.get_by_role("radio", name="JupyterLab").click()
            page.get_by_role("button", name="Start").click()
            page.wait_for_url(re.compile(r"/user/alice/lab"), timeout=SPAWN_TIMEOUT_MS)
            page.locator("#jp-main-dock-panel").wait_for(timeout=SPAWN_TIMEOUT_MS)
            page.get_by_role("main").wait_for()
            page.locator(".jp-LauncherCard").first.wait_for(timeout=SPAWN_TIMEOUT_MS)  # loaded
            page.screenshot(path=screenshots / "jupyterlab.png")

            page.goto(f"{url}/hub/home")
            page.get_by_role("button", name="Stop My Server").click()
            start_again = page.get_by_role("button", name="Start My Server", exact=True)
            start_again.wait_for(timeout=SPAWN_TIMEOUT_MS)  # the hub says the server stopped
        except Exception:
            page.screenshot(path=screenshots / "failure.png", full_page=True)
            raise
        finally:
            browser.close()


def left_behind(clone: Path, group: int) -> list[str]:
    """Live processes of ``./run dev``'s group, or started from the clone (pods, components);
    not this check itself and what runs it (their command lines name the clone too)."""
    me = psutil.Process()
    ours = {me.pid, *(p.pid for p in me.parents())}
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        try:
            if proc.pid in ours or proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            cmdline = " ".join(proc.info["cmdline"] or ())
            if os.getpgid(proc.pid) == group or str(clone) in cmdline:
                found.append(f"{proc.pid}: {cmdline}")
        except (psutil.NoSuchProcess, ProcessLookupError):
            continue
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--clone",
        type=Path,
        default=REPO.parent / "newcomer-clone",
        help="where the fresh clone goes (replaced; default: ../newcomer-clone)",
    )
    clone = parser.parse_args(argv).clone.resolve()
    began = time.monotonic()
    fresh_clone(clone)
    step(f"cloned {REPO} into {clone}; ./run dev", began)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    output = ARTIFACTS / "run-dev.out"
    with output.open("w") as out:
        dev = subprocess.Popen(
            ["./run", "dev"],
            cwd=clone,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, as a terminal's foreground job
            env={k: v for k, v in os.environ.items() if not k.startswith("NOX")},
        )
    try:
        url = wait_for_banner(dev, output)
        step(f"the platform runs at {url}; a person signs in as alice", began)
        use_jupyterlab(url, ARTIFACTS)
        step("JupyterLab loaded and the server stopped; Ctrl-C", began)
        os.killpg(dev.pid, signal.SIGINT)
        code = dev.wait(timeout=120)
        step(f"./run dev exited with {code}", began)
        if code != 0:
            raise NewcomerFailed(f"./run dev exited with {code} after Ctrl-C")
        remaining = left_behind(clone, dev.pid)
        if remaining:
            raise NewcomerFailed("processes left behind:\n" + "\n".join(remaining))
    except Exception as exc:  # any failure: say what, show ./run dev's output, clean up
        print(f"newcomer: FAILED: {exc}\n--- ./run dev output ({output}):", file=sys.stderr)
        print(output.read_text(errors="replace")[-6000:], file=sys.stderr)
        return 1
    finally:
        if dev.poll() is None:
            os.killpg(dev.pid, signal.SIGKILL)
            dev.wait()
        for line in left_behind(clone, dev.pid):
            with contextlib.suppress(psutil.NoSuchProcess):
                psutil.Process(int(line.split(":", 1)[0])).kill()
    step("passed: nothing left running", began)
    return 0


if __name__ == "__main__":
    sys.exit(main())
