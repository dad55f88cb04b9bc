"""The kubelet against the emulator over HTTP: real pods as real processes on their own IPs.

As root the kubelet isolates pods (namespaces, their own users); the tests marked
``isolation("none")`` run the plain-process fallback a kubelet without root uses.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import os
import signal
import time

import aiohttp
import psutil
import pytest
from kubelet_helpers import (
    NS,
    PY,
    alive,
    container,
    events_of,
    fetch,
    gone,
    groups_die,
    http_server,
    log_of,
    phase_is,
    pids,
    pod_body,
    running_and_ready,
    wait_pod,
)

from jupyterhub_platform.devcluster.kubelet import agent
from jupyterhub_platform.devcluster.kubelet.podnet import GATEWAY_IP, POD_NETWORK
from jupyterhub_platform.devcluster.procs import port_is_open, wait_for

pytestmark = pytest.mark.kubelet("process")


@pytest.mark.parametrize("isolation", [
    pytest.param("auto", marks=pytest.mark.isolation("auto")),
    pytest.param("none", marks=pytest.mark.isolation("none")),
])  # fmt: skip
async def test_pod_runs_on_its_own_ip_with_a_sidecar_and_events(devcluster, core, isolation):
    await core.create_namespaced_pod(NS, pod_body("web", http_server(), http_server("side", 9000)))
    pod = await wait_pod(core, "web", "running and ready", running_and_ready)
    ip = pod.status.pod_ip
    if devcluster.kubelet.ctx.isolation is not None:  # a network namespace of its own
        assert ipaddress.ip_address(ip) in POD_NETWORK and pod.status.host_ip == GATEWAY_IP
    else:
        assert ip.startswith("127.") and ip != "127.0.0.1" and pod.status.host_ip == "127.0.0.1"
    assert pod.status.pod_ips[0].ip == ip
    assert {c.type: c.status for c in pod.status.conditions} == {
        "PodScheduled": "True",
        "Initialized": "True",
        "ContainersReady": "True",
        "Ready": "True",
    }
    assert all(s.state.running.started_at for s in pod.status.container_statuses)
    # both containers listen on the pod IP (not 0.0.0.0), like containers sharing a pod network
    assert port_is_open(ip, 8888) and port_is_open(ip, 9000)
    assert not port_is_open("127.0.0.1", 9000)
    status, _ = await fetch(f"http://{ip}:9000/")
    assert status == 200

    reasons = [(e.reason, e.source.component) for e in await events_of(core, "web")]
    assert ("Scheduled", "default-scheduler") in reasons
    for reason in ("Pulling", "Pulled", "Created", "Started"):
        assert (reason, "kubelet") in reasons
    started = [e for e in await events_of(core, "web") if e.reason == "Started"]
    assert {e.message for e in started} == {"Started container web", "Started container side"}
    assert all(e.last_timestamp and e.count == 1 for e in started)
    log = devcluster.state_dir / "pods" / f"{NS}_web_{pod.metadata.uid}" / "web" / "0.log"
    assert log.exists()


async def test_two_pods_get_different_ips_on_the_same_port(devcluster, core):
    for name in ("a", "b"):
        await core.create_namespaced_pod(NS, pod_body(name, http_server()))
    a = await wait_pod(core, "a", "ready", running_and_ready)
    b = await wait_pod(core, "b", "ready", running_and_ready)
    assert a.status.pod_ip != b.status.pod_ip
    assert port_is_open(a.status.pod_ip, 8888) and port_is_open(b.status.pod_ip, 8888)
    # deleted outright: the processes just stop
    await core.delete_namespaced_pod("a", NS, grace_period_seconds=0)
    await wait_for(lambda: gone(core, "a"), timeout=10, what="pod a removed")
    await groups_die(*pids(a))
    assert port_is_open(b.status.pod_ip, 8888)


WRITE_HOME = "import os, pathlib; pathlib.Path(os.environ['HOME'], 'note.txt').write_text('kept')"
READ_HOME = "import os, pathlib, sys; sys.exit(pathlib.Path(os.environ['HOME'], 'note.txt').read_text() != 'kept')"


async def test_pvc_home_survives_the_pod_and_never_pods_succeed(devcluster, core):
    volumes = [{"name": "home", "persistentVolumeClaim": {"claimName": "claim-alice"}}]
    mounts = [{"name": "home", "mountPath": "/home/jovyan"}]
    for name, code in (("writer", WRITE_HOME), ("reader", READ_HOME)):
        body = pod_body(
            name,
            container("main", PY, "-c", code, volumeMounts=mounts),
            restart="Never",
            volumes=volumes,
        )
        await core.create_namespaced_pod(NS, body)
        pod = await wait_pod(core, name, "finished", phase_is("Succeeded", "Failed"))
        assert pod.status.phase == "Succeeded", pod.status.container_statuses[0].state
        terminated = pod.status.container_statuses[0].state.terminated
        assert (terminated.exit_code, terminated.reason) == (0, "Completed")
        await core.delete_namespaced_pod(name, NS, grace_period_seconds=0)
        await wait_for(lambda n=name: gone(core, n), timeout=10, what=f"{name} gone")
    note = devcluster.state_dir / "volumes" / NS / "pvc" / "claim-alice" / "note.txt"
    assert note.read_text() == "kept"


CHECK_CONFIG = """
import os, pathlib, sys
token = pathlib.Path('/etc/creds/token').read_text()
ready = pathlib.Path('/scratch/init-done').read_text()
sys.exit(0 if (token, os.environ['TOKEN'], ready, os.environ['ME']) == ('t0k', 't0k', 'yes', 'cfg') else 5)
"""


async def test_secrets_init_containers_and_empty_dirs(devcluster, core):
    token = base64.b64encode(b"t0k").decode()
    await core.create_namespaced_secret(
        NS, {"metadata": {"name": "creds"}, "data": {"token": token}}
    )
    scratch = {"name": "scratch", "mountPath": "/scratch"}
    init = container(
        "prepare",
        PY,
        "-c",
        "import pathlib; pathlib.Path('/scratch/init-done').write_text('yes')",
        volumeMounts=[scratch],
    )
    main = container(
        "main",
        PY,
        "-c",
        CHECK_CONFIG,
        volumeMounts=[scratch, {"name": "creds", "mountPath": "/etc/creds"}],
        env=[
            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
            {"name": "ME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        ],
    )
    volumes = [
        {"name": "scratch", "emptyDir": {}},
        {"name": "creds", "secret": {"secretName": "creds"}},
    ]
    await core.create_namespaced_pod(
        NS, pod_body("cfg", main, restart="Never", volumes=volumes, init=[init])
    )
    pod = await wait_pod(core, "cfg", "finished", phase_is("Succeeded", "Failed"))
    assert pod.status.phase == "Succeeded", pod.status.container_statuses[0].state
    assert pod.status.init_container_statuses[0].state.terminated.exit_code == 0


async def test_missing_command_terminates_the_container_with_an_event(devcluster, core):
    await core.create_namespaced_pod(
        NS, pod_body("broken", container("main", "no-such-program-xyz"))
    )
    pod = await wait_pod(core, "broken", "failed", phase_is("Failed"))
    terminated = pod.status.container_statuses[0].state.terminated
    assert terminated.reason == "ContainerCannotRun"
    assert 'exec: "no-such-program-xyz": executable file not found in $PATH' in terminated.message
    failed = [e for e in await events_of(core, "broken") if e.reason == "Failed"]
    assert failed and failed[0].type == "Warning" and "no-such-program-xyz" in failed[0].message


async def test_crash_is_recorded_with_the_log_tail(devcluster, core):
    code = "import sys; print('something went wrong', flush=True); sys.exit(3)"
    main = container("main", PY, "-c", code, terminationMessagePolicy="FallbackToLogsOnError")
    silent = container("silent", PY, "-c", code)  # the default policy, File: nothing written
    await core.create_namespaced_pod(NS, pod_body("crash", main, silent))
    pod = await wait_pod(core, "crash", "failed", phase_is("Failed"))
    statuses = {s.name: s.state.terminated for s in pod.status.container_statuses}
    terminated = statuses["main"]
    assert (terminated.exit_code, terminated.reason) == (3, "Error")
    assert terminated.message == "something went wrong"
    assert statuses["silent"].exit_code == 3 and not statuses["silent"].message
    backoff = [e for e in await events_of(core, "crash") if e.reason == "BackOff"]
    assert backoff and "exited with code 3" in backoff[0].message


@pytest.mark.parametrize("isolation", [
    pytest.param("auto", marks=pytest.mark.isolation("auto")),
    pytest.param("none", marks=pytest.mark.isolation("none")),
])  # fmt: skip
@pytest.mark.parametrize("sig", ["SIGKILL", "SIGTERM"])
async def test_a_container_killed_by_a_signal_exits_128_plus_its_number(
    devcluster, core, isolation, sig
):
    code = f"import os, signal; os.kill(os.getpid(), signal.{sig})"
    await core.create_namespaced_pod(NS, pod_body("killed", container("main", PY, "-c", code),
                                                  restart="Never"))  # fmt: skip
    pod = await wait_pod(core, "killed", "failed", phase_is("Failed"))
    terminated = pod.status.container_statuses[0].state.terminated
    assert terminated.exit_code == 128 + getattr(signal, sig)


WRITE_MESSAGE = (
    "import pathlib, sys; pathlib.Path(sys.argv[1]).write_text(sys.argv[2]); "
    "print('log line', flush=True); sys.exit(int(sys.argv[3]))"
)


@pytest.mark.parametrize("isolation", [
    pytest.param("auto", marks=pytest.mark.isolation("auto")),
    pytest.param("none", marks=pytest.mark.isolation("none")),
])  # fmt: skip
async def test_termination_message_is_what_the_container_wrote_at_its_path(
    devcluster, core, isolation
):
    """As the kubelet does: the file at terminationMessagePath (default /dev/termination-log),
    at most 4 KiB, whether the container succeeded or failed, and whatever its user."""
    done = container("done", PY, "-c", WRITE_MESSAGE, "/dev/termination-log", '{"a": 1}', "0")
    failed = container(
        "failed", PY, "-c", WRITE_MESSAGE, "/tmp/why", "x" * 5000, "1",
        terminationMessagePath="/tmp/why", terminationMessagePolicy="FallbackToLogsOnError",
        securityContext={"runAsUser": 1000},
    )  # fmt: skip
    await core.create_namespaced_pod(NS, pod_body("msg", done, failed, restart="Never"))
    pod = await wait_pod(core, "msg", "finished", phase_is("Failed"))
    statuses = {s.name: s.state.terminated for s in pod.status.container_statuses}
    assert (statuses["done"].exit_code, statuses["done"].message) == (0, '{"a": 1}')
    assert (statuses["failed"].exit_code, statuses["failed"].message) == (1, "x" * 4096)


ON_SIGTERM = """
import pathlib, signal, sys, time
def bye(*_):
    pathlib.Path(sys.argv[1]).write_text('terminated')
    sys.exit(0)
signal.signal(signal.SIGTERM, bye)
pathlib.Path(sys.argv[1] + '.started').write_text('yes')
while True:
    time.sleep(0.05)
"""
IGNORE_SIGTERM = """
import signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen([sys.executable, '-c', 'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print("child ignores SIGTERM", flush=True); time.sleep(600)'])
while True:
    time.sleep(0.05)
"""


def signals_volume(path) -> tuple[list[dict], list[dict]]:
    """A hostPath volume at /signals: how a test and its pod share files (pods have a private /tmp)."""
    return ([{"name": "signals", "hostPath": {"path": str(path)}}],
            [{"name": "signals", "mountPath": "/signals"}])  # fmt: skip


async def test_graceful_delete_sends_sigterm_then_removes_the_pod(devcluster, core, tmp_path):
    marker = tmp_path / "marker"
    volumes, mounts = signals_volume(tmp_path)
    main = container("main", PY, "-c", ON_SIGTERM, "/signals/marker", volumeMounts=mounts)
    await core.create_namespaced_pod(NS, pod_body("grace", main, volumes=volumes))
    pod = await wait_pod(core, "grace", "ready", running_and_ready)
    await wait_for(
        lambda: (tmp_path / "marker.started").exists(), timeout=10, what="handler installed"
    )
    (pid,) = pids(pod)
    started = time.monotonic()
    await core.delete_namespaced_pod("grace", NS, grace_period_seconds=20)
    await wait_for(lambda: gone(core, "grace"), timeout=10, what="pod removed")
    assert time.monotonic() - started < 10  # the process exited on SIGTERM; no need to wait 20 s
    assert marker.read_text() == "terminated"
    await groups_die(pid)
    assert any(e.reason == "Killing" for e in await events_of(core, "grace"))


async def test_process_ignoring_sigterm_is_killed_after_the_grace_period(devcluster, core):
    await core.create_namespaced_pod(
        NS, pod_body("stubborn", container("main", PY, "-c", IGNORE_SIGTERM))
    )
    pod = await wait_pod(core, "stubborn", "ready", running_and_ready)
    (pid,) = pids(pod)
    await wait_for(
        lambda: log_of(core, "stubborn", "child ignores SIGTERM"),
        timeout=10,
        what="the child's SIGTERM handler",
    )
    started = time.monotonic()
    await core.delete_namespaced_pod("stubborn", NS, grace_period_seconds=1)
    await wait_for(lambda: gone(core, "stubborn"), timeout=10, what="pod removed")
    assert time.monotonic() - started >= 0.9
    await groups_die(pid)  # the leader and its SIGTERM-ignoring child


async def test_stopping_the_kubelet_leaves_no_processes(devcluster, core):
    await core.create_namespaced_pod(
        NS, pod_body("left", http_server(), container("stub", PY, "-c", IGNORE_SIGTERM))
    )
    pod = await wait_pod(core, "left", "ready", running_and_ready)
    groups = pids(pod)
    assert len(groups) == 2 and all(alive(p) for p in groups)
    await devcluster.kubelet.stop()
    await groups_die(*groups)


@pytest.fixture
def short_watch(monkeypatch):
    """Watches the server ends after 1 s, so the kubelet must resume them."""
    monkeypatch.setattr(agent, "_WATCH_SECONDS", 1)


async def test_watch_resumes_after_the_server_ends_it(short_watch, devcluster, core):
    kubelet = devcluster.kubelet
    await wait_for(lambda: kubelet.watch_connections >= 3, timeout=10, what="watch reopened twice")
    await core.create_namespaced_pod(NS, pod_body("late", http_server()))
    await wait_pod(core, "late", "ready", running_and_ready)


@pytest.mark.kubelet("light")
async def test_light_mode_runs_many_pods_without_processes(devcluster, core):
    children_before = len(psutil.Process().children(recursive=True))
    count = 50
    for i in range(count):
        env = [
            {"name": "JUPYTERHUB_SERVICE_URL", "value": "http://0.0.0.0:8888/user/u{i}/"},
            {"name": "JUPYTERHUB_SERVICE_PREFIX", "value": f"/user/u{i}/"},
        ]
        body = pod_body(f"jupyter-u{i}", {"name": "notebook", "image": "jupyter/x:1", "env": env})
        await core.create_namespaced_pod(NS, body)

    async def all_running():
        pods = (await core.list_namespaced_pod(NS)).items
        return len(pods) == count and all(running_and_ready(p) for p in pods) and pods

    pods = await wait_for(all_running, timeout=30, what="all light pods running")
    assert len({p.status.pod_ip for p in pods}) == count
    assert len(psutil.Process().children(recursive=True)) == children_before
    async with aiohttp.ClientSession() as session:

        async def check(pod):
            prefix = pod.metadata.name.removeprefix("jupyter-")
            base = f"http://{pod.status.pod_ip}:8888"
            async with session.get(f"{base}/user/{prefix}/lab") as resp:
                assert resp.status == 200
            async with session.get(f"{base}/user/{prefix}/api") as resp:
                assert (await resp.json())["version"] == "2.x"
            async with session.get(f"{base}/user/{prefix}/api/status") as resp:
                assert "last_activity" in await resp.json()
            async with session.get(f"{base}/user/other/") as resp:
                assert resp.status == 404

        await asyncio.gather(*(check(p) for p in pods))

    first = pods[0]
    await core.delete_namespaced_pod(first.metadata.name, NS, grace_period_seconds=30)
    await wait_for(lambda: gone(core, first.metadata.name), timeout=10, what="light pod removed")
    assert not port_is_open(first.status.pod_ip, 8888)


@pytest.mark.isolation("none")
async def test_without_isolation_pods_run_as_the_kubelets_user(devcluster, core):
    body = pod_body(
        "plain",
        container("main", PY, "-c", "import os; print('uid', os.getuid())"),
        restart="Never",
    )
    body["spec"]["securityContext"] = {"runAsUser": 1000, "runAsNonRoot": True, "fsGroup": 100}
    await core.create_namespaced_pod(NS, body)
    await wait_pod(core, "plain", "finished", phase_is("Succeeded"))
    assert await core.read_namespaced_pod_log("plain", NS) == f"uid {os.getuid()}\n"
