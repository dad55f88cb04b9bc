"""The API server's pure parts of pods/log, pods/exec and kubectl's Tables."""

from __future__ import annotations

import base64

import pytest
from aiohttp import WSMsgType
from multidict import MultiDict

from jupyterhub_platform.devcluster import errors
from jupyterhub_platform.devcluster.podexec import (
    V4,
    V4_BASE64,
    V5,
    choose_protocol,
    decode_frame,
    encode_frame,
    exec_options,
    exit_status,
)
from jupyterhub_platform.devcluster.podlog import log_options
from jupyterhub_platform.devcluster.resources import NAMESPACE, POD
from jupyterhub_platform.devcluster.streamtarget import pick_container
from jupyterhub_platform.devcluster.tables import (
    human_duration,
    pod_status_text,
    table,
    table_version,
)


def test_the_client_picks_the_protocol_among_those_served():
    assert choose_protocol("v5.channel.k8s.io, v4.channel.k8s.io") == V5
    assert choose_protocol("v4.channel.k8s.io") == V4
    assert choose_protocol("base64.channel.k8s.io,v4.base64.channel.k8s.io") == V4_BASE64
    assert choose_protocol("channel.k8s.io") is None and choose_protocol(None) is None


def test_frames_carry_their_channel():
    assert encode_frame(V4, 1, b"out") == b"\x01out"
    assert encode_frame(V4_BASE64, 2, b"err") == "2" + base64.b64encode(b"err").decode()
    assert decode_frame(V4, WSMsgType.BINARY, b"\x00in") == (0, b"in")
    assert decode_frame(V5, WSMsgType.TEXT, "\x00typed") == (
        0,
        b"typed",
    )  # the sync client's text frames
    assert decode_frame(V5, WSMsgType.BINARY, bytes([255, 0])) == (255, b"\x00")
    assert decode_frame(V4_BASE64, WSMsgType.TEXT, "0" + base64.b64encode(b"x").decode()) == (
        0,
        b"x",
    )
    assert decode_frame(V4, WSMsgType.BINARY, b"") is None


def test_exec_options_and_their_refusals():
    options = exec_options(
        MultiDict([("command", "sh"), ("command", "-c"), ("command", "true"), ("stdin", "true")])
    )
    assert (options.command, options.stdin, options.stdout, options.stderr, options.tty) == (
        ("sh", "-c", "true"),
        True,
        True,
        True,
        False,
    )
    assert exec_options(MultiDict([("command", "top"), ("tty", "1")])).stderr is False  # one stream
    for query, message in (([("stdout", "true")], "you must specify at least 1 command"),
                           ([("command", "x"), ("stdout", "false"), ("stderr", "false")],
                            "you must specify at least 1 of stdin, stdout, stderr")):  # fmt: skip
        with pytest.raises(errors.ApiError) as info:
            exec_options(MultiDict(query))
        assert (info.value.code, info.value.body["message"]) == (400, message)


def test_exit_statuses_differ_only_in_code_between_v4_and_v5():
    v4 = exit_status(("sh", "-c", "exit 3"), 3, V4)
    assert (
        v4["details"] == {"causes": [{"reason": "ExitCode", "message": "3"}]} and "code" not in v4
    )
    assert (
        v4["message"]
        == "command terminated with non-zero exit code: error executing command [sh -c exit 3], exit code 3"
    )
    assert exit_status(("false",), 1, V5)["code"] == 500


def test_the_container_is_named_or_the_only_one():
    pod = {"metadata": {"name": "web"}, "spec": {"containers": [{"name": "a"}, {"name": "b"}],
                                                 "initContainers": [{"name": "init"}]}}  # fmt: skip
    assert pick_container(pod, "init") == "init"
    for requested, message in ((None, "a container name must be specified for pod web, choose one of: [a b] "
                                      "or one of the init containers: [init]"),
                               ("c", "container c is not valid for pod web")):  # fmt: skip
        with pytest.raises(errors.ApiError) as info:
            pick_container(pod, requested)
        assert (info.value.code, info.value.body["message"]) == (400, message)
    assert (
        pick_container(
            {"metadata": {"name": "x"}, "spec": {"containers": [{"name": "only"}]}}, None
        )
        == "only"
    )


def test_log_options_validate_like_pod_log_options():
    options = log_options(MultiDict(follow="true", tailLines="5", timestamps="1"), "p")
    assert (options.follow, options.tail_lines, options.timestamps) == (True, 5, True)
    assert (
        log_options(MultiDict(sinceTime="2024-05-01T12:00:00Z"), "p").since_time_ns
        == 1714564800 * 10**9
    )
    with pytest.raises(errors.ApiError) as info:
        log_options(MultiDict(sinceSeconds="5", sinceTime="2024-05-01T12:00:00Z"), "p")
    assert (
        info.value.code == 422
        and "at most one of `sinceTime` or `sinceSeconds`" in info.value.body["message"]
    )
    with pytest.raises(errors.ApiError) as info:
        log_options(MultiDict(tailLines="many"), "p")
    assert info.value.code == 400


def test_tables_for_kubectl():
    assert table_version("application/json;as=Table;v=v1;g=meta.k8s.io,application/json") == "v1"
    assert table_version("application/json;as=Table;v=v1beta1;g=meta.k8s.io") == "v1beta1"
    assert table_version("application/json") is None
    assert [human_duration(s) for s in (5, 150, 3600 * 5 + 60, 3 * 86400)] == [
        "5s",
        "2m30s",
        "5h1m",
        "3d",
    ]
    running = {"metadata": {"name": "web", "creationTimestamp": "2024-05-01T12:00:00Z"},
               "spec": {"containers": [{"name": "a"}], "nodeName": "devcluster"},
               "status": {"phase": "Running", "podIP": "198.18.0.5",
                          "containerStatuses": [{"name": "a", "ready": True, "restartCount": 0,
                                                 "state": {"running": {}}}]}}  # fmt: skip
    result = table(POD, [running], now=1714564800 + 90)
    assert [c["name"] for c in result["columnDefinitions"]][:5] == [
        "Name",
        "Ready",
        "Status",
        "Restarts",
        "Age",
    ]
    assert result["rows"][0]["cells"] == ["web", "1/1", "Running", "0", "90s", "198.18.0.5", "devcluster",
                                          "<none>", "<none>"]  # fmt: skip
    assert result["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
    assert "object" not in table(NAMESPACE, [running], include_object="None")["rows"][0]
    crashed = {
        **running,
        "status": {
            "phase": "Failed",
            "containerStatuses": [
                {"name": "a", "state": {"terminated": {"exitCode": 3, "reason": "Error"}}}
            ],
        },
    }
    assert pod_status_text(crashed) == "Error"
    waiting = {
        **running,
        "status": {
            "phase": "Pending",
            "initContainerStatuses": [
                {"name": "i", "state": {"waiting": {"reason": "PodInitializing"}}}
            ],
        },
    }
    waiting["spec"] = {**running["spec"], "initContainers": [{"name": "i"}]}
    assert pod_status_text(waiting) == "Init:0/1"
    deleting = {
        **running,
        "metadata": {**running["metadata"], "deletionTimestamp": "2024-05-01T12:01:00Z"},
    }
    assert pod_status_text(deleting) == "Terminating"
