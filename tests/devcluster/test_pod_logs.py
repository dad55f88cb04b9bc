"""``pods/log`` with both official clients: whole logs, options, follow, and the real errors."""

from __future__ import annotations

import asyncio
import json
import re

import kubernetes
import pytest
from devcluster_helpers import api_error
from kubelet_helpers import NS, PY, container, log_of, phase_is, pod_body, wait_pod

from jupyterhub_platform.devcluster.kubelet.containerlog import LogEntry, select_entries
from jupyterhub_platform.devcluster.nodeapi import LogOptions, cri_timestamp, parse_timestamp
from jupyterhub_platform.devcluster.procs import wait_for

pytestmark = pytest.mark.kubelet("process")

COUNT = "import sys\nfor i in range(1, 6): print('line', i, flush=True)\nprint('to stderr', file=sys.stderr, flush=True)"
STAMPED = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z) (.*)$")
# Prints, waits for the test's go-ahead (a file in a hostPath volume), prints again and exits.
ON_SIGNAL = """
import os, time
print('before', flush=True)
while not os.path.exists('/signals/go'):
    time.sleep(0.02)
print('after', flush=True)
"""


def signalled(name: str, path, **extra) -> dict:
    volumes = [{"name": "signals", "hostPath": {"path": str(path)}}]
    mounts = [{"name": "signals", "mountPath": "/signals"}]
    return pod_body(name, container("main", PY, "-c", ON_SIGNAL, volumeMounts=mounts), restart="Never",
                    volumes=volumes, **extra)  # fmt: skip


async def finished(core, body: dict):
    await core.create_namespaced_pod(NS, body)
    name = body["metadata"]["name"]
    return await wait_pod(core, name, "finished", phase_is("Succeeded", "Failed"))


async def test_the_whole_log_and_its_options_with_both_clients(devcluster, core, sync_core):
    await finished(core, pod_body("count", container("main", PY, "-c", COUNT), restart="Never"))
    text = await core.read_namespaced_pod_log("count", NS)
    lines = text.splitlines()
    assert [line for line in lines if line.startswith("line")] == [f"line {i}" for i in range(1, 6)]
    assert "to stderr" in lines and len(lines) == 6 and text.endswith("\n")

    assert await asyncio.to_thread(sync_core.read_namespaced_pod_log, "count", NS) == text
    tail = await asyncio.to_thread(sync_core.read_namespaced_pod_log, "count", NS, tail_lines=2)
    assert tail.splitlines() == lines[-2:]
    assert await core.read_namespaced_pod_log("count", NS, tail_lines=0) == ""
    first = lines[0] + "\n"
    assert await core.read_namespaced_pod_log("count", NS, limit_bytes=len(first)) == first
    assert await core.read_namespaced_pod_log("count", NS, since_seconds=3600) == text

    stamped = (await core.read_namespaced_pod_log("count", NS, timestamps=True)).splitlines()
    matches = [STAMPED.match(line) for line in stamped]
    assert all(matches) and [m.group(2) for m in matches] == lines
    # sinceTime (the generated clients have no parameter for it): from the third line's time on
    third = parse_timestamp(matches[2].group(1))
    expected = [m.group(2) for m in matches if parse_timestamp(m.group(1)) >= third]
    async with devcluster.access.session() as http:
        url = f"{devcluster.url}/api/v1/namespaces/{NS}/pods/count/log"
        async with http.get(url, params={"sinceTime": matches[2].group(1)}) as resp:
            assert resp.status == 200 and (await resp.text()).splitlines() == expected


def test_since_seconds_keeps_the_recent_entries():
    now = 1_000 * 1_000_000_000
    entries = [
        LogEntry(now - age * 1_000_000_000, "stdout", False, b"%d" % age) for age in (30, 5, 1)
    ]
    kept = select_entries(entries, LogOptions(since_seconds=10), now)
    assert [e.content for e in kept] == [b"5", b"1"]
    assert (
        select_entries(entries, LogOptions(since_seconds=10, tail_lines=1), now)[0].content == b"1"
    )
    assert cri_timestamp(now + 5) == "1970-01-01T00:16:40.000000005Z"


async def test_follow_streams_until_the_container_exits_async_client(core, tmp_path):
    await core.create_namespaced_pod(NS, signalled("follow", tmp_path))
    await wait_for_log(core, "follow", "before")
    response = await core.read_namespaced_pod_log("follow", NS, follow=True, _preload_content=False)
    received = []
    async with response:
        async for line in response.content:
            received.append(line.decode())
            if line == b"before\n":
                (tmp_path / "go").touch()
    assert received == ["before\n", "after\n"]  # and the stream ended with the container


async def test_follow_streams_until_the_container_exits_sync_client(core, sync_core, tmp_path):
    await core.create_namespaced_pod(NS, signalled("follow", tmp_path))
    await wait_for_log(core, "follow", "before")

    def follow() -> list[str]:
        response = sync_core.read_namespaced_pod_log(
            "follow", NS, follow=True, _preload_content=False
        )
        received = []
        buffer = b""
        for chunk in response.stream(64):
            buffer += chunk
            *complete, buffer = buffer.split(b"\n")
            for line in complete:
                received.append(line.decode())
                if line == b"before":
                    (tmp_path / "go").touch()
        response.release_conn()
        return received

    assert await asyncio.to_thread(follow) == ["before", "after"]


async def wait_for_log(core, name: str, text: str, **options) -> None:
    await wait_for(lambda: log_of(core, name, text, **options), timeout=20,
                   what=f"{text!r} in {name}'s log")  # fmt: skip


async def test_a_pod_of_several_containers_needs_a_container_name(core, sync_core, tmp_path):
    two = signalled("two", tmp_path)
    two["spec"]["containers"].append(container("side", PY, "-c", "print('side', flush=True)"))
    await core.create_namespaced_pod(NS, two)
    await wait_for_log(core, "two", "side", container="side")
    status, body = await api_error(core.read_namespaced_pod_log("two", NS))
    assert (status, body["reason"]) == (400, "BadRequest")
    assert (
        body["message"]
        == "a container name must be specified for pod two, choose one of: [main side]"
    )
    status, body = await api_error(core.read_namespaced_pod_log("two", NS, container="nope"))
    assert (status, body["message"]) == (400, "container nope is not valid for pod two")

    with pytest.raises(kubernetes.client.ApiException) as info:
        await asyncio.to_thread(sync_core.read_namespaced_pod_log, "two", NS)
    assert (
        info.value.status == 400
        and "choose one of: [main side]" in json.loads(info.value.body)["message"]
    )
    (tmp_path / "go").touch()


async def test_a_waiting_container_and_previous_logs_answer_400(core, sync_core, tmp_path):
    body = signalled("late", tmp_path)
    init = body["spec"]["containers"][0] | {"name": "init"}
    body["spec"]["initContainers"] = [init]
    body["spec"]["containers"][0] = container("main", PY, "-c", "print('main')")
    await core.create_namespaced_pod(NS, body)
    await wait_for_log(core, "late", "before", container="init")

    waiting = 'container "main" in pod "late" is waiting to start: PodInitializing'
    status, error = await api_error(core.read_namespaced_pod_log("late", NS, container="main"))
    assert (status, error["reason"], error["message"]) == (400, "BadRequest", waiting)
    with pytest.raises(kubernetes.client.ApiException) as info:
        await asyncio.to_thread(sync_core.read_namespaced_pod_log, "late", NS, container="main")
    assert info.value.status == 400 and json.loads(info.value.body)["message"] == waiting

    status, error = await api_error(
        core.read_namespaced_pod_log("late", NS, container="init", previous=True)
    )
    assert (status, error["message"]) == (
        400,
        'previous terminated container "init" in pod "late" not found',
    )
    (tmp_path / "go").touch()
    pod = await wait_pod(core, "late", "finished", phase_is("Succeeded", "Failed"))
    assert pod.status.phase == "Succeeded"
    assert await core.read_namespaced_pod_log("late", NS, container="main") == "main\n"


async def test_invalid_options_are_refused_like_the_real_server(core):
    await finished(core, pod_body("count", container("main", PY, "-c", COUNT), restart="Never"))
    status, body = await api_error(core.read_namespaced_pod_log("count", NS, tail_lines=-1))
    assert (status, body["reason"]) == (422, "Invalid")
    assert (
        body["message"]
        == 'PodLogOptions "count" is invalid: tailLines: Invalid value: -1: must be greater than or equal to 0'
    )
    status, body = await api_error(core.read_namespaced_pod_log("count", NS, since_seconds=0))
    assert (
        status == 422
        and "sinceSeconds: Invalid value: 0: must be greater than 0" in body["message"]
    )
    status, body = await api_error(core.read_namespaced_pod_log("gone", NS))
    assert (status, body["message"]) == (404, 'pods "gone" not found')
