"""The kubelet's pure translations: container spec → process, volumes, status, events, pod IPs."""

from __future__ import annotations

import base64
import os
import random
import sys
from pathlib import Path

import pytest

from jupyterhub_platform.devcluster.kubelet.containers import (
    build_process_spec,
    expand,
    referenced_objects,
    rewrite_binds,
    rewrite_paths,
)
from jupyterhub_platform.devcluster.kubelet.events import build_event
from jupyterhub_platform.devcluster.kubelet.light import light_target
from jupyterhub_platform.devcluster.kubelet.podnet import PodNetwork, ports_free
from jupyterhub_platform.devcluster.kubelet.probes import readiness_check
from jupyterhub_platform.devcluster.kubelet.status import (
    ContainerState,
    PodState,
    render_status,
    termination_message,
)
from jupyterhub_platform.devcluster.kubelet.volumes import (
    ContainerConfigError,
    MountPending,
    PodLayout,
    materialize,
    object_data,
    plan_volumes,
)

POD_IP = "127.9.8.7"
BIN_DIR = os.path.dirname(sys.executable)


def notebook_pod(**container_overrides) -> dict:
    container = {
        "name": "notebook",
        "image": "quay.io/jupyter/base-notebook:latest",
        "command": ["python", "-m", "http.server"],
        "args": ["--bind=0.0.0.0", "8888"],
        "env": [
            {"name": "JUPYTERHUB_SERVICE_URL", "value": "http://0.0.0.0:8888/user/alice/"},
            {"name": "NOTEBOOK_DIR", "value": "/home/jovyan/work"},
        ],
        "ports": [{"name": "notebook-port", "containerPort": 8888}],
        "volumeMounts": [{"name": "home", "mountPath": "/home/jovyan"}],
        **container_overrides,
    }
    return {
        "metadata": {
            "name": "jupyter-alice",
            "namespace": "hub",
            "uid": "u-1",
            "labels": {"app": "jh"},
        },
        "spec": {
            "containers": [container],
            "volumes": [{"name": "home", "persistentVolumeClaim": {"claimName": "claim-alice"}}],
        },
    }


def spec_for(pod: dict, tmp_path: Path, objects=None, host_env=None, own_network=False):
    layout = PodLayout(tmp_path, "hub", pod["metadata"]["name"], pod["metadata"]["uid"])
    return build_process_spec(
        pod,
        pod["spec"]["containers"][0],
        layout=layout,
        volumes=plan_volumes(pod, layout),
        objects=objects or {},
        pod_ip=POD_IP,
        host_ip="127.0.0.1",
        bin_dir=BIN_DIR,
        host_env=host_env if host_env is not None else {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
        own_network=own_network,
    )


def test_notebook_container_becomes_a_process_on_the_pod_ip(tmp_path):
    spec = spec_for(notebook_pod(), tmp_path)
    pvc = tmp_path / "volumes" / "hub" / "pvc" / "claim-alice"
    assert spec.argv == [
        os.path.join(BIN_DIR, "python"),
        "-m",
        "http.server",
        f"--bind={POD_IP}",
        "8888",
    ]
    assert spec.env["JUPYTERHUB_SERVICE_URL"] == f"http://{POD_IP}:8888/user/alice/"
    assert spec.env["NOTEBOOK_DIR"] == f"{pvc}/work"
    assert spec.env["HOME"] == str(pvc)
    assert spec.env["PATH"].split(":")[:3] == [BIN_DIR, "/usr/bin", "/bin"]
    assert spec.env["LANG"] == "C.UTF-8"
    assert spec.env["HOSTNAME"] == "jupyter-alice"
    assert spec.cwd == pvc
    assert spec.log_path == tmp_path / "pods" / "hub_jupyter-alice_u-1" / "notebook" / "0.log"


def test_a_pod_with_its_own_network_keeps_its_bind_addresses_and_mount_modes(tmp_path):
    pod = notebook_pod()
    pod["spec"]["containers"][0]["volumeMounts"].append(
        {"name": "home", "mountPath": "/srv/ro", "readOnly": True}
    )
    spec = spec_for(pod, tmp_path, own_network=True)
    assert spec.argv[-2:] == ["--bind=0.0.0.0", "8888"]
    assert spec.env["JUPYTERHUB_SERVICE_URL"] == "http://0.0.0.0:8888/user/alice/"
    assert {m.mount_path: m.read_only for m in spec.mounts} == {
        "/home/jovyan": False,
        "/srv/ro": True,
        "/dev/termination-log": False,  # a file of the pod's, as the kubelet mounts one
    }
    assert spec.termination_log == tmp_path / "pods" / "hub_jupyter-alice_u-1" / "notebook" / (
        "termination-log"
    )


def test_home_not_on_a_volume_is_a_per_pod_directory(tmp_path):
    pod = notebook_pod(volumeMounts=[], env=[{"name": "HOME", "value": "/home/bob"}])
    spec = spec_for(pod, tmp_path)
    assert spec.env["HOME"] == str(tmp_path / "pods" / "hub_jupyter-alice_u-1" / "home")
    assert spec.cwd == Path(spec.env["HOME"])
    assert Path(spec.env["HOME"]) in spec.make_dirs


def test_working_dir_and_sub_path(tmp_path):
    pod = notebook_pod(
        workingDir="/srv/data/project",
        volumeMounts=[
            {"name": "home", "mountPath": "/home/jovyan"},
            {"name": "home", "mountPath": "/srv/data", "subPath": "shared/data"},
        ],
        args=["--dir=/srv/data/project", "/srv/database"],
    )
    spec = spec_for(pod, tmp_path)
    data = tmp_path / "volumes" / "hub" / "pvc" / "claim-alice" / "shared" / "data"
    assert spec.cwd == data / "project"
    # the mount path is only rewritten where it is a whole path component
    assert spec.argv[-2:] == [f"--dir={data}/project", "/srv/database"]
    assert data in spec.make_dirs


def test_sub_path_cannot_escape_the_volume(tmp_path):
    pod = notebook_pod(volumeMounts=[{"name": "home", "mountPath": "/x", "subPath": "../../etc"}])
    with pytest.raises(ContainerConfigError, match="subPath"):
        spec_for(pod, tmp_path)


def test_env_from_secrets_config_maps_and_fields(tmp_path):
    pod = notebook_pod(
        envFrom=[{"configMapRef": {"name": "settings"}, "prefix": "CFG_"}],
        env=[
            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
            {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "mode"}}},
            {"name": "MY_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "MY_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "MY_NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
            {"name": "URL", "value": "http://$(MY_IP):8888/$(MODE)/$$(MODE)"},
            {
                "name": "GONE",
                "valueFrom": {"secretKeyRef": {"name": "x", "key": "y", "optional": True}},
            },
        ],
    )
    objects = {
        ("secrets", "creds"): object_data(
            "secrets", {"data": {"token": base64.b64encode(b"s3cret").decode()}}
        ),
        ("configmaps", "settings"): object_data(
            "configmaps", {"data": {"mode": "lab", "bad-key!": "x"}}
        ),
    }
    assert referenced_objects(pod) == {
        ("secrets", "creds"),
        ("configmaps", "settings"),
        ("secrets", "x"),
    }
    env = spec_for(pod, tmp_path, objects).env
    assert env["TOKEN"] == "s3cret"
    assert env["MODE"] == env["CFG_mode"] == "lab"
    assert "CFG_bad-key!" not in env
    assert (env["MY_IP"], env["MY_NAME"], env["MY_NS"], env["APP"]) == (
        POD_IP,
        "jupyter-alice",
        "hub",
        "jh",
    )
    assert env["URL"] == f"http://{POD_IP}:8888/lab/$(MODE)"
    assert "GONE" not in env


def test_missing_secret_is_a_config_error(tmp_path):
    pod = notebook_pod(
        env=[{"name": "T", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "t"}}}]
    )
    with pytest.raises(ContainerConfigError) as info:
        spec_for(pod, tmp_path)
    assert info.value.reason == "CreateContainerConfigError"
    assert 'secret "creds" not found' in info.value.message


def test_missing_command_cannot_run(tmp_path):
    with pytest.raises(ContainerConfigError) as info:
        spec_for(notebook_pod(command=["no-such-program-xyz"], args=[]), tmp_path)
    assert info.value.reason == "ContainerCannotRun"
    assert info.value.message == 'exec: "no-such-program-xyz": executable file not found in $PATH'
    for args in ([], ["--ip=0.0.0.0"]):
        with pytest.raises(ContainerConfigError, match="has no command"):
            spec_for(notebook_pod(command=[], args=args), tmp_path)
    assert spec_for(notebook_pod(command=[], args=["python", "x.py"]), tmp_path).argv[1:] == [
        "x.py"
    ]


def test_virtualenv_scripts_are_found_first(tmp_path):
    spec = spec_for(notebook_pod(command=["pytest"], args=[]), tmp_path, host_env={"PATH": ""})
    assert spec.argv == [os.path.join(BIN_DIR, "pytest")]


def test_bind_rewriting():
    assert rewrite_binds("0.0.0.0", POD_IP) == POD_IP
    assert rewrite_binds("http://[::]:80/x", POD_IP) == f"http://{POD_IP}:80/x"
    assert rewrite_binds("--ip=*", POD_IP) == f"--ip={POD_IP}"
    assert rewrite_binds("--ServerApp.ip=::", POD_IP) == f"--ServerApp.ip={POD_IP}"
    assert rewrite_binds("*", POD_IP) == POD_IP
    assert rewrite_binds("*", POD_IP, whole_value_bind=False) == "*"
    assert rewrite_binds("10.0.0.0/8", POD_IP) == "10.0.0.0/8"
    assert rewrite_binds("a::b", POD_IP) == "a::b"


def test_bare_star_argument_is_an_address_only_after_an_option(tmp_path):
    spec = spec_for(notebook_pod(args=["--ip", "*", "*"]), tmp_path)
    assert spec.argv[-3:] == ["--ip", POD_IP, "*"]


def test_path_rewriting_respects_boundaries(tmp_path):
    from jupyterhub_platform.devcluster.kubelet.containers import Mount

    mounts = [Mount("/home/jovyan/work", tmp_path / "w"), Mount("/home/jovyan", tmp_path / "h")]
    assert (
        rewrite_paths("/home/jovyan/work/a:/home/jovyan/b", mounts)
        == f"{tmp_path}/w/a:{tmp_path}/h/b"
    )
    assert rewrite_paths("/home/jovyanx /x/home/jovyan", mounts) == "/home/jovyanx /x/home/jovyan"


def test_expand():
    assert expand("$(A)-$(B)-$$(A)-$$", {"A": "1"}) == "1-$(B)-$(A)-$"


def test_secret_and_config_map_volumes_are_written(tmp_path):
    pod = {
        "metadata": {"name": "p", "namespace": "ns"},
        "spec": {
            "volumes": [
                {"name": "s", "secret": {"secretName": "creds", "defaultMode": 0o400}},
                {
                    "name": "c",
                    "configMap": {"name": "cfg", "items": [{"key": "a", "path": "sub/a.txt"}]},
                },
                {"name": "e", "emptyDir": {}},
                {"name": "opt", "secret": {"secretName": "missing", "optional": True}},
            ]
        },
    }
    layout = PodLayout(tmp_path, "ns", "p", "u-2")
    volumes = plan_volumes(pod, layout)
    objects = {
        ("secrets", "creds"): {"token": b"t0k"},
        ("configmaps", "cfg"): {"a": b"alpha", "b": b"beta"},
    }
    materialize(volumes, objects)
    assert (volumes["s"].path / "token").read_bytes() == b"t0k"
    assert (volumes["s"].path / "token").stat().st_mode & 0o777 == 0o400
    assert (volumes["c"].path / "sub" / "a.txt").read_text() == "alpha"
    assert not (volumes["c"].path / "b").exists()
    assert volumes["e"].path.is_dir() and volumes["opt"].path.is_dir()
    with pytest.raises(MountPending) as pending:  # retried by the kubelet, not fatal
        materialize(volumes, {})
    assert pending.value.reason == "FailedMount"
    assert pending.value.message == (
        'MountVolume.SetUp failed for volume "s" : secret "creds" not found'
    )


def test_volume_names_are_checked(tmp_path):
    pod = {
        "metadata": {},
        "spec": {"volumes": [{"name": "h", "persistentVolumeClaim": {"claimName": "../x"}}]},
    }
    with pytest.raises(ContainerConfigError, match="claimName"):
        plan_volumes(pod, PodLayout(tmp_path, "ns", "p", "u-2"))


def test_missing_host_path_is_a_mount_failure(tmp_path):
    pod = {
        "metadata": {},
        "spec": {
            "volumes": [
                {"name": "h", "hostPath": {"path": str(tmp_path / "nope")}},
            ]
        },
    }
    with pytest.raises(ContainerConfigError, match="does not exist"):
        materialize(plan_volumes(pod, PodLayout(tmp_path, "ns", "p", "u-2")), {})


def test_pod_phase_and_status():
    pod = PodState(
        pod_ip=POD_IP,
        host_ip="127.0.0.1",
        containers=[ContainerState("a", "img"), ContainerState("b", "img")],
    )
    assert pod.phase() == "Pending"
    for c in pod.containers:
        c.run("process://1")
    assert pod.phase() == "Running" and not pod.containers_ready()
    pod.containers[0].ready = pod.containers[1].ready = True
    status = render_status(pod)
    assert {c["type"]: c["status"] for c in status["conditions"]} == {
        "PodScheduled": "True",
        "Initialized": "True",
        "ContainersReady": "True",
        "Ready": "True",
    }
    assert status["podIPs"] == [{"ip": POD_IP}]
    pod.containers[0].terminate(0, "Completed")
    assert pod.phase() == "Running"
    pod.containers[1].terminate(2, "Error", "boom")
    assert pod.phase() == "Failed"
    terminated = render_status(pod)["containerStatuses"][1]
    assert terminated["state"]["terminated"]["exitCode"] == 2
    assert terminated["ready"] is False
    done = PodState(pod_ip=POD_IP, host_ip="h", containers=[ContainerState("a", "img")])
    done.containers[0].run("x")
    done.containers[0].terminate(0, "Completed")
    assert done.phase() == "Succeeded"


def test_failed_init_container_fails_the_pod():
    pod = PodState(
        pod_ip=POD_IP,
        host_ip="h",
        init=[ContainerState("i", "img")],
        containers=[ContainerState("a", "img")],
    )
    assert pod.phase() == "Pending" and not pod.initialized()
    pod.init[0].terminate(1, "Error")
    assert pod.phase() == "Failed"


def test_event_shape():
    pod = {"metadata": {"name": "p", "namespace": "ns", "uid": "u"}}
    event = build_event(pod, "Started", "Started container c", host="node", container="c")
    assert event["involvedObject"] == {
        "apiVersion": "v1",
        "kind": "Pod",
        "name": "p",
        "namespace": "ns",
        "uid": "u",
        "resourceVersion": None,
        "fieldPath": "spec.containers{c}",
    }
    assert event["metadata"]["name"].startswith("p.")
    assert event["source"] == {"component": "kubelet", "host": "node"}
    assert event["count"] == 1 and event["lastTimestamp"] == event["firstTimestamp"]
    assert build_event(pod, "x", "y")["metadata"]["name"] != event["metadata"]["name"]


def test_readiness_checks():
    assert readiness_check({"ports": [{"containerPort": 80}]}).kind == "tcp"
    assert readiness_check({}).kind == "started"
    check = readiness_check(
        {
            "ports": [{"name": "web", "containerPort": 8080}],
            "readinessProbe": {
                "httpGet": {"path": "/health", "port": "web"},
                "initialDelaySeconds": 2,
            },
        }
    )
    assert (check.kind, check.port, check.path, check.initial_delay) == (
        "http",
        8080,
        "/health",
        2.0,
    )
    with pytest.raises(ContainerConfigError, match="names no containerPort"):
        readiness_check({"readinessProbe": {"tcpSocket": {"port": "nope"}}})


def test_light_target():
    pod = notebook_pod(ports=[])
    pod["spec"]["containers"][0]["env"].append(
        {"name": "JUPYTERHUB_SERVICE_PREFIX", "value": "/user/alice"}
    )
    assert light_target(pod) == light_target(pod) and light_target(pod).port == 8888
    pod["spec"]["containers"][0]["env"][0]["value"] = "http://0.0.0.0:9999/user/alice/"
    assert light_target(pod).port == 9999 and light_target(pod).prefix == "/user/alice/"
    assert light_target(notebook_pod()).port == 8888


def test_pod_network_hands_out_distinct_free_addresses():
    network = PodNetwork(random.Random(7))
    ips = {network.allocate([8888]) for _ in range(300)}
    assert len(ips) == 300
    assert all(ip.startswith("127.") and not ip.startswith("127.0.") for ip in ips)
    assert all(not ip.endswith((".0", ".255")) for ip in ips)
    assert ports_free(next(iter(ips)), [8888])


FALLBACK = {"terminationMessagePolicy": "FallbackToLogsOnError"}


@pytest.mark.parametrize(
    ("container", "written", "code", "tail", "message"),
    [
        ({}, b'{"bytes": 1}', 0, "log", '{"bytes": 1}'),
        ({}, b"", 3, "log", ""),  # File (the default): only what was written
        (FALLBACK, b"", 3, "a\nb", "a\nb"),
        (FALLBACK, b"", 0, "a", ""),  # the fallback is for failures only
        (FALLBACK, b"why", 3, "a", "why"),  # what was written wins
        ({}, b"x" * 5000, 1, "", "x" * 4096),
        (FALLBACK, b"", 1, "y" * 3000, "y" * 2048),  # the end of the log
    ],
)  # fmt: skip
def test_termination_message_as_kubernetes_reports_it(container, written, code, tail, message):
    assert termination_message(container, written, code, tail) == message
