"""The foreground command: ready.json, serving, and a clean stop on SIGTERM."""

from __future__ import annotations

import json
import signal
import sys

import pytest
from kubernetes_asyncio import client, config

from jupyterhub_platform.devcluster.cluster import DevCluster
from jupyterhub_platform.devcluster.procs import ManagedProcess, wait_for


@pytest.mark.processes
async def test_cli_serves_until_sigterm(tmp_path):
    state = tmp_path / "state"
    proc = ManagedProcess(
        [
            sys.executable,
            "-m",
            "jupyterhub_platform.devcluster",
            "--state-dir",
            str(state),
            "--kubelet",
            "none",
        ],
        name="devcluster",
        log_path=tmp_path / "devcluster.log",
    )
    try:
        ready_file = state / "ready.json"
        await wait_for(
            lambda: ready_file.exists() or not proc.running(), timeout=20, what="ready.json"
        )
        assert proc.running(), proc.log_tail()
        ready = json.loads(ready_file.read_text())
        assert ready["pid"] == proc.pid and ready["kubeconfig"] == str(state / "kubeconfig.yaml")
        api = await config.new_client_from_config(config_file=ready["kubeconfig"])
        async with api:
            namespace = await client.CoreV1Api(api).read_namespace("default")
        assert namespace.metadata.name == "default"
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
