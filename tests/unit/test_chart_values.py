"""Reading chart values as Helm does, and finding the policy the values mount."""

from __future__ import annotations

import base64

import pytest
import yaml

from jupyterhub_platform.chart.values import (
    ValuesError,
    extra_file,
    load_values_file,
    merge_all,
    merge_values,
    policy_in_values,
)


@pytest.mark.parametrize(
    ("text", "message"),
    [("hub: [unclosed", "not valid YAML"), ("- a list", "the top level must be a mapping")],
)
def test_bad_values_files_are_named(tmp_path, text, message):
    path = tmp_path / "values.yaml"
    path.write_text(text)
    with pytest.raises(ValuesError, match=message) as err:
        load_values_file(path)
    assert str(err.value).startswith(f"{path}: ")


def test_a_missing_values_file_is_a_clear_error(tmp_path):
    with pytest.raises(ValuesError, match="cannot read the values file"):
        load_values_file(tmp_path / "absent.yaml")


def test_merge_is_helms():
    base = {"hub": {"config": {"A": {"x": 1, "y": [1, 2]}}, "keep": True}, "drop": 1}
    override = {"hub": {"config": {"A": {"y": [3]}, "B": {"z": 2}}}, "drop": None}
    assert merge_values(base, override) == {
        "hub": {"config": {"A": {"x": 1, "y": [3]}, "B": {"z": 2}}, "keep": True}
    }
    assert base["hub"]["config"]["A"]["y"] == [1, 2]  # inputs are not changed
    assert merge_all([{"a": 1}, {"b": 2}, {"a": 3}]) == {"a": 3, "b": 2}


def test_extra_file_content_as_the_chart_writes_it():
    text = "groups:\n  b: {}\n  a: {}\n"
    assert extra_file("p", {"mountPath": "/x/p.yaml", "stringData": text}).content == text
    as_data = extra_file("p", {"mountPath": "/x/p.yaml", "data": yaml.safe_load(text)})
    assert as_data.content == "groups:\n  a: {}\n  b: {}\n"  # sorted, like Helm's toYaml
    binary = base64.b64encode(b"hello").decode()
    assert extra_file("b", {"mountPath": "/x/b", "binaryData": binary}).content == "hello"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"stringData": "x"}, "hub.extraFiles.f.mountPath: missing"),
        ({"mountPath": "/x"}, "exactly one of stringData, data and binaryData must be set"),
        (
            {"mountPath": "/x", "stringData": "a", "data": {"b": 1}},
            r"found \['stringData', 'data'\]",
        ),
        ({"mountPath": "/x/conf.ini", "data": {"b": 1}}, "must end in .yaml, .yml or .json"),
    ],
)
def test_bad_extra_files_are_named(spec, message):
    with pytest.raises(ValuesError, match=message):
        extra_file("f", spec)


def values_with_policy(policy_file, mount="/etc/p/policy.yaml"):
    config = {"PlatformPolicy": {"policy_file": policy_file}} if policy_file else {}
    files = {"other": {"mountPath": "/etc/p/other.txt", "stringData": "x"}}
    files["platform-policy"] = {"mountPath": mount, "stringData": "groups: {}\n"}
    return {"hub": {"config": config, "extraFiles": files}}


def test_the_policy_is_the_extra_file_at_the_policy_files_path():
    found = policy_in_values(values_with_policy("/etc/p/policy.yaml"))
    assert (found.text, found.path) == ("groups: {}\n", "hub.extraFiles.platform-policy.stringData")
    assert not found.is_data


def test_no_policy_file_or_no_file_mounted_there_is_a_clear_error():
    with pytest.raises(ValuesError, match="PlatformPolicy.policy_file is not set"):
        policy_in_values(values_with_policy(None))
    with pytest.raises(
        ValuesError,
        match=r"no hub.extraFiles entry has that mountPath .*platform-policy -> /etc/p/elsewhere.yaml",
    ):
        policy_in_values(values_with_policy("/etc/p/policy.yaml", mount="/etc/p/elsewhere.yaml"))
