"""The kubelet's pure isolation decisions: identities, fsGroup bits, mount views, pod addresses."""

from __future__ import annotations

import ipaddress
import stat
import sys
from pathlib import Path

import pytest

from jupyterhub_platform.devcluster.kubelet.containers import Mount, ProcessSpec
from jupyterhub_platform.devcluster.kubelet.forward import loopback_ports
from jupyterhub_platform.devcluster.kubelet.isolation import (
    closed_ancestor,
    container_plan,
    masks_for,
    mount_view,
)
from jupyterhub_platform.devcluster.kubelet.ownership import ownership_mode
from jupyterhub_platform.devcluster.kubelet.podnet import POD_NETWORK, NamespaceAddresses, veth_name
from jupyterhub_platform.devcluster.kubelet.security import (
    DEFAULT_CAPABILITIES,
    container_identity,
    pod_fs_group,
)
from jupyterhub_platform.devcluster.kubelet.status import ContainerState, log_refusal
from jupyterhub_platform.devcluster.kubelet.volumes import ContainerConfigError, PodLayout


def pod(context=None, container_context=None) -> tuple[dict, dict]:
    container = {"name": "notebook", "securityContext": container_context or {}}
    body = {"metadata": {"name": "jupyter-alice", "namespace": "default", "uid": "u-1"},
            "spec": {"securityContext": context or {}, "containers": [container]}}  # fmt: skip
    return body, container


def test_the_chart_users_identity():
    body, container = pod({"runAsUser": 1000, "runAsNonRoot": True, "fsGroup": 100},
                          {"allowPrivilegeEscalation": False})  # fmt: skip
    identity = container_identity(body, container, primary_gid=lambda uid: {1000: 1000}.get(uid))
    assert (identity.uid, identity.gid, identity.groups) == (1000, 1000, (100,))
    assert identity.no_new_privs and identity.capabilities == DEFAULT_CAPABILITIES


def test_container_fields_override_the_pods_and_groups_are_merged():
    body, container = pod({"runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 100, "supplementalGroups": [100, 4]},
                          {"runAsUser": 2000, "runAsGroup": 3000})  # fmt: skip
    identity = container_identity(body, container, primary_gid=lambda uid: None)
    assert (identity.uid, identity.gid, identity.groups) == (2000, 3000, (100, 4))
    assert not identity.no_new_privs


def test_no_user_means_root_and_no_passwd_entry_means_group_0():
    body, container = pod()
    identity = container_identity(body, container, primary_gid=lambda uid: None)
    assert (identity.uid, identity.gid, identity.groups) == (0, 0, ())


@pytest.mark.parametrize(("context", "message"), [
    ({"runAsNonRoot": True}, "container has runAsNonRoot and image will run as root"),
    ({"runAsNonRoot": True, "runAsUser": 0}, "container's runAsUser breaks non-root policy"),
])  # fmt: skip
def test_run_as_non_root_is_enforced_with_the_kubelets_messages(context, message):
    body, container = pod(context)
    with pytest.raises(ContainerConfigError) as info:
        container_identity(body, container, primary_gid=lambda uid: None)
    assert info.value.reason == "CreateContainerConfigError"
    assert (
        info.value.message == f'{message} (pod: "jupyter-alice_default(u-1)", container: notebook)'
    )


def test_capabilities_follow_add_drop_and_privileged():
    body, container = pod(
        container_context={"capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}}
    )
    assert container_identity(body, container, lambda uid: None).capabilities == {
        "NET_BIND_SERVICE"
    }
    body, container = pod(container_context={"capabilities": {"drop": ["CAP_KILL"]}})
    assert container_identity(
        body, container, lambda uid: None
    ).capabilities == DEFAULT_CAPABILITIES - {"KILL"}
    body, container = pod(container_context={"privileged": True, "allowPrivilegeEscalation": False})
    privileged = container_identity(body, container, lambda uid: None)
    assert privileged.capabilities is None and not privileged.no_new_privs


def test_fs_group_bits_are_those_of_set_volume_ownership():
    assert ownership_mode(0o755, is_dir=True, read_only=False) == 0o2775
    assert ownership_mode(0o644, is_dir=False, read_only=False) == 0o664
    assert ownership_mode(0o600, is_dir=False, read_only=True) == 0o640
    assert ownership_mode(0o700, is_dir=True, read_only=True) == stat.S_ISGID | 0o750
    assert pod_fs_group({"spec": {"securityContext": {"fsGroup": 100}}}).on_root_mismatch is False
    policy = {"fsGroup": 7, "fsGroupChangePolicy": "OnRootMismatch"}
    assert pod_fs_group({"spec": {"securityContext": policy}}).on_root_mismatch is True
    assert pod_fs_group({"spec": {}}) is None


MODES = {"/root": 0o40700, "/srv": 0o40755, "/srv/state": 0o40700, "/srv/state/volumes": 0o40755}


def test_masks_cover_hidden_paths_and_closed_ancestors_outermost_first():
    assert closed_ancestor("/root/.pyenv/versions/3.12", MODES.get) == "/root"
    assert closed_ancestor("/srv/state/volumes/x", MODES.get) == "/srv/state"
    assert closed_ancestor("/usr/bin", MODES.get) is None
    masks = masks_for(
        ["/srv/state", "/srv/state/volumes"], ["/root/.pyenv/x", "/srv/state/volumes/a"], MODES.get
    )
    assert masks == ["/root", "/srv/state"]


def test_a_containers_view_binds_its_volumes_and_the_runtime_behind_closed_directories(tmp_path):
    layout = PodLayout(tmp_path / "state", "default", "jupyter-alice", "u-1")
    home = layout.pvc_dir("claim-alice")
    mounts = (
        Mount("/home/jovyan", home),
        Mount("/etc/config", layout.volumes_dir / "config", read_only=True),
    )
    spec = ProcessSpec(name="notebook", argv=["jupyterhub-singleuser"], env={"HOME": str(home), "PATH": "/usr/bin"},
                       cwd=home, log_path=layout.log_path("notebook"), mounts=mounts)  # fmt: skip
    modes = {str(tmp_path / "state"): 0o40700, "/root": 0o40700}
    view = mount_view(spec, mounts, layout=layout, hidden=[str(tmp_path / "state")],
                      interpreter=["/root/.pyenv/versions/3.12.1"], mode_of=modes.get)  # fmt: skip
    binds = {b.target: b for b in view.binds}
    assert (
        binds[str(home)].read_only is False and binds[str(layout.volumes_dir / "config")].read_only
    )
    assert (
        binds["/etc/hosts"].source == str(layout.etc_dir / "hosts")
        and binds["/etc/hosts"].read_only
    )
    assert binds["/root/.pyenv/versions/3.12.1"].read_only  # the interpreter a venv links to
    assert str(layout.home_dir) not in binds  # HOME is on a volume
    assert set(view.masks) == {str(tmp_path / "state"), "/root"}

    plan = container_plan(
        spec, container_identity(*pod({"runAsUser": 1000}), lambda uid: 100), view, sandbox_pid=42
    )
    assert (plan["uid"], plan["gid"], plan["sandbox_pid"], plan["join_mounts_of"]) == (
        1000,
        100,
        42,
        None,
    )
    assert plan["private_dirs"] == ["/tmp", "/var/tmp", "/dev/shm"] and plan["env"]["HOME"] == str(
        home
    )
    assert plan["capabilities"] == sorted(DEFAULT_CAPABILITIES)


def test_the_runtime_exposed_is_the_prefix_of_each_path_directory(tmp_path):
    venv = tmp_path / "venv" / "bin"
    venv.mkdir(parents=True)
    spec = ProcessSpec(
        name="c", argv=["x"], env={"PATH": str(venv)}, cwd=tmp_path, log_path=tmp_path / "log"
    )
    closed = {str(tmp_path): 0o40700}
    view = mount_view(spec, (), layout=PodLayout(tmp_path / "s", "d", "p", "u"), hidden=[],
                      interpreter=[sys.base_prefix], mode_of=closed.get)  # fmt: skip
    assert str(tmp_path / "venv") in {b.target for b in view.binds}


def test_forwarded_ports_are_the_host_loopback_urls_a_pod_is_given():
    values = ["http://127.0.0.1:8081/hub/api", "localhost:6443", "http://10.0.0.1:9000/", "[::1]:1234",
              "127.0.0.10:5", "no port 127.0.0.1"]  # fmt: skip
    assert loopback_ports(values) == {8081, 6443, 1234}


def test_pod_addresses_skip_networks_the_host_routes():
    routed = "198.18.0.0/16"  # a network this machine already uses
    candidates = NamespaceAddresses([routed, "0.0.0.0/0"]).candidates()
    picked = [ipaddress.ip_address(next(candidates)) for _ in range(500)]
    assert all(ip in POD_NETWORK and ip not in ipaddress.ip_network(routed) for ip in picked)
    assert all(int(ip) & 0xFF not in (0, 255) for ip in picked)
    assert len(veth_name("0123abcd-ef01-2345-6789-abcdef012345")) <= 15


def test_the_kubelet_refuses_logs_it_does_not_have():
    waiting = ContainerState("main", "img", reason="PodInitializing")
    assert (
        log_refusal(waiting, "main", "p", previous=False)
        == 'container "main" in pod "p" is waiting to start: PodInitializing'
    )
    never_ran = ContainerState("main", "img")
    never_ran.terminate(128, "ContainerCannotRun", "no such program")
    assert (
        log_refusal(never_ran, "main", "p", previous=False)
        == 'container "main" in pod "p" is terminated'
    )
    running = ContainerState("main", "img")
    running.run("process://1")
    assert log_refusal(running, "main", "p", previous=False) is None
    assert (
        log_refusal(running, "main", "p", previous=True)
        == 'previous terminated container "main" in pod "p" not found'
    )


def test_layouts_are_keyed_by_uid():
    first = PodLayout(Path("/s"), "default", "again", "uid-1")
    second = PodLayout(Path("/s"), "default", "again", "uid-2")
    assert first.pod_dir != second.pod_dir and first.pvc_dir("c") == second.pvc_dir("c")
    assert first.log_path("main") == Path("/s/pods/default_again_uid-1/main/0.log")
