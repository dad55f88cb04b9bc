"""The snapshot backend's browse, call by call, on an in-memory stand-in for the Kubernetes API
(the e2e test runs it on the emulator): the first browse creates the listing claim and Job and
says "preparing"; two browses at once make one Job; a service restarted meanwhile finds it;
the finished Job's log becomes the ConfigMap, its claim goes, later browses read only the
ConfigMap; a failed Job's reason in one line; a listing too large kept as that reason (no
second Job); snapshots not the user's (404) or not ready (409) refused before anything."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from types import SimpleNamespace

import pytest
from kubernetes_asyncio import client

from jupyterhub_platform.services.backup.restic import RestoreRequestError
from jupyterhub_platform.services.backup.snapshot_backend import SnapshotBackend
from jupyterhub_platform.services.backup.snapshot_files import (
    PREPARING,
    TOO_LARGE,
    ListingFailed,
    ListingPending,
    listing_name,
)
from jupyterhub_platform.services.backup.volume_snapshots import (
    SnapshotNotReady,
    UnknownSnapshot,
    volume_snapshot,
)
from tests.backup.backup_fixtures import HOME_CLAIM

SNAPSHOT = "snapshot-claim-alice-1"
LOG = "listing begins\nbatch 2\n41ed 4096 1700000000\n81a4 5 1700000000\nnames\n 2e 00 2e 2f 61 00\n" \
      "targets\n 00 00\nlisting complete\n"  # fmt: skip


class _Body:
    def __init__(self, obj):
        self._raw = json.dumps(obj).encode()

    async def read(self) -> bytes:
        return self._raw


def _missing(status: int = 404):
    return client.ApiException(status=status, reason="NotFound" if status == 404 else "Conflict")


class FakeKube:
    """Namespaced objects in dicts; every call is recorded as (verb, kind, name)."""

    def __init__(self, snapshots: list[dict]):
        self.objects: dict[tuple[str, str], dict] = {}
        self.snapshots = snapshots
        self.calls: list[tuple[str, str, str]] = []
        self.log = LOG
        self.api_client = client.ApiClient()
        home = HOME_CLAIM | {"metadata": {"name": "claim-alice", "annotations": {
            "hub.jupyter.org/username": "alice"}}}  # fmt: skip
        self.home = self.api_client._ApiClient__deserialize(home, "V1PersistentVolumeClaim")

    def _create(self, kind: str, body: dict) -> dict:
        name = body["metadata"]["name"]
        self.calls.append(("create", kind, name))
        if (kind, name) in self.objects:
            raise _missing(409)
        body = json.loads(json.dumps(body))
        body["metadata"].setdefault("uid", f"uid-{kind}-{name}")
        self.objects[(kind, name)] = body
        return body

    async def _read(self, kind: str, name: str) -> dict:
        self.calls.append(("get", kind, name))
        found = self.objects.get((kind, name))
        await asyncio.sleep(0)  # answered, then two browses at once interleave
        if found is None:
            raise _missing()
        return found

    # CoreV1Api
    async def read_namespaced_persistent_volume_claim(self, name, ns):
        return self.home

    async def create_namespaced_persistent_volume_claim(self, ns, body):
        return self._create("pvc", body)

    async def patch_namespaced_persistent_volume_claim(self, name, ns, body):
        self.calls.append(("patch", "pvc", name))
        self.objects[("pvc", name)]["metadata"].update(body["metadata"])

    async def delete_namespaced_persistent_volume_claim(self, name, ns):
        self.calls.append(("delete", "pvc", name))
        if self.objects.pop(("pvc", name), None) is None:
            raise _missing()

    async def read_namespaced_config_map(self, name, ns):
        return await self._read("configmap", name)

    async def create_namespaced_config_map(self, ns, body):
        return self._create("configmap", body)

    async def list_namespaced_pod(self, ns, label_selector, _preload_content):
        pods = [{"metadata": {"name": f"{o['metadata']['name']}-pod", "creationTimestamp": "t",
                              "ownerReferences": [{"uid": o["metadata"]["uid"]}]}}
                for (kind, _), o in self.objects.items() if kind == "job"]  # fmt: skip
        return _Body({"items": pods})

    async def read_namespaced_pod_log(self, name, ns):
        self.calls.append(("get", "pods/log", name))
        return self.log

    # BatchV1Api
    async def read_namespaced_job(self, name, ns):
        return await self._read("job", name)

    async def create_namespaced_job(self, ns, body):
        return self._create("job", body)

    def finish(self, outcome: str, **condition) -> None:
        job = self.objects[("job", listing_name(SNAPSHOT))]
        job["status"] = {"conditions": [{"type": outcome, "status": "True", **condition}]}


def _backend(kube: FakeKube) -> SnapshotBackend:
    @contextlib.asynccontextmanager
    async def kube_apis():
        yield kube, kube, "default"

    app = SimpleNamespace(kube_apis=kube_apis, image="restic/restic:0.14.0",
                          log=logging.getLogger("test-backup"))  # fmt: skip
    backend = SnapshotBackend(app)

    async def listed(core, ns, selector):
        return kube.snapshots

    backend._list_snapshots = listed
    return backend


def _snapshot(name=SNAPSHOT, user="alice", **status):
    snap = volume_snapshot(name, user, "claim-alice", "")
    snap["metadata"]["uid"] = f"uid-{name}"
    snap["status"] = status or {"readyToUse": True, "restoreSize": "10Gi",
                                "creationTime": "2026-12-02T02:00:00Z"}  # fmt: skip
    return snap


async def test_the_first_browses_prepare_one_listing_then_the_configmap_serves_every_browse():
    kube = FakeKube([_snapshot()])
    name = listing_name(SNAPSHOT)
    pending = await asyncio.gather(  # two browses at once (two tabs, or two services)
        *(_backend(kube).files("claim-alice", SNAPSHOT, "/") for _ in range(2)),
        return_exceptions=True,
    )
    assert [str(p) for p in pending] == [PREPARING, PREPARING]
    assert all(isinstance(p, ListingPending) for p in pending)
    assert [c for c in kube.calls if c[0] == "create"] == [
        ("create", "pvc", name), ("create", "job", name),  # the first browse
        ("create", "pvc", name), ("create", "job", name)]  # the second: 409s, one Job  # fmt: skip
    assert [k for k in kube.objects if k[1] == name] == [("pvc", name), ("job", name)]
    assert kube.objects[("pvc", name)]["metadata"]["ownerReferences"][0]["kind"] == "Job"
    kube.calls.clear()
    restarted = _backend(kube)  # a service restarted while the Job runs: the same Job
    with pytest.raises(ListingPending):
        await restarted.files("claim-alice", SNAPSHOT, "/")
    assert not [c for c in kube.calls if c[0] == "create"]

    kube.finish("Complete")
    kube.calls.clear()
    (entry,) = await restarted.files("claim-alice", SNAPSHOT, "/")
    assert (entry["name"], entry["type"], entry["size"]) == ("a", "file", 5)
    assert ("create", "configmap", name) in kube.calls and ("delete", "pvc", name) in kube.calls
    assert ("pvc", name) not in kube.objects  # the whole copy goes once the listing is kept
    kube.calls.clear()
    kube.log = "changed: never read again"
    assert await _backend(kube).files("claim-alice", SNAPSHOT, "/") == [entry]
    assert kube.calls == [("get", "configmap", name)]  # the ConfigMap alone


async def test_a_failed_listing_job_says_why_in_one_line():
    kube = FakeKube([_snapshot()])
    backend = _backend(kube)
    with pytest.raises(ListingPending):
        await backend.files("claim-alice", SNAPSHOT, "/")
    kube.finish("Failed", message="Job has reached the specified backoff limit")
    kube.log = "listing begins\nbatch 9\nstat: can't stat './x': Input/output error\n"
    with pytest.raises(ListingFailed) as failed:
        await backend.files("claim-alice", SNAPSHOT, "/")
    assert str(failed.value) == (
        "Job has reached the specified backoff limit; the listing said: stat: can't stat './x': "
        "Input/output error"
    )
    assert ("configmap", listing_name(SNAPSHOT)) not in kube.objects  # tried again after TTL


async def test_a_listing_too_large_is_kept_as_that_reason_and_never_listed_twice():
    kube = FakeKube([_snapshot()])
    backend = _backend(kube)
    with pytest.raises(ListingPending):
        await backend.files("claim-alice", SNAPSHOT, "/")
    kube.finish("Complete")
    kube.log = LOG.replace("listing begins\n", "")  # rotated away: only a huge log is
    for _ in range(2):
        with pytest.raises(ListingFailed, match="too large to browse here; restore a folder"):
            await backend.files("claim-alice", SNAPSHOT, "/")
    assert sum(1 for c in kube.calls if c[:2] == ("create", "job")) == 1
    stored = kube.objects[("configmap", listing_name(SNAPSHOT))]
    assert (
        stored["metadata"]["annotations"]["backup.jupyterhub-platform/listing-error"] == TOO_LARGE
    )


NOT_ALICES = ("is not one of alice's", "among alice's snapshots")


@pytest.mark.parametrize(
    ("snapshots", "error", "said"),
    [
        ([_snapshot(user="mallory")], UnknownSnapshot, NOT_ALICES),
        ([], UnknownSnapshot, NOT_ALICES),
        ([_snapshot(readyToUse=False)], SnapshotNotReady, ("not ready yet (in progress)",) * 2),
        ([_snapshot(readyToUse=False, error={"message": "quota"})], SnapshotNotReady,
         ("failed (quota)",) * 2),
    ],
)  # fmt: skip
async def test_snapshots_not_the_users_or_not_ready_are_refused_before_any_job(
    snapshots, error, said
):
    kube = FakeKube(snapshots)
    with pytest.raises(error) as refused:
        await _backend(kube).files("claim-alice", SNAPSHOT, "/")
    assert said[1] in str(refused.value)
    # a restore too (one not the user's: 400 "is not one of", as for restic)
    with pytest.raises(RestoreRequestError if error is UnknownSnapshot else error) as refused:
        await _backend(kube).restore("alice", "claim-alice", SNAPSHOT, [])
    assert said[0] in str(refused.value)
    assert not [c for c in kube.calls if c[0] == "create"]
