"""Pods on the process kubelet, for the tests: builders, waits and process checks."""

from __future__ import annotations

import os

import aiohttp
import psutil
import pytest
from kubernetes_asyncio import client

from jupyterhub_platform.devcluster.kubelet.isolation import unavailable_reason
from jupyterhub_platform.devcluster.procs import wait_for

NS = "default"
PY = "python"  # found through the kubelet's PATH, which starts with this virtualenv's bin


def pod_body(name: str, *containers: dict, restart: str = "OnFailure", volumes=(), init=()) -> dict:
    spec = {"containers": list(containers), "restartPolicy": restart, "volumes": list(volumes)}
    if init:
        spec["initContainers"] = list(init)
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def container(name: str, *argv: str, **extra) -> dict:
    return {"name": name, "image": "local/test:1", "command": list(argv), **extra}


def http_server(name: str = "web", port: int = 8888) -> dict:
    return container(
        name,
        PY,
        "-m",
        "http.server",
        str(port),
        "--bind",
        "0.0.0.0",
        ports=[{"containerPort": port}],
    )


async def wait_pod(core, name: str, what: str, predicate, timeout: float = 20.0):
    async def check():
        pod = await core.read_namespaced_pod(name, NS)
        return pod if predicate(pod) else None

    return await wait_for(check, timeout=timeout, what=f"pod {name} {what}")


def running_and_ready(pod) -> bool:
    statuses = pod.status.container_statuses or []
    return pod.status.phase == "Running" and bool(statuses) and all(s.ready for s in statuses)


def phase_is(*phases):
    return lambda pod: pod.status.phase in phases


async def gone(core, name: str) -> bool:
    try:
        await core.read_namespaced_pod(name, NS)
    except client.ApiException as exc:
        return exc.status == 404
    return False


async def events_of(core, name: str) -> list:
    events = (await core.list_namespaced_event(NS)).items
    return [e for e in events if e.involved_object.name == name]


def pids(pod) -> list[int]:
    statuses = (pod.status.init_container_statuses or []) + (pod.status.container_statuses or [])
    return [
        int(s.container_id.removeprefix("process://"))
        for s in statuses
        if s.container_id and s.container_id.startswith("process://")
    ]


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def group_alive(pgid: int) -> bool:
    """Whether any live process is still in process group ``pgid``."""
    return any(_pgid(p.pid) == pgid and alive(p.pid) for p in psutil.process_iter())


async def groups_die(*pgids: int) -> None:
    """Wait until every process of the groups is gone (SIGKILL takes effect asynchronously)."""
    await wait_for(lambda: not any(group_alive(p) for p in pgids), timeout=3, what="processes gone")


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


async def fetch(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        return resp.status, await resp.text()


async def log_of(core, name: str, expected: str = "", **options) -> str | None:
    """The pod's log (``pods/log``); None until the container started and logged ``expected``."""
    try:
        text = await core.read_namespaced_pod_log(name, NS, **options)
    except client.ApiException as exc:
        if exc.status == 400:  # still waiting to start
            return None
        raise
    return text if expected in text else None


def needs_namespaces() -> None:
    """Fail under CI (which runs as root), skip elsewhere, when pods cannot be isolated here."""
    reason = unavailable_reason()
    if reason is not None:
        (pytest.fail if os.environ.get("CI") else pytest.skip)(
            f"pods cannot be isolated here: {reason}"
        )
