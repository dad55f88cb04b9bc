"""The local platform end to end: OIDC login, spawning through KubeSpawner, the proxy, homes."""

from __future__ import annotations

import asyncio

import pytest
from hub_user import launch, user_pods
from kubernetes_asyncio.client.exceptions import ApiException

from jupyterhub_platform.devcluster.procs import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]


async def pods_gone(k8s, name: str) -> None:
    async def gone() -> bool:
        return not await user_pods(k8s, name)

    await wait_for(gone, timeout=60, interval=0.25, what=f"{name}'s pod to be deleted")


async def test_login_spawn_reach_lab_and_stop(hub, k8s):
    alice = hub("alice")
    seconds = await launch(alice)
    print(f"alice: login to running JupyterLab in {seconds:.1f}s")

    resp = await alice.server("GET", "/status")
    assert resp.status == 200
    assert "started" in await resp.json()
    async with alice.session.get(f"{alice.server_url}/lab") as lab:
        assert lab.status == 200
        assert "JupyterLab" in await lab.text()
    model = await alice.model()
    assert model["servers"][""]["ready"] is True
    assert "researchers" in model["groups"]
    (pod,) = await user_pods(k8s, "alice")
    assert pod.status.phase == "Running"

    await alice.stop()
    await pods_gone(k8s, "alice")
    resp = await alice.server("GET", "/status")
    assert resp.status != 200


async def test_two_users_in_parallel_get_their_own_pods(hub, k8s):
    alice, bob = hub("alice"), hub("bob")
    await asyncio.gather(launch(alice), launch(bob))

    (alice_pod,) = await user_pods(k8s, "alice")
    (bob_pod,) = await user_pods(k8s, "bob")
    assert alice_pod.status.pod_ip != bob_pod.status.pod_ip
    for user in (alice, bob):
        resp = await user.server("GET", "/status")
        assert resp.status == 200
    # bob is a platform admin through the admin_groups of the shipped values
    assert (await bob.model())["admin"] is True
    assert (await alice.model())["admin"] is False
    # one user's cookies do not open the other's server
    async with alice.session.get(f"{bob.server_url}/api/status", allow_redirects=False) as resp:
        assert resp.status in (302, 403)


async def test_home_directory_survives_a_restart(hub, k8s):
    alice = hub("alice")
    await launch(alice)
    note = {"type": "file", "format": "text", "content": "kept across sessions\n"}
    resp = await alice.server("PUT", "/contents/persist-check.txt", json=note)
    assert resp.status in (200, 201), await resp.text()
    (first_pod,) = await user_pods(k8s, "alice")

    await alice.stop()
    await pods_gone(k8s, "alice")
    await alice.spawn_via_form({})  # this time the way a browser starts it
    await alice.wait_ready()

    (second_pod,) = await user_pods(k8s, "alice")
    assert second_pod.metadata.uid != first_pod.metadata.uid
    resp = await alice.server("GET", "/contents/persist-check.txt?content=1")
    assert resp.status == 200
    assert (await resp.json())["content"] == "kept across sessions\n"
    mounts = second_pod.spec.containers[0].volume_mounts
    (home,) = [m for m in mounts if m.mount_path == "/home/jovyan"]
    (volume,) = [v for v in second_pod.spec.volumes if v.name == home.name]
    pvc = await k8s.read_namespaced_persistent_volume_claim(
        volume.persistent_volume_claim.claim_name, "default"
    )
    assert pvc.spec.resources.requests["storage"] == "10Gi"


async def test_user_outside_the_allowed_groups_is_refused(hub, k8s):
    carol = hub("carol")
    assert await carol.login() == 403
    resp = await carol.api("GET", "/users/carol")
    assert resp.status == 403
    with pytest.raises(ApiException) as err:
        await k8s.read_namespaced_pod("jupyter-carol", "default")
    assert err.value.status == 404
