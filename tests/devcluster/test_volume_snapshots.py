"""The snapshot API over HTTP with the kubernetes client: VolumeSnapshots of a claim's directory
taken point-in-time by the dev cluster's stand-in (content, statuses, class), claims provisioned
from them (pods wait until then), deletion, watch, and the CRD schema's refusals."""

from __future__ import annotations

import asyncio
import os

import pytest
from devcluster_helpers import api_error, pod
from kubernetes_asyncio import client, watch

from jupyterhub_platform.devcluster.procs import wait_for
from jupyterhub_platform.devcluster.storage import claim_dir, snapshot_dir
from tests.backup.backup_fixtures import tree

GROUP, VERSION = "snapshot.storage.k8s.io", "v1"


def _claim(name: str, size: str = "1Gi", snapshot: str | None = None) -> dict:
    spec: dict = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}
    if snapshot:
        spec["dataSource"] = {"apiGroup": GROUP, "kind": "VolumeSnapshot", "name": snapshot}
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
            "spec": spec}  # fmt: skip


def _snapshot(name: str, claim: str, **spec) -> dict:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "VolumeSnapshot",
            "metadata": {"name": name, "labels": {"user": "alice"}},
            "spec": {"source": {"persistentVolumeClaimName": claim}, **spec}}  # fmt: skip


def _home(root) -> None:
    (root / "deep").mkdir(parents=True)
    (root / "notes.txt").write_text("first\n")
    os.chmod(root / "notes.txt", 0o640)
    (root / "deep" / "data.bin").write_bytes(os.urandom(50_000))
    os.symlink("deep/data.bin", root / "link")
    os.symlink("nowhere", root / "dangling")


async def _ready(custom, name: str) -> dict:
    async def ready():
        snap = await custom.get_namespaced_custom_object(GROUP, VERSION, "default",
                                                         "volumesnapshots", name)  # fmt: skip
        return snap if (snap.get("status") or {}).get("readyToUse") else None

    return await wait_for(ready, timeout=30, interval=0.1, what=f"snapshot {name} ready")


async def _bound(core, name: str):
    async def bound():
        pvc = await core.read_namespaced_persistent_volume_claim(name, "default")
        return pvc if pvc.status.phase == "Bound" else None

    return await wait_for(bound, timeout=30, interval=0.1, what=f"claim {name} bound")


async def test_a_snapshot_is_point_in_time_and_restores_into_a_new_claim(k8s, core, devcluster):
    custom = client.CustomObjectsApi(k8s)
    await core.create_namespaced_persistent_volume_claim("default", _claim("home"))
    home = claim_dir(devcluster.state_dir, "default", "home")
    _home(home)
    before = tree(home)

    # a claim of a snapshot not taken yet stays Pending, and its pod unscheduled, until then
    await core.create_namespaced_persistent_volume_claim("default", _claim("back", "2Gi", "snap-1"))
    await core.create_namespaced_pod("default", pod("reader", volumes=[
        client.V1Volume(name="v", persistent_volume_claim=client.V1PersistentVolumeClaimVolumeSource(
            claim_name="back", read_only=True))]))  # fmt: skip

    async def waiting():
        events = await core.list_namespaced_event(
            "default", field_selector="involvedObject.name=reader")  # fmt: skip
        return "FailedScheduling" in {e.reason for e in events.items}

    assert await wait_for(waiting, timeout=10, interval=0.1, what="reader FailedScheduling")
    assert (await core.read_namespaced_pod("reader", "default")).spec.node_name is None
    assert (await core.read_namespaced_persistent_volume_claim("back", "default")).status.phase == (
        "Pending"
    )

    made = await custom.create_namespaced_custom_object(
        GROUP, VERSION, "default", "volumesnapshots", _snapshot("snap-1", "home"))  # fmt: skip
    assert made["metadata"]["labels"] == {"user": "alice"} and "status" not in made
    snap = await _ready(custom, "snap-1")
    (home / "notes.txt").write_text("changed\n")  # after the snapshot: not in it
    (home / "deep" / "data.bin").unlink()
    status = snap["status"]
    content_name = status["boundVolumeSnapshotContentName"]
    assert content_name == f"snapcontent-{made['metadata']['uid']}"
    assert status["restoreSize"] == "1Gi" and status["creationTime"].endswith("Z")
    content = await custom.get_cluster_custom_object(GROUP, VERSION, "volumesnapshotcontents",
                                                     content_name)  # fmt: skip
    assert content["spec"]["volumeSnapshotRef"]["uid"] == made["metadata"]["uid"]
    assert content["spec"]["deletionPolicy"] == "Delete"
    assert content["spec"]["volumeSnapshotClassName"] == "devcluster-snapshots"
    assert content["status"]["readyToUse"] is True and content["status"]["restoreSize"] > 50_000

    bound = await _bound(core, "back")
    assert bound.spec.data_source_ref.kind == "VolumeSnapshot" and bound.spec.volume_name
    assert tree(claim_dir(devcluster.state_dir, "default", "back")) == before

    async def scheduled():
        return (await core.read_namespaced_pod("reader", "default")).spec.node_name

    assert await wait_for(scheduled, timeout=10, interval=0.1, what="reader scheduled")

    copy = snapshot_dir(devcluster.state_dir, content_name)
    assert copy.is_dir()
    await custom.delete_namespaced_custom_object(GROUP, VERSION, "default", "volumesnapshots",
                                                 "snap-1")  # fmt: skip

    async def gone():
        listed = await custom.list_cluster_custom_object(GROUP, VERSION, "volumesnapshotcontents")
        return not listed["items"] and not copy.exists()

    assert await wait_for(gone, timeout=10, interval=0.1, what="content and copy removed")


async def test_snapshots_watch_list_and_refusals(k8s, core):
    custom = client.CustomObjectsApi(k8s)
    await core.create_namespaced_persistent_volume_claim("default", _claim("home"))
    seen: list[tuple[str, bool]] = []

    async def follow():
        w = watch.Watch()
        async with w.stream(custom.list_namespaced_custom_object, GROUP, VERSION, "default",
                            "volumesnapshots", timeout_seconds=20) as stream:  # fmt: skip
            async for event in stream:
                ready = bool((event["object"].get("status") or {}).get("readyToUse"))
                seen.append((event["type"], ready))
                if ready:
                    return

    watcher = asyncio.create_task(follow())
    await asyncio.sleep(0.2)
    await custom.create_namespaced_custom_object(
        GROUP, VERSION, "default", "volumesnapshots", _snapshot("snap-w", "home"))  # fmt: skip
    await asyncio.wait_for(watcher, 20)
    # ADDED not ready, then MODIFIED ready; a watch that began late (a loaded machine) lists it
    # ready at once
    assert seen[0][0] == "ADDED" and seen[-1][1] is True
    assert seen[0][1] is True or seen[-1][0] == "MODIFIED"
    listed = await custom.list_namespaced_custom_object(
        GROUP, VERSION, "default", "volumesnapshots", label_selector="user=alice")  # fmt: skip
    assert [s["metadata"]["name"] for s in listed["items"]] == ["snap-w"]

    # a claim that does not exist, a class that does not: status.error says which
    for name, body in (("no-claim", _snapshot("no-claim", "nothing")),
                       ("no-class", _snapshot("no-class", "home", volumeSnapshotClassName="gold"))):  # fmt: skip
        await custom.create_namespaced_custom_object(GROUP, VERSION, "default",
                                                     "volumesnapshots", body)  # fmt: skip

        async def failed(name=name):
            snap = await custom.get_namespaced_custom_object(
                GROUP, VERSION, "default", "volumesnapshots", name)  # fmt: skip
            return (snap.get("status") or {}).get("error")

        error = await wait_for(failed, timeout=10, interval=0.1, what=f"{name} error")
        assert ('"nothing" not found' if name == "no-claim" else '"gold" not found') in error[
            "message"
        ]

    # the CRD's schema: exactly one source, no unknown fields, no empty class name
    both = _snapshot("both", "home")
    both["spec"]["source"]["volumeSnapshotContentName"] = "x"
    unknown = _snapshot("unknown", "home", retain=True)
    empty_class = _snapshot("empty", "home", volumeSnapshotClassName="")
    for body, field in ((both, "spec.source"), (unknown, "spec.retain"),
                        (empty_class, "spec.volumeSnapshotClassName")):  # fmt: skip
        status, answer = await api_error(custom.create_namespaced_custom_object(
            GROUP, VERSION, "default", "volumesnapshots", body))  # fmt: skip
        assert status == 422 and field in {c["field"] for c in answer["details"]["causes"]}, answer


@pytest.mark.parametrize("size", ["1Mi"])
async def test_a_claim_smaller_than_the_snapshot_stays_pending(k8s, core, size):
    custom = client.CustomObjectsApi(k8s)
    await core.create_namespaced_persistent_volume_claim("default", _claim("home", "1Gi"))
    await custom.create_namespaced_custom_object(
        GROUP, VERSION, "default", "volumesnapshots", _snapshot("snap-s", "home"))  # fmt: skip
    await _ready(custom, "snap-s")
    await core.create_namespaced_persistent_volume_claim("default", _claim("small", size, "snap-s"))
    await asyncio.sleep(0.5)
    pvc = await core.read_namespaced_persistent_volume_claim("small", "default")
    assert pvc.status.phase == "Pending"
    classes = await custom.list_cluster_custom_object(GROUP, VERSION, "volumesnapshotclasses")
    assert [c["driver"] for c in classes["items"]] == ["devcluster.local/hostpath"]
