"""Wall time from ``jupyterhub-platform dev`` to a running JupyterLab answering through the proxy.

The command runs as a user would start it; once it prints its URL, alice logs in through the
development IdP, starts her server and it counts as running when JupyterLab's
``/user/alice/api/status`` answers 200 through the proxy — the e2e tests' browser-like client
(tests/e2e/hub_user.py) does exactly what a person would.
"""

from __future__ import annotations

import asyncio
import re
import signal
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.figures import Figure
from jupyterhub_platform.devcluster.procs import ManagedProcess, wait_for

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "e2e"))
from hub_user import HubUser, launch  # noqa: E402 - the e2e tests' client, found above

URL_LINE = re.compile(r"^\s+(http://127\.0\.0\.1:\d+)\s*$", re.M)


async def run() -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="bench-platform-") as tmp:
        state = Path(tmp) / "state"
        log = Path(tmp) / "dev.log"
        started = time.monotonic()
        dev = ManagedProcess(
            [sys.executable, "-m", "jupyterhub_platform.cli", "dev", "--state-dir", str(state)],
            name="dev",
            log_path=log,
        )
        try:
            match = await wait_for(
                lambda: dev.running() and URL_LINE.search(log.read_text()),
                timeout=180,
                interval=0.1,
                what="the dev command's URL",
            )
            platform_ready = time.monotonic() - started
            url = match.group(1)
            alice = HubUser(url, "alice")
            try:
                await launch(alice)
            finally:
                await alice.close()
            lab_ready = time.monotonic() - started
            dev.popen.send_signal(signal.SIGINT)  # the dev command's own clean shutdown
            await asyncio.to_thread(dev.popen.wait, 60)
        finally:
            await dev.astop()
    return [
        Figure("`jupyterhub-platform dev` until it prints its URL", platform_ready, "s"),
        Figure(
            "`jupyterhub-platform dev` until a JupyterLab answers through the proxy", lab_ready, "s"
        ),
    ]
