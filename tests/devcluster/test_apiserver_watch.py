"""Watch semantics: initial events, resume, expiry (410), timeouts and selector transitions."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from devcluster_helpers import pod
from kubernetes_asyncio import client, watch


async def collect(stream, count: int, timeout: float = 5) -> list[tuple[str, dict]]:
    """The next ``count`` events of a kubernetes_asyncio watch stream."""
    events = []

    async def gather():
        async for event in stream:
            events.append((event["type"], event["raw_object"]))
            if len(events) == count:
                return

    await asyncio.wait_for(gather(), timeout)
    return events


async def test_watch_from_zero_starts_with_current_objects(core):
    await core.create_namespaced_pod("default", pod("a"))
    await core.create_namespaced_pod("default", pod("b"))
    async with watch.Watch().stream(
        core.list_namespaced_pod, "default", resource_version="0", timeout_seconds=5
    ) as stream:
        events = await collect(stream, 2)
    assert [(t, o["metadata"]["name"]) for t, o in events] == [("ADDED", "a"), ("ADDED", "b")]
    assert all(o["metadata"]["resourceVersion"] for _, o in events)


async def test_watch_resumes_after_a_resource_version(core):
    await core.create_namespaced_pod("default", pod("old"))
    since = (await core.list_namespaced_pod("default")).metadata.resource_version
    await core.create_namespaced_pod("default", pod("new"))
    await core.delete_namespaced_pod("new", "default", grace_period_seconds=0)
    events = []
    async with watch.Watch().stream(
        core.list_namespaced_pod, "default", resource_version=since, timeout_seconds=5
    ) as stream:
        async for event in stream:
            events.append((event["type"], event["raw_object"]["metadata"]))
            if event["type"] == "DELETED":
                break
    # only changes after `since`: "old" is not replayed; "new" may be scheduled in between
    assert {meta["name"] for _, meta in events} == {"new"}
    assert events[0][0] == "ADDED" and events[-1][0] == "DELETED"
    versions = [int(meta["resourceVersion"]) for _, meta in events]
    assert versions == sorted(versions) and versions[0] > int(since)


async def test_expired_resource_version_gives_410(devcluster, core):
    await core.create_namespaced_pod("default", pod("x"))
    devcluster.store.compact()
    async with devcluster.access.session() as http:
        url = f"{devcluster.url}/api/v1/namespaces/default/pods?watch=True&resourceVersion=2"
        async with http.get(url) as resp:
            assert resp.status == 200
            line = await resp.content.readline()
            assert await resp.content.readline() == b""
    event = json.loads(line)
    assert event["type"] == "ERROR"
    status = event["object"]
    assert status["code"] == 410 and status["reason"] == "Expired"
    assert status["kind"] == "Status" and status["message"].startswith(
        "too old resource version: 2"
    )
    with pytest.raises(client.ApiException) as info:
        async with watch.Watch().stream(
            core.list_namespaced_pod, "default", resource_version="2", timeout_seconds=5
        ) as stream:
            await collect(stream, 1)
    assert info.value.status == 410


async def test_watch_honours_timeout_seconds(core):
    started = time.monotonic()
    async with watch.Watch().stream(
        core.list_namespaced_pod, "default", timeout_seconds=1
    ) as stream:
        events = [event async for event in stream]
    assert events == []
    assert 0.9 <= time.monotonic() - started < 5


async def test_selector_transitions(core):
    await core.create_namespaced_pod("default", pod("t", labels={"role": "other"}))
    listed = await core.list_namespaced_pod("default")
    async with watch.Watch().stream(
        core.list_namespaced_pod,
        "default",
        label_selector="role=web",
        resource_version=listed.metadata.resource_version,
        timeout_seconds=5,
    ) as stream:
        await core.patch_namespaced_pod("t", "default", {"metadata": {"labels": {"role": "web"}}})
        await core.patch_namespaced_pod("t", "default", {"metadata": {"labels": {"role": "db"}}})
        events = await collect(stream, 2)
    assert [t for t, _ in events] == ["ADDED", "DELETED"]
    assert events[1][1]["metadata"]["labels"] == {"role": "db"}


async def test_watch_all_namespaces_with_field_selector(core):
    await core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="other")))
    listed = await core.list_pod_for_all_namespaces()
    async with watch.Watch().stream(
        core.list_pod_for_all_namespaces,
        field_selector="metadata.namespace=other",
        resource_version=listed.metadata.resource_version,
        allow_watch_bookmarks=True,
        timeout_seconds=5,
    ) as stream:
        await core.create_namespaced_pod("default", pod("skip"))
        await core.create_namespaced_pod("other", pod("keep"))
        events = await collect(stream, 1)
    assert events[0][0] == "ADDED" and events[0][1]["metadata"]["name"] == "keep"


@pytest.mark.parametrize("flag", ["true", "True", "1"])
async def test_watch_flag_spellings(devcluster, flag):
    async with devcluster.access.session() as http:
        url = f"{devcluster.url}/api/v1/namespaces?watch={flag}&timeoutSeconds=1"
        async with http.get(url) as resp:
            first = json.loads(await resp.content.readline())
    assert first["type"] == "ADDED" and first["object"]["kind"] == "Namespace"


async def test_deleted_event_carries_final_object(core):
    await core.create_namespaced_config_map(
        "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="bye"), data={"k": "v"})
    )
    listed = await core.list_namespaced_config_map("default")
    async with watch.Watch().stream(
        core.list_namespaced_config_map,
        "default",
        resource_version=listed.metadata.resource_version,
        timeout_seconds=5,
    ) as stream:
        await core.delete_namespaced_config_map("bye", "default")
        events = await collect(stream, 1)
    kind, obj = events[0]
    assert kind == "DELETED" and obj["data"] == {"k": "v"}
    assert int(obj["metadata"]["resourceVersion"]) > int(listed.metadata.resource_version)
