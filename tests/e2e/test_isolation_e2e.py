"""Users' servers on the local platform are isolated from each other and from the platform.

Alice's and bob's servers both run as uid 1000 (the chart's ``singleuser.uid``); what alice's
server can reach is checked from inside it with ``pods/exec`` (what ``kubectl exec`` does).
Needs a kubelet that can isolate pods (root): fails under CI, skips elsewhere.
"""

from __future__ import annotations

import json
import os

import aiohttp
import pytest
from hub_user import exec_in, launch, user_pods

from jupyterhub_platform.devcluster.kubelet.isolation import unavailable_reason

pytestmark = [pytest.mark.e2e, pytest.mark.jh55_only, pytest.mark.asyncio(loop_scope="session")]

HOME = "/home/jovyan"  # singleuser.storage.homeMountPath

PROBE = """
import json, os, sys
def attempt(path):
    try:
        with open(path) as f:
            return 'read'
    except OSError as exc:
        return type(exc).__name__
print('seen', json.dumps({'uid': os.getuid(), 'groups': os.getgroups(),
                  'bob_home': attempt(sys.argv[1]), 'secrets': attempt(sys.argv[2]),
                  'kubeconfig': attempt(sys.argv[3])}))
"""


async def test_a_users_server_runs_as_its_uid_and_reaches_no_other_home_nor_secret(
    platform, hub, k8s
):
    reason = unavailable_reason()
    if reason is not None:
        (pytest.fail if os.environ.get("CI") else pytest.skip)(
            f"pods cannot be isolated here: {reason}"
        )
    alice, bob = hub("alice"), hub("bob")
    await launch(alice)
    await launch(bob)
    note = {"type": "file", "format": "text", "content": "bob's private notes\n"}
    resp = await bob.server("PUT", "/contents/private.txt", json=note)
    assert resp.status in (200, 201), await resp.text()
    (bob_pod,) = await user_pods(k8s, "bob")
    home = next(m.name for m in bob_pod.spec.containers[0].volume_mounts if m.mount_path == HOME)
    (claim,) = [
        v.persistent_volume_claim.claim_name for v in bob_pod.spec.volumes if v.name == home
    ]
    bob_file = (
        platform.state_dir / "cluster" / "volumes" / "default" / "pvc" / claim / "private.txt"
    )
    assert bob_file.read_text() == "bob's private notes\n"  # where bob's home lives on this machine

    (alice_pod,) = await user_pods(k8s, "alice")
    assert alice_pod.spec.containers[0].security_context.run_as_user == 1000
    args = [str(bob_file), str(platform.secrets.path), str(platform.cluster.kubeconfig_path)]
    output = await exec_in(k8s, alice_pod.metadata.name, ["python", "-c", PROBE, *args])
    seen = json.loads(output.removeprefix("seen "))  # (JSON alone, the client would decode it)
    assert seen["uid"] == 1000 and 100 in seen["groups"]  # singleuser.uid and fsGid
    assert seen == {**seen, "bob_home": "FileNotFoundError", "secrets": "FileNotFoundError",
                    "kubeconfig": "FileNotFoundError"}  # fmt: skip


async def test_the_platforms_api_server_refuses_unauthenticated_requests(platform):
    url = f"{platform.cluster.url}/api/v1/namespaces/default/secrets"
    async with aiohttp.ClientSession() as http, http.get(url, ssl=False) as resp:
        assert resp.status == 401
        assert (await resp.json())["reason"] == "Unauthorized"
