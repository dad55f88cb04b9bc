"""Deletion semantics and the controllers: grace periods, finalizers, GC, namespaces, Jobs."""

from __future__ import annotations

from devcluster_helpers import api_error, pod
from kubernetes_asyncio import client, watch

from jupyterhub_platform.devcluster.procs import wait_for
from jupyterhub_platform.devcluster.resources import NODE


async def scheduled_pod(core, name: str, **kwargs):
    await core.create_namespaced_pod("default", pod(name, **kwargs))

    async def bound():
        found = await core.read_namespaced_pod(name, "default")
        return found if found.spec.node_name else None

    return await wait_for(bound, timeout=5, what=f"pod {name} to be scheduled")


async def gone(read, *args) -> bool:
    try:
        await read(*args)
    except client.ApiException as exc:
        return exc.status == 404
    return False


async def collected(read, name: str, what: str) -> None:
    """Wait (up to 5 s) until the garbage collector removed ``name`` from ``default``."""
    await wait_for(lambda: gone(read, name, "default"), timeout=5, what=what)


async def test_scheduler_binds_pods(core):
    bound = await scheduled_pod(core, "sched")
    assert bound.spec.node_name == "devcluster"
    assert [c.type for c in bound.status.conditions] == ["PodScheduled"]


async def test_graceful_pod_deletion(core):
    created = await scheduled_pod(core, "slow")
    since = created.metadata.resource_version
    deleted = await core.delete_namespaced_pod(
        "slow", "default", body=client.V1DeleteOptions(grace_period_seconds=1)
    )
    assert deleted.metadata.deletion_timestamp is not None
    assert deleted.metadata.deletion_grace_period_seconds == 1
    assert (await core.read_namespaced_pod("slow", "default")).metadata.deletion_timestamp
    seen = []
    async with watch.Watch().stream(
        core.list_namespaced_pod, "default", resource_version=since, timeout_seconds=5
    ) as stream:
        async for event in stream:
            seen.append(event["type"])
            if event["type"] == "DELETED":
                break
    assert seen == ["MODIFIED", "DELETED"]  # marked, then removed when the grace period ended


async def test_zero_grace_and_unscheduled_pods_go_at_once(core, devcluster):
    await scheduled_pod(core, "now")
    await core.delete_namespaced_pod("now", "default", grace_period_seconds=0)
    assert await gone(core.read_namespaced_pod, "now", "default")
    # an unscheduled pod is removed immediately whatever the grace period
    devcluster.store.remove(NODE, None, "devcluster")  # nowhere to schedule pods now
    await core.create_namespaced_pod("default", pod("pending"))
    await core.delete_namespaced_pod("pending", "default", grace_period_seconds=30)
    assert await gone(core.read_namespaced_pod, "pending", "default")


async def test_finalizers_hold_deletion(core):
    cm = client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="held", finalizers=["example.com/hold"])
    )
    await core.create_namespaced_config_map("default", cm)
    deleted = await core.delete_namespaced_config_map("held", "default", _preload_content=False)
    assert (await deleted.json())["metadata"]["deletionTimestamp"]
    held = await core.read_namespaced_config_map("held", "default")
    assert held.metadata.deletion_timestamp and held.metadata.finalizers == ["example.com/hold"]
    await core.patch_namespaced_config_map("held", "default", {"metadata": {"finalizers": None}})
    assert await gone(core.read_namespaced_config_map, "held", "default")


def owned(name: str, owner, kind: str = "Pod") -> client.V1ConfigMap:
    ref = client.V1OwnerReference(
        api_version="v1", kind=kind, name=owner.metadata.name, uid=owner.metadata.uid
    )
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name, owner_references=[ref]))


async def test_garbage_collection_background(core):
    owner = await core.create_namespaced_pod("default", pod("owner"))
    await core.create_namespaced_config_map("default", owned("dep", owner))
    await core.create_namespaced_secret(
        "default", client.V1Secret(metadata=owned("sec", owner).metadata)
    )
    await core.delete_namespaced_pod("owner", "default", grace_period_seconds=0)
    await collected(core.read_namespaced_config_map, "dep", "dependent config map to be collected")
    await collected(core.read_namespaced_secret, "sec", "dependent secret to be collected")


async def test_garbage_collection_orphan_and_absent_owner(core):
    owner = await core.create_namespaced_pod("default", pod("keeper"))
    await core.create_namespaced_config_map("default", owned("orphan", owner))
    await core.delete_namespaced_pod(
        "keeper", "default", grace_period_seconds=0, propagation_policy="Orphan"
    )
    orphan = await core.read_namespaced_config_map("orphan", "default")
    assert not orphan.metadata.owner_references
    # created with an owner that no longer exists: collected right away
    await core.create_namespaced_config_map("default", owned("late", owner))
    await collected(
        core.read_namespaced_config_map, "late", "object with an absent owner to be collected"
    )


async def test_garbage_collection_foreground(core):
    owner = await core.create_namespaced_config_map(
        "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="parent"))
    )
    await core.create_namespaced_config_map("default", owned("child", owner, kind="ConfigMap"))
    await core.delete_namespaced_config_map("parent", "default", propagation_policy="Foreground")
    await collected(core.read_namespaced_config_map, "child", "child to go first")
    await collected(
        core.read_namespaced_config_map, "parent", "parent to go once its children are gone"
    )


async def test_namespace_deletion_empties_it(core):
    await core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="doomed")))
    await core.create_namespaced_config_map(
        "doomed", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="c"))
    )
    await core.delete_namespace("doomed")
    await wait_for(lambda: gone(core.read_namespace, "doomed"), timeout=5, what="namespace removal")
    status, body = await api_error(core.delete_namespace("default"))
    assert status == 403 and body["reason"] == "Forbidden"


def job(name: str, **spec) -> client.V1Job:
    template = client.V1PodTemplateSpec(
        spec=client.V1PodSpec(
            restart_policy="Never",
            containers=[client.V1Container(name="work", image="busybox:1.36")],
        )
    )
    return client.V1Job(
        metadata=client.V1ObjectMeta(name=name), spec=client.V1JobSpec(template=template, **spec)
    )


async def job_pods(core, name: str):
    pods = await core.list_namespaced_pod("default", label_selector=f"job-name={name}")
    return pods.items


async def finish_pod(core, pod_obj, phase: str) -> None:
    await core.patch_namespaced_pod_status(
        pod_obj.metadata.name, "default", {"status": {"phase": phase}}
    )


async def test_job_runs_a_pod_to_completion(core, k8s):
    batch = client.BatchV1Api(k8s)
    created = await batch.create_namespaced_job("default", job("once"))
    pods = await wait_for(lambda: job_pods(core, "once"), timeout=5, what="job pod")
    [job_pod] = pods
    assert job_pod.metadata.labels["controller-uid"] == created.metadata.uid
    assert job_pod.metadata.owner_references[0].kind == "Job"
    await finish_pod(core, job_pod, "Succeeded")

    async def complete():
        status = (await batch.read_namespaced_job("once", "default")).status
        return status if any(c.type == "Complete" for c in status.conditions or []) else None

    status = await wait_for(complete, timeout=5, what="job completion")
    assert status.succeeded == 1 and status.start_time and status.completion_time
    # deleting a Job orphans its pods unless asked otherwise, like the real server
    await batch.delete_namespaced_job("once", "default", propagation_policy="Background")
    await wait_for(
        lambda: gone(core.read_namespaced_pod, job_pod.metadata.name, "default"),
        timeout=5,
        what="job pod collection",
    )


async def test_job_backoff_limit(core, k8s):
    batch = client.BatchV1Api(k8s)
    await batch.create_namespaced_job("default", job("flaky", backoff_limit=1))
    failed_names = set()
    for _ in range(2):

        async def fresh_pod():
            return [p for p in await job_pods(core, "flaky") if p.metadata.name not in failed_names]

        [attempt] = await wait_for(fresh_pod, timeout=5, what="job attempt")
        failed_names.add(attempt.metadata.name)
        await finish_pod(core, attempt, "Failed")

    async def failed():
        status = (await batch.read_namespaced_job("flaky", "default")).status
        return status if any(c.type == "Failed" for c in status.conditions or []) else None

    status = await wait_for(failed, timeout=5, what="job failure")
    assert status.failed == 2
    assert [c.reason for c in status.conditions if c.type == "Failed"] == ["BackoffLimitExceeded"]
    assert len(await job_pods(core, "flaky")) == 2


async def test_job_ttl_after_finished(core, k8s):
    batch = client.BatchV1Api(k8s)
    await batch.create_namespaced_job("default", job("brief", ttl_seconds_after_finished=0))
    [job_pod] = await wait_for(lambda: job_pods(core, "brief"), timeout=5, what="job pod")
    await finish_pod(core, job_pod, "Succeeded")
    await wait_for(
        lambda: gone(batch.read_namespaced_job, "brief", "default"),
        timeout=5,
        what="finished job to expire",
    )
