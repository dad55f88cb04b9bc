"""Pod sandboxes: keyed by UID, a network namespace per pod, nothing left behind.

The namespace tests need what the kubelet needs to isolate pods (root, iproute2): they fail
under CI (which runs as root) and skip elsewhere, saying why.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys

import psutil
import pytest
from aiohttp import web
from kubelet_helpers import (
    NS,
    PY,
    container,
    fetch,
    gone,
    needs_namespaces,
    phase_is,
    pids,
    pod_body,
    running_and_ready,
    wait_pod,
)
from kubernetes_asyncio import client, config

from jupyterhub_platform.devcluster.kubelet.podnet import GATEWAY_IP, veth_name
from jupyterhub_platform.devcluster.procs import ManagedProcess, port_is_open, wait_for

pytestmark = pytest.mark.kubelet("process")

# Uses its working directory (its home) all the time and dies if it vanishes; like a server,
# it takes a moment to shut down on SIGTERM, so a deleted pod's teardown outlasts the start of
# its successor (the old kubelet's name-keyed teardown then removed the successor's home).
KEEPS_ITS_CWD = """
import os, signal, sys, time
signal.signal(signal.SIGTERM, lambda *_: (time.sleep(0.25), sys.exit(0)))
while True:
    os.getcwd()
    open('alive', 'w').close()
    time.sleep(0.02)
"""


@pytest.mark.parametrize("isolation", [
    pytest.param("auto", marks=pytest.mark.isolation("auto")),
    pytest.param("none", marks=pytest.mark.isolation("none")),
])  # fmt: skip
async def test_a_pod_recreated_at_once_under_its_name_keeps_its_directories(
    devcluster, core, sync_core, isolation
):
    """Delete with grace 0 and create again at once, 50 times (the sync and the asyncio client
    taking turns): the old pod's teardown never touches the new pod's directories (they are
    keyed by UID)."""
    kubelet = devcluster.kubelet
    body = pod_body("again", container("main", PY, "-c", KEEPS_ITS_CWD), restart="Never")
    previous_uid = None
    for iteration in range(50):
        if iteration % 2:
            await asyncio.to_thread(sync_core.create_namespaced_pod, NS, body)
        else:
            await core.create_namespaced_pod(NS, body)
        pod = await wait_pod(core, "again", f"running (iteration {iteration})",
                             lambda p, old=previous_uid: p.metadata.uid != old and running_and_ready(p))  # fmt: skip
        uid = pod.metadata.uid
        alive = devcluster.state_dir / "pods" / f"{NS}_again_{uid}" / "home" / "alive"
        await wait_for(
            alive.exists, timeout=10, what=f"iteration {iteration}: the new pod's first write"
        )
        # the previous pod's teardown has finished: its runtime is gone from the kubelet
        await wait_for(lambda old=previous_uid: old not in kubelet.pods, timeout=10,
                       what="the previous pod's teardown")  # fmt: skip
        assert alive.exists(), f"iteration {iteration}: the new pod's home is gone"
        current = await core.read_namespaced_pod("again", NS)
        assert current.metadata.uid == uid and current.status.phase == "Running", iteration
        if iteration % 2:
            await asyncio.to_thread(
                sync_core.delete_namespaced_pod, "again", NS, grace_period_seconds=0
            )
        else:
            await core.delete_namespaced_pod("again", NS, grace_period_seconds=0)
        previous_uid = uid
    await wait_for(lambda: not kubelet.pods, timeout=10, what="the last pod's teardown")


OWN_CONFIG_SERVER = """
import http.server, json
address = json.load(open('/config/server.json'))['bind']   # from its own config, not from argv
http.server.HTTPServer((address, 8888), http.server.SimpleHTTPRequestHandler).serve_forever()
"""


def config_server(name: str) -> dict:
    main = container("main", PY, "-c", OWN_CONFIG_SERVER, ports=[{"containerPort": 8888}],
                     volumeMounts=[{"name": "config", "mountPath": "/config"}])  # fmt: skip
    body = pod_body(name, main, volumes=[{"name": "config", "configMap": {"name": "bind-all"}}])
    return body


def host_addresses() -> list[str]:
    """Every IPv4 address of this machine (the host's network namespace)."""
    out = subprocess.run(
        ["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True, check=True
    )
    return [line.split()[3].split("/")[0] for line in out.stdout.splitlines()]


async def test_a_pod_binding_0000_is_reachable_only_on_its_pod_ip(core):
    needs_namespaces()
    await core.create_namespaced_config_map(
        NS,
        {
            "metadata": {"name": "bind-all"},
            "data": {"server.json": json.dumps({"bind": "0.0.0.0"})},
        },
    )
    for name in ("first", "second"):  # the same port, both on 0.0.0.0: no collision
        await core.create_namespaced_pod(NS, config_server(name))
    first = await wait_pod(core, "first", "ready", running_and_ready)
    second = await wait_pod(core, "second", "ready", running_and_ready)
    assert first.status.pod_ip != second.status.pod_ip
    for pod in (first, second):
        status, _ = await fetch(f"http://{pod.status.pod_ip}:8888/")
        assert status == 200
    for address in {*host_addresses(), "127.0.0.1", GATEWAY_IP}:
        assert not port_is_open(address, 8888), f"a pod's 0.0.0.0 listens on the host's {address}"


async def test_pods_reach_the_host_services_they_are_given(core, devcluster, tmp_path):
    """The host's 127.0.0.1 services named in a pod's env (the hub API) and the API server are
    forwarded into the pod's namespace, at the same URLs."""
    needs_namespaces()
    async with HostService() as port:
        code = (
            "import os, ssl, urllib.request, urllib.error\n"
            "print(urllib.request.urlopen(os.environ['HUB_API']).read().decode())\n"
            "try:\n"
            f"    urllib.request.urlopen('{devcluster.url}/version', context=ssl._create_unverified_context())\n"
            "except urllib.error.HTTPError as exc:\n"
            "    print('api server', exc.code)\n"
        )
        env = [{"name": "HUB_API", "value": f"http://127.0.0.1:{port}/hub/api"}]
        await core.create_namespaced_pod(NS, pod_body("client", container("main", PY, "-c", code, env=env),
                                                      restart="Never"))  # fmt: skip
        pod = await wait_pod(core, "client", "finished", phase_is("Succeeded", "Failed"))
    log = await core.read_namespaced_pod_log("client", NS)
    assert pod.status.phase == "Succeeded", log
    assert log.splitlines() == ["the hub on the host's loopback", "api server 401"]


class HostService:
    """An HTTP service on the host's 127.0.0.1 only, like the hub."""

    async def __aenter__(self) -> int:
        app = web.Application()
        app.router.add_get("/hub/api", self._answer)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        return self.runner.addresses[0][1]

    async def __aexit__(self, *exc) -> None:
        await self.runner.cleanup()

    @staticmethod
    async def _answer(request: web.Request) -> web.Response:
        return web.Response(text="the hub on the host's loopback")


def links() -> set[str]:
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True)
    return {line.split(":")[1].strip().split("@")[0] for line in out.stdout.splitlines()}


def sandbox_processes() -> list[psutil.Process]:
    """The sandbox helpers of this process's kubelet (their command line names its PID)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if (
            any(part.endswith("sandbox_helper.py") for part in cmdline)
            and str(os.getpid()) in cmdline
        ):
            found.append(proc)
    return found


async def test_network_namespaces_and_veths_go_with_their_pods_and_the_kubelet(devcluster, core):
    needs_namespaces()
    for name in ("one", "two"):
        await core.create_namespaced_pod(
            NS, pod_body(name, container("main", PY, "-c", KEEPS_ITS_CWD))
        )
    one = await wait_pod(core, "one", "running", running_and_ready)
    two = await wait_pod(core, "two", "running", running_and_ready)
    veths = {veth_name(p.metadata.uid) for p in (one, two)}
    assert veths <= links()
    await core.delete_namespaced_pod("one", NS, grace_period_seconds=0)
    await wait_for(lambda: gone(core, "one"), timeout=10, what="pod one removed")
    await wait_for(
        lambda: veth_name(one.metadata.uid) not in links(), timeout=10, what="one's veth removed"
    )
    assert veth_name(two.metadata.uid) in links()
    processes = pids(two)
    await devcluster.kubelet.stop()
    await wait_for(lambda: not veths & links(), timeout=10, what="every pod veth removed")
    assert not any(
        psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
        for p in processes
    )
    assert sandbox_processes() == []


async def test_a_killed_devcluster_leaves_no_pod_processes_or_network_behind(tmp_path):
    """SIGKILL of the whole devcluster: the pods' sandboxes die with it (parent-death signal), and
    with them every pod process, network namespace and veth."""
    needs_namespaces()
    state = tmp_path / "state"
    proc = ManagedProcess(
        [sys.executable, "-m", "jupyterhub_platform.devcluster", "--state-dir", str(state),
         "--pod-isolation", "namespaces"],
        name="devcluster", log_path=tmp_path / "devcluster.log",
    )  # fmt: skip
    try:
        await wait_for(
            lambda: (state / "ready.json").exists() or not proc.running(),
            timeout=30,
            what="ready.json",
        )
        assert proc.running(), proc.log_tail()
        api = await config.new_client_from_config(config_file=str(state / "kubeconfig.yaml"))
        async with api:
            core = client.CoreV1Api(api)
            await core.create_namespaced_pod(
                NS, pod_body("doomed", container("main", PY, "-c", KEEPS_ITS_CWD))
            )
            pod = await wait_pod(core, "doomed", "running", running_and_ready)
        pod_processes = [psutil.Process(p) for p in pids(pod)]
        pod_processes += [c for p in list(pod_processes) for c in p.children(recursive=True)]
        veth = veth_name(pod.metadata.uid)
        assert veth in links() and pod_processes
        os.kill(proc.pid, signal.SIGKILL)
        await wait_for(
            lambda: not any(_alive(p) for p in pod_processes), timeout=10, what="pod processes gone"
        )
        await wait_for(lambda: veth not in links(), timeout=10, what="the pod's veth gone")
    finally:
        await proc.astop()


def _alive(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
