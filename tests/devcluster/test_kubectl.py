"""The pinned real kubectl against the emulator, with the devcluster's kubeconfig: what people
debug with (get, describe, logs, exec, delete)."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess

import pytest
from kubelet_helpers import NS, PY, container, gone, pod_body, running_and_ready, wait_pod

from jupyterhub_platform.chart.binaries import ensure_kubectl
from jupyterhub_platform.devcluster.procs import wait_for

pytestmark = pytest.mark.kubelet("process")

TICKER = (
    "import time\nfor i in range(1, 4): print('tick', i, flush=True)\nwhile True: time.sleep(1)"
)


@pytest.fixture(scope="module")
def kubectl_path():
    return ensure_kubectl(say=lambda _msg: None)


@pytest.fixture
def kubectl(devcluster, kubectl_path):
    """``await kubectl("get", "pods")`` → (exit status, stdout, stderr) of the real kubectl."""

    async def run(
        *args: str, stdin: bytes | None = None, timeout: float = 30
    ) -> tuple[int, str, str]:
        env = {**os.environ, "KUBECONFIG": str(devcluster.kubeconfig_path)}
        proc = await asyncio.create_subprocess_exec(
            str(kubectl_path), *args, env=env, start_new_session=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(stdin), timeout)
        return proc.returncode, out.decode(), err.decode()

    return run


@pytest.fixture
async def ticker(core):
    await core.create_namespaced_pod(NS, pod_body("ticker", container("main", PY, "-c", TICKER)))
    pod = await wait_pod(core, "ticker", "running", running_and_ready)
    await wait_for(lambda: _has_ticked(core), timeout=20, what="the third tick")
    return pod


async def _has_ticked(core) -> bool:
    return "tick 3" in await core.read_namespaced_pod_log("ticker", NS)


async def test_get_and_describe(kubectl, ticker):
    code, out, err = await kubectl("get", "pods")
    assert code == 0, err
    header, row = out.splitlines()
    assert header.split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert row.split()[:4] == ["ticker", "1/1", "Running", "0"]
    code, out, err = await kubectl("get", "pods", "-o", "wide")
    assert code == 0, err
    assert ticker.status.pod_ip in out and "devcluster" in out
    code, out, err = await kubectl("get", "namespaces,nodes")
    assert code == 0 and "default" in out and re.search(r"node/devcluster\s+Ready", out), err

    code, out, err = await kubectl("describe", "pod", "ticker")
    assert code == 0, err
    assert re.search(r"^Name:\s+ticker$", out, re.M) and re.search(
        r"^Status:\s+Running$", out, re.M
    )
    assert f"IP:               {ticker.status.pod_ip}" in out
    assert re.search(r"Normal\s+Started\s+\S+\s+kubelet\s+Started container main", out)


async def test_logs_and_follow(kubectl, ticker):
    code, out, err = await kubectl("logs", "ticker")
    assert (code, out) == (0, "tick 1\ntick 2\ntick 3\n"), err
    code, out, _ = await kubectl("logs", "ticker", "--tail", "1", "--timestamps")
    assert code == 0 and re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:.]+Z tick 3\n", out)
    code, _, err = await kubectl("logs", "ticker", "-c", "nope")
    assert code == 1 and "container nope is not valid for pod ticker" in err


async def test_logs_follow_ends_with_the_container(kubectl, core):
    code = "import time\nprint('first', flush=True)\ntime.sleep(0.5)\nprint('last', flush=True)"
    await core.create_namespaced_pod(
        NS, pod_body("brief", container("main", PY, "-c", code), restart="Never")
    )
    await wait_pod(core, "brief", "started", lambda p: p.status.phase != "Pending")
    status, out, err = await kubectl("logs", "-f", "brief")
    assert (status, out) == (0, "first\nlast\n"), err


async def test_exec_with_stdin_and_exit_codes(kubectl, ticker):
    code, out, err = await kubectl("exec", "ticker", "--", "sh", "-c", "echo out; echo err >&2")
    assert (code, out, err) == (0, "out\n", "err\n")
    code, out, err = await kubectl(
        "exec", "-i", "ticker", "--", "sh", "-c", "cat; exit 7", stdin=b"piped\n"
    )
    assert (code, out) == (7, "piped\n") and "command terminated with exit code 7" in err


async def test_delete_waits_until_the_pod_is_gone(kubectl, core, ticker):
    code, out, err = await kubectl("delete", "pod", "ticker")
    assert code == 0 and 'pod "ticker" deleted' in out, err
    assert await gone(core, "ticker")


async def test_a_kubeconfig_without_the_token_is_refused(kubectl_path, devcluster, tmp_path):
    text = devcluster.kubeconfig_path.read_text().replace(devcluster.token, "not-the-token")
    (tmp_path / "config").write_text(text)
    proc = await asyncio.create_subprocess_exec(
        str(kubectl_path), "get", "pods", env={**os.environ, "KUBECONFIG": str(tmp_path / "config")},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    _, err = await proc.communicate()
    assert proc.returncode == 1 and "You must be logged in to the server" in err.decode()
