"""The pure parts of the emulator: selectors, patches, schema validation, request paths."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jupyterhub_platform.devcluster.patching import (
    PatchError,
    json_patch,
    merge_patch,
    strategic_merge_patch,
)
from jupyterhub_platform.devcluster.resources import POD, UnknownPath, parse_target
from jupyterhub_platform.devcluster.selectors import (
    SelectorError,
    fields_match,
    labels_match,
    parse_field_selector,
    parse_label_selector,
)
from jupyterhub_platform.devcluster.validation import validation_causes

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=10,
)
json_objects = st.dictionaries(st.text(max_size=3), json_values, max_size=4)


@settings(max_examples=60, deadline=None)
@given(json_objects)
def test_merge_patch_with_itself_is_identity_without_nulls(doc):
    def no_nulls(value):
        if isinstance(value, dict):
            return {k: no_nulls(v) for k, v in value.items() if v is not None}
        return value

    clean = no_nulls(doc)
    assert merge_patch(clean, clean) == clean


@settings(max_examples=60, deadline=None)
@given(json_objects, json_objects)
def test_merge_patch_does_not_mutate_inputs(target, patch):
    before = (repr(target), repr(patch))
    merge_patch(target, patch)
    assert (repr(target), repr(patch)) == before


def test_merge_patch_semantics():
    assert merge_patch({"a": {"b": 1, "c": 2}, "l": [1]}, {"a": {"b": None, "d": 3}, "l": [2]}) == {
        "a": {"c": 2, "d": 3},
        "l": [2],
    }


def test_strategic_merge_patch_merges_keyed_lists():
    status = {
        "conditions": [
            {"type": "PodScheduled", "status": "True"},
            {"type": "Ready", "status": "False"},
        ],
        "tolerations": [{"key": "a"}],
    }
    patch = {
        "conditions": [
            {"type": "Ready", "status": "True"},
            {"type": "Initialized", "status": "True"},
        ],
        "tolerations": [{"key": "b"}],
    }
    assert strategic_merge_patch(status, patch) == {
        "conditions": [
            {"type": "PodScheduled", "status": "True"},
            {"type": "Ready", "status": "True"},
            {"type": "Initialized", "status": "True"},
        ],
        "tolerations": [{"key": "b"}],  # no merge key: replaced
    }
    spec = {
        "containers": [
            {"name": "a", "image": "x", "env": [{"name": "K", "value": "1"}]},
            {"name": "b", "image": "y"},
        ]
    }
    patched = strategic_merge_patch(
        spec,
        {
            "containers": [
                {
                    "name": "a",
                    "env": [{"name": "K", "$patch": "delete"}, {"name": "L", "value": "2"}],
                },
                {"name": "b", "$patch": "delete"},
            ]
        },
    )
    assert patched == {
        "containers": [{"name": "a", "image": "x", "env": [{"name": "L", "value": "2"}]}]
    }
    assert strategic_merge_patch({"a": {"b": 1}}, {"a": {"$patch": "replace", "c": 2}}) == {
        "a": {"c": 2}
    }


def test_json_patch_operations():
    doc = {"a": [1, 2], "b": {"c": "x"}, "s/l": 1}
    out = json_patch(
        doc,
        [
            {"op": "add", "path": "/a/-", "value": 3},
            {"op": "add", "path": "/a/0", "value": 0},
            {"op": "replace", "path": "/b/c", "value": "y"},
            {"op": "copy", "from": "/b/c", "path": "/d"},
            {"op": "move", "from": "/s~1l", "path": "/moved"},
            {"op": "test", "path": "/d", "value": "y"},
            {"op": "remove", "path": "/a/1"},
        ],
    )
    assert out == {"a": [0, 2, 3], "b": {"c": "y"}, "d": "y", "moved": 1}
    assert doc == {"a": [1, 2], "b": {"c": "x"}, "s/l": 1}
    for bad in (
        [{"op": "test", "path": "/b/c", "value": "z"}],
        [{"op": "remove", "path": "/nope"}],
        [{"op": "add", "path": "/a/9", "value": 1}],
        [{"op": "jump", "path": "/a"}],
        {"op": "add"},
    ):
        with pytest.raises(PatchError):
            json_patch(doc, bad)


def test_label_selector_grammar():
    reqs = parse_label_selector("app = web, tier in (a, b),!legacy,env notin (prod),owner")
    assert labels_match(reqs, {"app": "web", "tier": "a", "owner": "x"})
    assert not labels_match(reqs, {"app": "web", "tier": "a", "owner": "x", "legacy": "1"})
    assert not labels_match(reqs, {"app": "web", "tier": "a", "owner": "x", "env": "prod"})
    assert parse_label_selector("") == ()
    with pytest.raises(SelectorError):
        parse_label_selector("a in b")


def test_field_selector_values():
    reqs = parse_field_selector("spec.nodeName=,status.phase!=Running", POD.field_path)
    assert fields_match(reqs, {"spec": {}, "status": {"phase": "Pending"}})
    assert not fields_match(reqs, {"spec": {"nodeName": "n"}, "status": {"phase": "Pending"}})
    host = parse_field_selector("spec.hostNetwork=true", POD.field_path)
    assert fields_match(host, {"spec": {"hostNetwork": True}})
    with pytest.raises(SelectorError, match="field label not supported: spec.image"):
        parse_field_selector("spec.image=x", POD.field_path)


def test_request_paths():
    target = parse_target("", "v1", ["namespaces", "ns", "pods", "p", "status"])
    assert (target.rtype.kind, target.namespace, target.name, target.subresource) == (
        "Pod",
        "ns",
        "p",
        "status",
    )
    ns_status = parse_target("", "v1", ["namespaces", "ns", "status"])
    assert (ns_status.rtype.kind, ns_status.name, ns_status.subresource) == (
        "Namespace",
        "ns",
        "status",
    )
    everywhere = parse_target("", "v1", ["pods"])
    assert everywhere.namespace is None and everywhere.name is None
    job = parse_target("batch", "v1", ["namespaces", "ns", "jobs"])
    assert job.rtype.qualified == "jobs.batch"
    for bad in (["pods", "p"], ["namespaces", "ns", "nodes"], ["widgets"], ["pods", "", "x"]):
        with pytest.raises(UnknownPath):
            parse_target("", "v1", bad)


def test_validation_reports_each_problem():
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p", "labels": {"a": 1}},
        "spec": {"containers": [{"image": "x"}], "restartPolicy": "Sometimes"},
    }
    fields = {c["field"]: c["reason"] for c in validation_causes(pod)}
    assert fields == {
        "metadata.labels.a": "FieldValueTypeInvalid",
        "spec.containers[0].name": "FieldValueRequired",
    }
    # semantic checks run once the schema is satisfied
    pod["metadata"]["labels"]["a"] = "1"
    pod["spec"]["containers"][0]["name"] = "c"
    [cause] = validation_causes(pod)
    assert cause["field"] == "spec.restartPolicy" and cause["reason"] == "FieldValueNotSupported"
    ok = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "svc"},
        "spec": {"ports": [{"port": 80, "targetPort": "http"}]},
    }
    assert validation_causes(ok) == []
    ok["metadata"]["name"] = "a.b"  # services need RFC 1123 labels
    assert [c["field"] for c in validation_causes(ok)] == ["metadata.name"]
