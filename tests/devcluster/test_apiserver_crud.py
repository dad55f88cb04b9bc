"""Create/read/update/patch/delete, Status bodies and discovery, through kubernetes_asyncio."""

from __future__ import annotations

import base64

import pytest
from devcluster_helpers import api_error, pod
from kubernetes_asyncio import client

from jupyterhub_platform.devcluster.procs import wait_for


async def test_create_sets_server_fields(core):
    created = await core.create_namespaced_pod("default", pod("web"))
    meta = created.metadata
    assert meta.namespace == "default"
    assert meta.uid and meta.creation_timestamp is not None
    assert meta.generation == 1
    assert int(meta.resource_version) > 0
    assert created.status.phase == "Pending"
    assert created.status.qos_class == "BestEffort"
    assert created.kind == "Pod" and created.api_version == "v1"
    fetched = await core.read_namespaced_pod("web", "default")
    assert fetched.metadata.uid == meta.uid


async def test_resource_versions_come_from_one_counter(core):
    first = await core.create_namespaced_config_map(
        "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="a"), data={"k": "v"})
    )
    second = await core.create_namespaced_secret(
        "default", client.V1Secret(metadata=client.V1ObjectMeta(name="b"), string_data={"k": "v"})
    )
    assert int(second.metadata.resource_version) > int(first.metadata.resource_version)
    listed = await core.list_namespaced_config_map("default")
    assert listed.kind == "ConfigMapList"
    assert int(listed.metadata.resource_version) >= int(second.metadata.resource_version)
    assert listed.items[0].kind == "ConfigMap"


async def test_generate_name(core):
    body = pod("unused")
    body.metadata.name = None
    body.metadata.generate_name = "job-"
    created = await core.create_namespaced_pod("default", body)
    assert created.metadata.name.startswith("job-") and len(created.metadata.name) == 9


async def test_already_exists_status_body(core):
    await core.create_namespaced_pod("default", pod("dup"))
    status, body = await api_error(core.create_namespaced_pod("default", pod("dup")))
    assert status == 409
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'pods "dup" already exists',
        "reason": "AlreadyExists",
        "details": {"name": "dup", "kind": "pods"},
        "code": 409,
    }


async def test_not_found_status_body(core, k8s):
    status, body = await api_error(core.read_namespaced_pod("ghost", "default"))
    assert status == 404
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'pods "ghost" not found',
        "reason": "NotFound",
        "details": {"name": "ghost", "kind": "pods"},
        "code": 404,
    }
    status, body = await api_error(client.BatchV1Api(k8s).read_namespaced_job("ghost", "default"))
    assert body["details"] == {"name": "ghost", "group": "batch", "kind": "jobs"}
    assert body["message"] == 'jobs.batch "ghost" not found'


async def test_create_in_missing_namespace_is_not_found(core):
    status, body = await api_error(core.create_namespaced_pod("nowhere", pod("x")))
    assert status == 404
    assert body["message"] == 'namespaces "nowhere" not found'
    assert body["details"] == {"name": "nowhere", "kind": "namespaces"}


async def test_unknown_field_is_invalid(devcluster):
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "bad"},
        "spec": {"containers": [{"name": "c", "image": "x", "imagePolicy": "Always"}]},
    }
    async with devcluster.access.session() as http:
        async with http.post(f"{devcluster.url}/api/v1/namespaces/default/pods", json=body) as resp:
            assert resp.status == 422
            status = await resp.json()
    assert status["reason"] == "Invalid" and status["code"] == 422
    assert (
        status["message"]
        == 'Pod "bad" is invalid: spec.containers[0].imagePolicy: unknown field "imagePolicy"'
    )
    assert status["details"] == {
        "name": "bad",
        "kind": "Pod",
        "causes": [
            {
                "reason": "FieldValueInvalid",
                "message": 'unknown field "imagePolicy"',
                "field": "spec.containers[0].imagePolicy",
            }
        ],
    }


async def test_semantic_validation(core):
    status, body = await api_error(core.create_namespaced_pod("default", pod("NoCaps")))
    assert status == 422 and body["details"]["causes"][0]["field"] == "metadata.name"
    status, body = await api_error(
        core.create_namespaced_pod("default", pod("noimage", image=None))
    )
    assert status == 422
    assert body["details"]["causes"] == [
        {
            "reason": "FieldValueRequired",
            "message": "Required value",
            "field": "spec.containers[0].image",
        }
    ]


async def test_put_with_stale_resource_version_conflicts(core):
    created = await core.create_namespaced_config_map(
        "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="cfg"), data={"a": "1"})
    )
    created.data = {"a": "2"}
    updated = await core.replace_namespaced_config_map("cfg", "default", created)
    assert updated.data == {"a": "2"}
    assert int(updated.metadata.resource_version) > int(created.metadata.resource_version)
    created.data = {"a": "3"}  # still carries the old resourceVersion
    status, body = await api_error(core.replace_namespaced_config_map("cfg", "default", created))
    assert status == 409 and body["reason"] == "Conflict"
    assert body["message"].startswith('Operation cannot be fulfilled on configmaps "cfg"')


async def test_patch_content_types(core):
    await core.create_namespaced_pod("default", pod("p", labels={"a": "1", "b": "2"}))
    merged = await core.patch_namespaced_pod(
        "p",
        "default",
        {"metadata": {"labels": {"a": None, "c": "3"}}},
        _content_type="application/merge-patch+json",
    )
    assert merged.metadata.labels == {"b": "2", "c": "3"}
    strategic = await core.patch_namespaced_pod(
        "p",
        "default",
        {"metadata": {"annotations": {"x": "y"}}},
        _content_type="application/strategic-merge-patch+json",
    )
    assert strategic.metadata.annotations == {"x": "y"}
    await core.patch_namespaced_pod_status(
        "p",
        "default",
        {"status": {"conditions": [{"type": "Ready", "status": "True"}]}},
        _content_type="application/strategic-merge-patch+json",
    )
    await wait_for(lambda: _scheduled(core, "p"), timeout=5, what="pod p to be scheduled")
    conditions = (
        await core.patch_namespaced_pod_status(
            "p", "default", {"status": {"conditions": [{"type": "Ready", "status": "False"}]}}
        )
    ).status.conditions
    assert {c.type: c.status for c in conditions} == {"PodScheduled": "True", "Ready": "False"}
    json_patched = await core.patch_namespaced_pod(
        "p",
        "default",
        [
            {"op": "add", "path": "/metadata/labels/d", "value": "4"},
            {"op": "remove", "path": "/metadata/labels/b"},
        ],
        _content_type="application/json-patch+json",
    )
    assert json_patched.metadata.labels == {"c": "3", "d": "4"}
    status, body = await api_error(
        core.patch_namespaced_pod(
            "p",
            "default",
            {"metadata": {"resourceVersion": "1"}},
            _content_type="application/merge-patch+json",
        )
    )
    assert status == 409 and body["reason"] == "Conflict"
    status, body = await api_error(
        core.patch_namespaced_pod(
            "p",
            "default",
            {"spec": {"containers": [{"name": "c", "image": "x", "bogus": 1}]}},
            _content_type="application/merge-patch+json",
        )
    )
    assert status == 422 and body["details"]["causes"][0]["field"] == "spec.containers[0].bogus"


async def _scheduled(core, name: str) -> bool:
    return bool((await core.read_namespaced_pod(name, "default")).spec.node_name)


async def test_status_subresource(core):
    await core.create_namespaced_pod("default", pod("s"))
    patched = await core.patch_namespaced_pod_status(
        "s",
        "default",
        {
            "status": {"phase": "Running", "podIP": "10.0.0.5"},
            "metadata": {"labels": {"ignored": "yes"}},
        },
    )
    assert patched.status.phase == "Running" and patched.status.pod_ip == "10.0.0.5"
    assert not patched.metadata.labels
    # a main-resource write ignores status
    main = await core.patch_namespaced_pod(
        "s", "default", {"status": {"phase": "Failed"}, "metadata": {"labels": {"k": "v"}}}
    )
    assert main.status.phase == "Running" and main.metadata.labels == {"k": "v"}
    read = await core.read_namespaced_pod_status("s", "default")
    assert read.status.pod_ip == "10.0.0.5"
    read.status.phase = "Succeeded"
    replaced = await core.replace_namespaced_pod_status("s", "default", read)
    assert replaced.status.phase == "Succeeded"


async def test_pod_spec_is_immutable_but_for_images(core):
    created = await core.create_namespaced_pod("default", pod("fixed"))
    patched = await core.patch_namespaced_pod(
        "fixed", "default", {"spec": {"containers": [{"name": "main", "image": "busybox:1.37"}]}}
    )
    assert patched.spec.containers[0].image == "busybox:1.37"
    assert patched.metadata.generation == created.metadata.generation + 1
    status, body = await api_error(
        core.patch_namespaced_pod("fixed", "default", {"spec": {"restartPolicy": "Never"}})
    )
    assert status == 422 and body["details"]["causes"][0]["reason"] == "FieldValueForbidden"
    assert "pod updates may not change fields" in body["message"]


async def test_unchanged_write_keeps_resource_version(core):
    created = await core.create_namespaced_config_map(
        "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="same", labels={"a": "b"}))
    )
    again = await core.patch_namespaced_config_map(
        "same", "default", {"metadata": {"labels": {"a": "b"}}}
    )
    assert again.metadata.resource_version == created.metadata.resource_version


async def test_list_all_namespaces_and_cluster_scoped(core):
    await core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="team-a")))
    await core.create_namespaced_pod("team-a", pod("one"))
    await core.create_namespaced_pod("default", pod("two"))
    everywhere = await core.list_pod_for_all_namespaces()
    assert everywhere.kind == "PodList"
    assert sorted((p.metadata.namespace, p.metadata.name) for p in everywhere.items) == [
        ("default", "two"),
        ("team-a", "one"),
    ]
    namespaces = await core.list_namespace()
    assert {"default", "kube-system", "team-a"} <= {n.metadata.name for n in namespaces.items}
    assert (await core.read_namespace("team-a")).status.phase == "Active"
    nodes = await core.list_node()
    assert [n.metadata.name for n in nodes.items] == ["devcluster"]


async def test_list_pagination(core):
    for i in range(5):
        await core.create_namespaced_pod("default", pod(f"page-{i}"))
    first = await core.list_namespaced_pod("default", limit=2)
    assert [p.metadata.name for p in first.items] == ["page-0", "page-1"]
    assert first.metadata.remaining_item_count == 3
    rest = await core.list_namespaced_pod("default", limit=10, _continue=first.metadata._continue)
    assert [p.metadata.name for p in rest.items] == ["page-2", "page-3", "page-4"]
    assert rest.metadata._continue is None


@pytest.mark.parametrize(
    "selector,expected",
    [
        ("app=web", {"w1", "w2"}),
        ("app==web,tier!=db", {"w1"}),
        ("app in (web,db),tier", {"w2", "d1"}),
        ("app notin (web)", {"d1", "bare"}),
        ("!tier", {"w1", "bare"}),
        ("tier", {"w2", "d1"}),
    ],
)
async def test_label_selectors(core, selector, expected):
    for name, labels in {
        "w1": {"app": "web"},
        "w2": {"app": "web", "tier": "db"},
        "d1": {"app": "db", "tier": "db"},
        "bare": None,
    }.items():
        await core.create_namespaced_pod("default", pod(name, labels=labels))
    listed = await core.list_namespaced_pod("default", label_selector=selector)
    assert {p.metadata.name for p in listed.items} == expected


async def test_field_selectors(core):
    await core.create_namespaced_pod("default", pod("run"))
    await core.create_namespaced_pod("default", pod("wait"))
    await core.patch_namespaced_pod_status("run", "default", {"status": {"phase": "Running"}})
    running = await core.list_namespaced_pod("default", field_selector="status.phase=Running")
    assert [p.metadata.name for p in running.items] == ["run"]
    by_name = await core.list_pod_for_all_namespaces(
        field_selector="metadata.name=wait,metadata.namespace=default"
    )
    assert [p.metadata.name for p in by_name.items] == ["wait"]
    not_running = await core.list_namespaced_pod("default", field_selector="status.phase!=Running")
    assert [p.metadata.name for p in not_running.items] == ["wait"]
    status, body = await api_error(
        core.list_namespaced_pod("default", field_selector="spec.image=x")
    )
    assert status == 400 and body["message"] == "field label not supported: spec.image"
    status, body = await api_error(core.list_namespaced_pod("default", label_selector="a in b"))
    assert status == 400 and body["reason"] == "BadRequest"


async def test_core_events_shape(core, devcluster):
    await core.create_namespaced_pod("default", pod("evented"))

    async def scheduled():
        events = await core.list_namespaced_event(
            "default", field_selector="involvedObject.kind=Pod", _preload_content=False
        )
        items = (await events.json())["items"]
        return [e for e in items if e["involvedObject"]["name"] == "evented"]

    events = await wait_for(scheduled, timeout=5, what="Scheduled event")
    event = events[0]
    assert event["reason"] == "Scheduled" and event["metadata"]["uid"]
    assert "lastTimestamp" in event and "eventTime" in event
    posted = await core.create_namespaced_event(
        "default",
        client.CoreV1Event(
            metadata=client.V1ObjectMeta(name="mine"),
            involved_object=client.V1ObjectReference(
                kind="Pod", name="evented", namespace="default"
            ),
            reason="Pulled",
            message="done",
        ),
    )
    assert posted.event_time is None and posted.last_timestamp is None


async def test_delete_returns_object_and_missing_is_404(core):
    await core.create_namespaced_config_map(
        "default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="gone"))
    )
    deleted = await core.delete_namespaced_config_map("gone", "default", _preload_content=False)
    assert (await deleted.json())["metadata"]["name"] == "gone"
    status, _ = await api_error(core.delete_namespaced_config_map("gone", "default"))
    assert status == 404


async def test_other_api_groups(k8s):
    networking = client.NetworkingV1Api(k8s)
    policy = client.V1NetworkPolicy(
        metadata=client.V1ObjectMeta(name="deny"),
        spec=client.V1NetworkPolicySpec(pod_selector=client.V1LabelSelector()),
    )
    created = await networking.create_namespaced_network_policy("default", policy)
    assert created.api_version == "networking.k8s.io/v1" and created.kind == "NetworkPolicy"
    custom = client.CustomObjectsApi(k8s)
    snap = {
        "apiVersion": "snapshot.storage.k8s.io/v1",
        "kind": "VolumeSnapshot",
        "metadata": {"name": "snap"},
        "spec": {"source": {"persistentVolumeClaimName": "home"}},
    }
    made = await custom.create_namespaced_custom_object(
        "snapshot.storage.k8s.io", "v1", "default", "volumesnapshots", snap
    )
    assert made["metadata"]["uid"] and "status" not in made  # the snapshot controller's to write
    listed = await custom.list_namespaced_custom_object(
        "snapshot.storage.k8s.io", "v1", "default", "volumesnapshots"
    )
    assert listed["kind"] == "VolumeSnapshotList" and len(listed["items"]) == 1


async def test_discovery(k8s, devcluster):
    version = await client.VersionApi(k8s).get_code()
    assert version.major == "1" and int(version.minor) >= 30
    core_versions = await client.CoreApi(k8s).get_api_versions()
    assert core_versions.versions == ["v1"]
    resources = await client.CoreV1Api(k8s).get_api_resources()
    names = {r.name for r in resources.resources}
    assert {"pods", "pods/status", "namespaces", "events", "persistentvolumeclaims"} <= names
    groups = await client.ApisApi(k8s).get_api_versions()
    assert {"batch", "networking.k8s.io", "snapshot.storage.k8s.io"} <= {
        g.name for g in groups.groups
    }
    batch = await client.BatchV1Api(k8s).get_api_resources()
    assert batch.group_version == "batch/v1" and "jobs" in {r.name for r in batch.resources}
    async with devcluster.access.session() as http:
        async with http.get(f"{devcluster.url}/api/v1/namespaces/default/widgets") as resp:
            assert resp.status == 404 and (await resp.json())["reason"] == "NotFound"


async def test_secret_string_data_folds_into_data(core):
    created = await core.create_namespaced_secret(
        "default",
        client.V1Secret(
            metadata=client.V1ObjectMeta(name="creds"), string_data={"token": "s3cret"}
        ),
    )
    assert created.string_data is None
    assert base64.b64decode(created.data["token"]).decode() == "s3cret"
    replaced = await core.patch_namespaced_secret(
        "creds", "default", {"stringData": {"extra": "x"}}
    )
    assert set(replaced.data) == {"token", "extra"}
    assert replaced.string_data is None
