"""The foreground command: ready.json, serving, and a clean stop on SIGTERM."""

from __future__ import annotations

import json
import signal
import sys

import aiohttp
import pytest

from jupyterhub_platform.devcluster.cluster import DevCluster
from jupyterhub_platform.devcluster.procs import ManagedProcess, wait_for


async def test_cli_serves_until_sigterm(tmp_path):
    state = tmp_path / "state"
    proc = ManagedProcess(
        [sys.executable, "-m", "jupyterhub_platform.devcluster", "--state-dir", str(state),
         "--kubelet", "none"],
        name="devcluster", log_path=tmp_path / "devcluster.log",
    )
    try:
        ready_file = state / "ready.json"
        await wait_for(lambda: ready_file.exists() or not proc.running(), timeout=20,
                       what="ready.json")
        assert proc.running(), proc.log_tail()
        ready = json.loads(ready_file.read_text())
        assert ready["pid"] == proc.pid and ready["kubeconfig"] == str(state / "kubeconfig.yaml")
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{ready['url']}/api/v1/namespaces/default") as resp:
                assert (await resp.json())["metadata"]["name"] == "default"
        proc.popen.send_signal(signal.SIGTERM)
        await wait_for(lambda: not proc.running(), timeout=10, what="devcluster exit")
        assert proc.returncode == 0, proc.log_tail()
        assert "devcluster ready: " + ready["url"] in proc.log_tail()
        assert not ready_file.exists()
    finally:
        await proc.astop()


def test_unknown_kubelet_mode_is_refused(tmp_path):
    with pytest.raises(ValueError, match="kubelet mode must be one of"):
        DevCluster(tmp_path, kubelet="docker")
