"""Pods isolated from each other and from the platform, when the kubelet runs as root.

Two users' pods run as the same uid (1000, as the chart's ``singleuser.uid`` makes them), so
file permissions alone cannot keep alice out of bob's home: each container sees only its own
volumes, a private /tmp and its own pod's processes. These tests fail under CI (root) and skip
on a machine where pods cannot be isolated, saying why.
"""

from __future__ import annotations

import json
import pwd
import stat

import pytest
from kubelet_helpers import NS, PY, container, phase_is, pod_body, running_and_ready, wait_pod

from jupyterhub_platform.devcluster.procs import wait_for

pytestmark = [pytest.mark.kubelet("process"), pytest.mark.isolation("namespaces")]

SLEEPER = "import time\nwhile True: time.sleep(1)"
USER_CONTEXT = {"runAsUser": 1000, "runAsNonRoot": True, "fsGroup": 100}


@pytest.fixture
async def platform_secret(tmp_path):
    """A private directory holding secrets, as the local platform's state directory does."""
    secrets = tmp_path / "platform"
    secrets.mkdir(mode=0o700)
    path = secrets / "secrets.json"
    path.write_text(json.dumps({"cookie_secret": "s3cret"}))
    path.chmod(0o600)
    return path


@pytest.fixture
def private_paths(platform_secret):
    return [platform_secret.parent]


def user_pod(user: str, code: str = SLEEPER, **extra) -> dict:
    mounts = [{"name": "home", "mountPath": "/home/jovyan"}, *extra.pop("mounts", [])]
    main = container("notebook", PY, "-c", code, volumeMounts=mounts,
                     env=[{"name": "HOME", "value": "/home/jovyan"}],
                     securityContext={"allowPrivilegeEscalation": False})  # fmt: skip
    volumes = [
        {"name": "home", "persistentVolumeClaim": {"claimName": f"claim-{user}"}},
        *extra.pop("volumes", []),
    ]
    body = pod_body(f"jupyter-{user}", main, volumes=volumes, **extra)
    body["spec"]["securityContext"] = dict(USER_CONTEXT)
    return body


async def run_to_end(core, body: dict) -> tuple[str, str]:
    await core.create_namespaced_pod(NS, body)
    name = body["metadata"]["name"]
    pod = await wait_pod(core, name, "finished", phase_is("Succeeded", "Failed"))
    return pod.status.phase, await core.read_namespaced_pod_log(name, NS)


PROBE = """
import json, os, sys
def attempt(path):
    try:
        with open(path) as f:
            return 'read: ' + f.read()[:40]
    except OSError as exc:
        return type(exc).__name__
result = {
    'uid': os.getuid(), 'gid': os.getgid(), 'groups': sorted(os.getgroups()),
    'home_mode': oct(os.stat(os.environ['HOME']).st_mode),
    'bob_home': attempt(sys.argv[1]), 'secrets': attempt(sys.argv[2]), 'kubeconfig': attempt(sys.argv[3]),
    'state_dir': sorted(os.listdir(sys.argv[4])) if os.path.isdir(sys.argv[4]) else 'absent',
    'pods': sorted(os.listdir(sys.argv[4] + '/pods')) if os.path.isdir(sys.argv[4] + '/pods') else [],
    'processes': sorted(int(p) for p in os.listdir('/proc') if p.isdigit()),
}
open(os.path.join(os.environ['HOME'], 'created-by-alice'), 'w').close()
print('seen', json.dumps(result))  # (a log that is JSON alone, the client would parse)
"""


async def test_a_pod_runs_as_its_user_and_sees_neither_other_homes_nor_platform_secrets(
    devcluster, core, platform_secret
):
    bob_code = "import os, time\nopen(os.path.expanduser('~/diary.txt'), 'w').write('dear diary')\nwhile True: time.sleep(1)"
    await core.create_namespaced_pod(NS, user_pod("bob", bob_code))
    await wait_pod(core, "jupyter-bob", "running", running_and_ready)
    bob_diary = devcluster.state_dir / "volumes" / NS / "pvc" / "claim-bob" / "diary.txt"
    await wait_for(bob_diary.exists, timeout=10, what="bob's diary")

    args = [
        str(bob_diary),
        str(platform_secret),
        str(devcluster.kubeconfig_path),
        str(devcluster.state_dir),
    ]
    body = user_pod("alice", PROBE, restart="Never")
    body["spec"]["containers"][0]["command"] += args
    phase, log = await run_to_end(core, body)
    assert phase == "Succeeded", log
    seen = json.loads(log.removeprefix("seen "))
    assert (seen["uid"], seen["gid"]) == (1000, _primary_gid(1000)) and 100 in seen["groups"]
    assert seen["bob_home"] == "FileNotFoundError"  # not even there: only her own volumes are
    assert seen["secrets"] in ("FileNotFoundError", "PermissionError")
    assert seen["kubeconfig"] == "FileNotFoundError"
    # the kubelet's state: hidden but for the path down to her own home
    assert seen["state_dir"] in ("absent", ["volumes"], ["pods", "volumes"])
    # of the pods' directories only its own, for its termination message file (as Kubernetes
    # mounts one at terminationMessagePath)
    assert len(seen["pods"]) <= 1 and all("alice" in p for p in seen["pods"]), seen["pods"]
    assert (
        len(seen["processes"]) <= 3
    )  # her pod's own: its PID 1 and her process (bob's: invisible)

    # fsGroup, as Kubernetes applies it: the home is group 100, setgid, group-writable
    home = devcluster.state_dir / "volumes" / NS / "pvc" / "claim-alice"
    info = home.stat()
    assert info.st_gid == 100 and info.st_mode & stat.S_ISGID and info.st_mode & stat.S_IWGRP
    created = (home / "created-by-alice").stat()
    assert (created.st_uid, created.st_gid) == (1000, 100)


def _primary_gid(uid: int) -> int:
    try:
        return pwd.getpwuid(uid).pw_gid
    except KeyError:
        return 0


async def test_read_only_mounts_are_read_only(core):
    await core.create_namespaced_config_map(
        NS, {"metadata": {"name": "settings"}, "data": {"a": "1"}}
    )
    code = (
        "import os\n"
        "for path in ('/settings/b', '/shared/b', os.path.expanduser('~/b')):\n"
        "    try:\n"
        "        open(path, 'w').close(); print(path, 'written')\n"
        "    except OSError as exc:\n"
        "        print(path, exc.strerror)\n"
    )
    body = user_pod(
        "carol", code, restart="Never",
        mounts=[{"name": "settings", "mountPath": "/settings"},
                {"name": "shared", "mountPath": "/shared", "readOnly": True}],
        volumes=[{"name": "settings", "configMap": {"name": "settings"}},
                 {"name": "shared", "persistentVolumeClaim": {"claimName": "shared"}}],
    )  # fmt: skip
    phase, log = await run_to_end(core, body)
    assert phase == "Succeeded", log
    lines = log.splitlines()
    assert lines[0].endswith("/b Read-only file system") and lines[1].endswith(
        "/b Read-only file system"
    )
    assert lines[2].endswith("/b written")


async def test_root_pods_cannot_undo_their_view(devcluster, core):
    """A container without runAsUser runs as root, with the default container capabilities only:
    it cannot unmount what hides the kubelet's state."""
    code = (
        "import ctypes, os\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        f"print(libc.umount2(b{str(devcluster.state_dir)!r}, 2), os.strerror(ctypes.get_errno()))\n"
        "print(os.getuid(), sorted(os.listdir('/tmp')))\n"
    )
    phase, log = await run_to_end(
        core, pod_body("root", container("main", PY, "-c", code), restart="Never")
    )
    assert phase == "Succeeded", log
    unmount, who = log.splitlines()
    assert unmount == "-1 Operation not permitted"
    assert who.startswith("0 ")


async def test_run_as_non_root_without_a_user_is_refused_like_the_kubelet_does(core):
    body = pod_body("nonroot", container("main", PY, "-c", SLEEPER))
    body["spec"]["securityContext"] = {"runAsNonRoot": True}
    await core.create_namespaced_pod(NS, body)
    pod = await wait_pod(core, "nonroot", "refused", phase_is("Failed"))
    terminated = pod.status.container_statuses[0].state.terminated
    assert terminated.reason == "CreateContainerConfigError"
    assert terminated.message.startswith(
        'container has runAsNonRoot and image will run as root (pod: "nonroot_default('
    )
