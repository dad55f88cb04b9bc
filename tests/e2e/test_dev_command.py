"""`jupyterhub-platform dev` itself: starts, prints the URL, serves, and stops without orphans."""

from __future__ import annotations

import signal
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import psutil
import pytest
from hub_user import ARTIFACTS, HubUser, launch

from jupyterhub_platform.devcluster.procs import ManagedProcess, free_port, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.jh55_only, pytest.mark.asyncio(loop_scope="session")]

DEV = Path(sys.executable).with_name("jupyterhub-platform")


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _mentioning(text: str) -> list[psutil.Process]:
    """Live processes whose command line mentions ``text`` (orphans keep their arguments)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if any(text in arg for arg in proc.info["cmdline"] or ()) and _alive(proc):
            found.append(proc)
    return found


async def test_dev_command_runs_a_lab_and_stops_everything_on_sigint(z2jh_chart):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    state_dir = Path(tempfile.mkdtemp(prefix="dev-command-", dir=ARTIFACTS))
    output = state_dir / "dev-command.out"
    port = free_port()
    url = f"http://127.0.0.1:{port}"

    began = time.monotonic()
    dev = ManagedProcess(
        [str(DEV), "dev", "--state-dir", str(state_dir), "--port", str(port)]
        + ["--chart", str(z2jh_chart)],
        name="dev",
        log_path=output,
    )
    alice = HubUser(url, "alice")
    try:
        await wait_for(
            lambda: not dev.running() or url in output.read_text(),
            timeout=120,
            what="the URL banner of `jupyterhub-platform dev`",
        )
        assert dev.running(), output.read_text()
        printed = output.read_text()
        assert f"Logs: {state_dir / 'logs'}" in printed
        assert "alice" in printed and "carol" in printed
        async with aiohttp.ClientSession() as session, session.get(f"{url}/hub/health") as resp:
            assert resp.status == 200

        await launch(alice)
        print(
            f"\n`jupyterhub-platform dev` start → alice's JupyterLab running: {time.monotonic() - began:.1f}s"
        )
        tree = psutil.Process(dev.pid).children(recursive=True)
        names = " ".join(" ".join(p.cmdline()) for p in tree)
        for component in (
            "jupyterhub_platform.devcluster",
            "oidc_provider_mock",
            "configurable-http-proxy",
            "jupyterhub",
            "jupyterhub-singleuser",
        ):
            assert component in names

        dev.popen.send_signal(signal.SIGINT)
        await wait_for(lambda: not dev.running(), timeout=60, what="`dev` to exit after SIGINT")
        assert dev.returncode == 0, output.read_text()
        assert "All components stopped." in output.read_text()
        assert [p for p in tree if _alive(p)] == []
        assert _mentioning(str(state_dir)) == []
    finally:
        await alice.close()
        dev.stop()
