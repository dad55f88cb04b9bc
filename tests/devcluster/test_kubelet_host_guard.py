"""The process kubelet never runs, on this machine, containers asking for host privileges."""

from __future__ import annotations

import pytest
from test_kubelet import NS, PY, container, events_of, http_server, phase_is, pod_body, wait_pod

from jupyterhub_platform.devcluster.kubelet.host_guard import host_privileges, refusal_message

# The stock z2jh chart's init container (singleuser.cloudMetadata.blockWithIptables, default on).
BLOCK_CLOUD_METADATA = {
    "privileged": True,
    "runAsUser": 0,
    "capabilities": {"add": ["NET_ADMIN"]},
}


def touch(path) -> list[str]:
    """A command that proves it ran by creating ``path``."""
    return [PY, "-c", f"import pathlib; pathlib.Path({str(path)!r}).write_text('ran')"]


@pytest.mark.parametrize(
    ("spec", "context", "asked"),
    [
        ({}, {}, []),
        ({}, {"privileged": False, "capabilities": {"drop": ["ALL"]}}, []),
        ({}, {"privileged": True}, ["privileged: true"]),
        ({}, {"capabilities": {"add": ["NET_ADMIN", "SYS_TIME"]}}, ["capabilities.add: NET_ADMIN, SYS_TIME"]),
        ({"hostNetwork": True, "hostPID": True}, {}, ["hostNetwork: true", "hostPID: true"]),
        ({"hostIPC": True}, BLOCK_CLOUD_METADATA, ["hostIPC: true", "privileged: true", "capabilities.add: NET_ADMIN"]),
    ],
)  # fmt: skip
def test_host_privileges_are_named(spec, context, asked):
    pod = {"spec": spec}
    assert host_privileges(pod, {"name": "c", "securityContext": context}) == asked


def test_the_message_says_which_container_what_and_what_happens():
    asked = ["privileged: true"]
    init = refusal_message({"name": "block-cloud-metadata"}, asked, init=True)
    assert "init container 'block-cloud-metadata' asks for privileged: true" in init
    assert init.endswith("so it is skipped; the pod continues")
    assert refusal_message({"name": "app"}, asked, init=False).endswith("so it is not started")


process_kubelet = pytest.mark.kubelet("process")


@process_kubelet
async def test_a_privileged_init_container_is_skipped_and_the_pod_runs(devcluster, core, tmp_path):
    marker = tmp_path / "iptables-ran"
    init = container("block-cloud-metadata", *touch(marker), securityContext=BLOCK_CLOUD_METADATA)
    await core.create_namespaced_pod(NS, pod_body("guarded", http_server(), init=[init]))
    pod = await wait_pod(core, "guarded", "running", phase_is("Running"))
    (status,) = pod.status.init_container_statuses
    skipped = status.state.terminated
    assert (skipped.exit_code, skipped.reason) == (0, "NotRunOnHost")
    assert "privileged: true; capabilities.add: NET_ADMIN" in skipped.message
    assert not marker.exists()  # the init container's command never ran
    (warning,) = [e for e in await events_of(core, "guarded") if e.reason == "NotRunOnHost"]
    assert warning.type == "Warning" and "'block-cloud-metadata'" in warning.message


@process_kubelet
async def test_a_privileged_main_container_is_refused(devcluster, core, tmp_path):
    marker = tmp_path / "main-ran"
    main = container("main", *touch(marker), securityContext={"privileged": True})
    await core.create_namespaced_pod(NS, pod_body("refused", main, restart="Never"))
    pod = await wait_pod(core, "refused", "failed", phase_is("Failed"))
    terminated = pod.status.container_statuses[0].state.terminated
    assert (terminated.exit_code, terminated.reason) == (1, "RefusedOnHost")
    assert not marker.exists()
    (warning,) = [e for e in await events_of(core, "refused") if e.reason == "RefusedOnHost"]
    assert warning.type == "Warning"
    assert "container 'main' asks for privileged: true" in warning.message


@process_kubelet
async def test_a_host_network_pod_runs_none_of_its_containers(devcluster, core, tmp_path):
    marker = tmp_path / "ran"
    body = pod_body("hostnet", container("main", *touch(marker)), restart="Never")
    body["spec"]["hostNetwork"] = True
    await core.create_namespaced_pod(NS, body)
    pod = await wait_pod(core, "hostnet", "failed", phase_is("Failed"))
    terminated = pod.status.container_statuses[0].state.terminated
    assert terminated.reason == "RefusedOnHost" and "hostNetwork: true" in terminated.message
    assert not marker.exists()
