"""Secret volumes on the process kubelet as on Kubernetes: a pod waits for its Secret (FailedMount,
ContainerCreating), mounted files follow PATCHes of the Secret (atomic ``..data`` swap), and a
Secret owned by a pod goes with it.

The hub creates a server's pod first and its credential Secret right after, with the pod's uid
in the ownerReference; these are the Kubernetes behaviours that relies on.
"""

from __future__ import annotations

import asyncio
import base64
import json

import pytest
from kubelet_helpers import (
    NS,
    PY,
    container,
    events_of,
    gone,
    log_of,
    pod_body,
    running_and_ready,
    wait_pod,
)

from jupyterhub_platform.devcluster.procs import wait_for

pytestmark = [pytest.mark.kubelet("process"), pytest.mark.processes]

MOUNT = "/etc/creds"
# Prints the mounted file (and the layout it is read through) each time its content changes
# (prefixed: the client would decode a log that is one JSON document).
WATCHER = """
import json, os, sys, time
root = sys.argv[1]
last = None
while True:
    try:
        value = open(os.path.join(root, "set", "key")).read()
    except OSError as exc:
        value = f"unreadable: {exc}"
    if value != last:
        last = value
        print("report", json.dumps({
            "value": value,
            "env": os.environ.get("KEY"),
            "uid": os.getuid(),
            "data": os.readlink(os.path.join(root, "..data")),
            "link": os.readlink(os.path.join(root, "set")),
            "entries": sorted(os.listdir(root)),
            "mode": oct(os.stat(os.path.join(root, "set", "key")).st_mode & 0o777),
        }), flush=True)
    time.sleep(0.1)
"""
USER_CONTEXT = {"runAsUser": 1000, "runAsNonRoot": True, "fsGroup": 2000}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def secret_body(name: str, value: str, *, owner=None) -> dict:
    meta: dict = {"name": name}
    if owner is not None:
        meta["ownerReferences"] = [
            {"apiVersion": "v1", "kind": "Pod", "name": owner.metadata.name,
             "uid": owner.metadata.uid, "controller": False, "blockOwnerDeletion": False}
        ]  # fmt: skip
    return {"metadata": meta, "data": {"key": b64(value)}}


def watcher_pod(name: str, secret: str) -> dict:
    """A pod reading ``secret`` through a volume (key ``key`` at ``set/key``, mode 0440) and env."""
    main = container(
        "main",
        PY,
        "-c",
        WATCHER,
        MOUNT,
        volumeMounts=[{"name": "creds", "mountPath": MOUNT, "readOnly": True}],
        env=[{"name": "KEY", "valueFrom": {"secretKeyRef": {"name": secret, "key": "key"}}}],
    )
    volume = {
        "name": "creds",
        "secret": {
            "secretName": secret,
            "defaultMode": 0o440,
            "items": [{"key": "key", "path": "set/key"}],
        },
    }
    body = pod_body(name, main, volumes=[volume])
    body["spec"]["securityContext"] = USER_CONTEXT
    return body


async def reports(core, name: str, value: str) -> dict:
    """The container's report of the file once it read ``value`` (None until then)."""
    text = await log_of(core, name, f'"value": "{value}"')
    if text is None:
        return None
    found = [json.loads(line.removeprefix("report ")) for line in text.splitlines()]
    return next(r for r in found if r["value"] == value)


async def failed_mounts(core, name: str) -> list:
    return [e for e in await events_of(core, name) if e.reason == "FailedMount"]


async def test_pod_waits_for_its_secret_then_starts(devcluster, core):
    await core.create_namespaced_pod(NS, watcher_pod("late", "late-creds"))
    events = await wait_for(lambda: failed_mounts(core, "late"), timeout=10, what="FailedMount")
    assert events[0].type == "Warning"
    assert events[0].message == (
        'MountVolume.SetUp failed for volume "creds" : secret "late-creds" not found'
    )
    await asyncio.sleep(2.0)  # several retries (0.2 s doubling to 2 s): not one event each
    assert len(await failed_mounts(core, "late")) == 1
    pod = await core.read_namespaced_pod("late", NS)
    assert pod.status.phase == "Pending"
    waiting = pod.status.container_statuses[0].state.waiting
    assert waiting.reason == "ContainerCreating"
    assert await log_of(core, "late") is None  # nothing started

    await core.create_namespaced_secret(NS, secret_body("late-creds", "first"))
    await wait_pod(core, "late", "running", running_and_ready)
    report = await wait_for(lambda: reports(core, "late", "first"), timeout=10, what="file read")
    assert report["env"] == "first"  # the env read from the same Secret, after the mount waited
    assert report["mode"] == "0o440"


@pytest.mark.parametrize("isolation", [
    pytest.param("auto", marks=pytest.mark.isolation("auto")),
    pytest.param("none", marks=pytest.mark.isolation("none")),
])  # fmt: skip
async def test_mounted_secret_follows_patches_atomically(devcluster, core, isolation):
    await core.create_namespaced_secret(NS, secret_body("live-creds", "v1"))
    await core.create_namespaced_pod(NS, watcher_pod("live", "live-creds"))
    await wait_pod(core, "live", "running", running_and_ready)
    first = await wait_for(lambda: reports(core, "live", "v1"), timeout=10, what="v1 read")
    assert first["link"] == "..data/set"
    assert first["data"].startswith("..") and first["data"] != "..data"
    assert first["entries"] == sorted(["..data", first["data"], "set"])

    await core.patch_namespaced_secret("live-creds", NS, {"data": {"key": b64("v2")}})
    second = await wait_for(lambda: reports(core, "live", "v2"), timeout=10, what="v2 read")
    # a new version directory swapped in under ..data, the old one gone; env as at the start
    assert second["data"] != first["data"]
    assert second["entries"] == sorted(["..data", second["data"], "set"])
    assert second["link"] == "..data/set"
    assert second["env"] == "v1"
    # the pod's user (1000, group 2000 by fsGroup) still reads the renewed file
    assert second["mode"] == "0o440"
    if devcluster.kubelet.ctx.isolation is not None:
        assert second["uid"] == 1000
    log = await log_of(core, "live")
    assert "unreadable" not in log and '"value": ""' not in log


async def test_deleting_a_waiting_pod_stops_cleanly(devcluster, core):
    await core.create_namespaced_pod(NS, watcher_pod("never", "never-creds"))
    await wait_for(lambda: failed_mounts(core, "never"), timeout=10, what="FailedMount")
    pod = await core.read_namespaced_pod("never", NS)
    runtime = devcluster.kubelet.pods[pod.metadata.uid]
    await core.delete_namespaced_pod("never", NS)
    await wait_for(lambda: gone(core, "never"), timeout=10, what="pod gone")
    await wait_for(lambda: not devcluster.kubelet.pods, timeout=5, what="runtime dropped")
    assert runtime.task.done() and runtime.termination.done()
    pod_dir = devcluster.state_dir / "pods" / f"{NS}_never_{pod.metadata.uid}"
    assert not (pod_dir / "volumes").exists()


async def test_secret_owned_by_a_pod_is_deleted_with_it(devcluster, core):
    """As the hub does: the pod first, then its Secret owned by it, which the pod waits for."""
    await core.create_namespaced_pod(NS, watcher_pod("owner", "owner-creds"))
    pod = await core.read_namespaced_pod("owner", NS)
    await core.create_namespaced_secret(NS, secret_body("owner-creds", "mine", owner=pod))
    await wait_for(lambda: reports(core, "owner", "mine"), timeout=15, what="file read")
    await core.create_namespaced_secret(NS, secret_body("other", "kept"))

    await core.delete_namespaced_pod("owner", NS)
    await wait_for(lambda: gone(core, "owner"), timeout=15, what="pod gone")

    async def secret_gone() -> bool:
        names = [s.metadata.name for s in (await core.list_namespaced_secret(NS)).items]
        return "owner-creds" not in names and "other" in names

    await wait_for(secret_gone, timeout=5, what="owned Secret collected")
