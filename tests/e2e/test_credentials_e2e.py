"""Platform credentials on the local platform: the stock hub config with the credentials overlay,
a real STS + S3 server (moto's, IAM auth on), real hub tokens and the process kubelet.

alice is in ``data-team`` (seeded at the identity provider for this module), which the policy
grants ``research-s3`` (s3-sts, a short lifetime so renewal happens during the test); bob is not.
"""

from __future__ import annotations

import base64
import json
import time

import pytest
import pytest_asyncio
import yaml
from hub_user import (
    core_api,
    credentials_get,
    exec_in,
    hub_users,
    launch,
    local_platform,
    user_pods,
)
from kubernetes_asyncio import client

from jupyterhub_platform.chart.values import load_values_file, policy_in_values
from jupyterhub_platform.devcluster.cluster import ClusterAccess
from jupyterhub_platform.devcluster.idp import DemoUser, IdPEndpoints, put_claims
from jupyterhub_platform.devcluster.platform import shipped_values_dir
from jupyterhub_platform.devcluster.procs import wait_for
from jupyterhub_platform.services.credentials import model

# On the hub image's matrix; jh6 runs the service's own tests against a real JupyterHub 6 hub.
pytestmark = [pytest.mark.e2e, pytest.mark.jh55_only, pytest.mark.asyncio(loop_scope="session")]

SET = "research-s3"
SEEN: set[str] = set()
"""Every secret value the first test saw (keys, session tokens, API tokens; not the endpoint or
the region, which are settings): the scan looks for them everywhere."""
SECRET_KEYS = (
    model.API_TOKEN_KEY,
    *(model.data_key(SET, k) for k in ("aws_access_key_id", "aws_secret_access_key",
                                        "aws_session_token")),
)  # fmt: skip


def remember(values: dict[str, str]) -> None:
    SEEN.update(v for k, v in values.items() if k in SECRET_KEYS and v)


LIFETIME = 60  # seconds: renewed at 80% (48 s), after a slow spawn and the first probe
ALICE = DemoUser("alice", ("researchers", "data-team"), "researcher in the data team")


def policy_text() -> str:
    """The shipped policy; research-s3 granted to data-team only, with a short lifetime."""
    policy = yaml.safe_load(
        policy_in_values(load_values_file(shipped_values_dir() / "values.yaml")).text
    )
    for spec in policy["groups"].values():
        if spec and SET in (spec.get("credential_sets") or []):
            spec["credential_sets"].remove(SET)
    policy["groups"]["data-team"] = {"credential_sets": [SET]}
    policy["credential_sets"][SET]["config"]["duration"] = f"{LIFETIME}s"
    return yaml.safe_dump(policy, sort_keys=False)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def cred_platform(z2jh_chart):
    extra = {"hub": {"extraFiles": {"platform-policy": {"stringData": policy_text()}}}}
    async with local_platform(
        z2jh_chart, "credentials-", credentials=True, extra_values=extra
    ) as running:
        await put_claims(IdPEndpoints(running.idp_url), ALICE.username, ALICE.claims())
        yield running


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def k8s(cred_platform):
    async with core_api(cred_platform) as api:
        yield api


@pytest_asyncio.fixture(loop_scope="session")
async def users(cred_platform):
    async with hub_users(cred_platform) as make:
        yield make


S3_PROBE = """
import json, sys, boto3
from jupyterhub_platform.workspace.credentials import get
settings = get(sys.argv[1])
s3 = boto3.client("s3", **settings)
s3.put_object(Bucket="research", Key="alice/" + sys.argv[2], Body=sys.argv[2].encode())
body = s3.get_object(Bucket="research", Key="alice/" + sys.argv[2])["Body"].read().decode()
print("seen", json.dumps({"key_id": settings["aws_access_key_id"], "body": body}))
"""


async def s3_from_pod(k8s, pod: str, tag: str) -> dict:
    output = await exec_in(k8s, pod, ["python", "-c", S3_PROBE, SET, tag])
    assert output.startswith("seen "), output
    return json.loads(output.removeprefix("seen "))


async def credentials_secret(k8s, pod) -> client.V1Secret:
    return await k8s.read_namespaced_secret(model.secret_name(pod.metadata.name), "default")


def secret_values(secret: client.V1Secret) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()}


async def test_alices_server_gets_s3_credentials_renewed_in_place_and_bob_never(
    cred_platform, k8s, users
):
    alice, bob = users("alice"), users("bob")
    await launch(alice)
    (pod,) = await user_pods(k8s, "alice")
    secret = await credentials_secret(k8s, pod)
    values = secret_values(secret)
    remember(values)
    assert {model.data_key(SET, k) for k in ("aws_access_key_id", "aws_secret_access_key",
                                             "aws_session_token")} <= values.keys()  # fmt: skip
    owner = secret.metadata.owner_references[0]
    assert (owner.kind, owner.name, owner.uid) == ("Pod", pod.metadata.name, pod.metadata.uid)
    pod_spec = json.dumps(client.ApiClient().sanitize_for_serialization(pod))
    assert not [k for k, v in values.items() if v and v in pod_spec], "a value in the pod spec"

    first = await s3_from_pod(k8s, pod.metadata.name, "first")
    assert first["body"] == "first"
    # On a loaded machine the spawn and this probe can outlast the renewal point: the pod then
    # used the renewed set, which the Secret holds now.
    key_id = model.data_key(SET, "aws_access_key_id")
    if first["key_id"] != values[key_id]:
        secret = await credentials_secret(k8s, pod)
        values = secret_values(secret)
        remember(values)
    assert first["key_id"] == values[key_id]

    # Renewed in the running pod before expiry: the Secret, then the mounted files.
    expiry = json.loads(secret.metadata.annotations[model.EXPIRY_ANNOTATION])[SET]
    assert expiry["expires_at"] - expiry["issued_at"] == pytest.approx(LIFETIME, abs=2)

    async def renewed() -> bool:
        now = secret_values(await credentials_secret(k8s, pod))
        return now[key_id] != first["key_id"]

    await wait_for(renewed, timeout=LIFETIME + 30, interval=1, what="the renewal")
    remember(secret_values(await credentials_secret(k8s, pod)))
    assert time.time() < expiry["expires_at"] + 5, "renewed before the old credentials expired"

    async def files_renewed() -> bool:
        seen = await s3_from_pod(k8s, pod.metadata.name, "second")
        return seen["key_id"] != first["key_id"] and seen["body"] == "second"

    await wait_for(files_renewed, timeout=20, interval=1, what="the renewed files in the pod")
    renewed_key = secret_values(await credentials_secret(k8s, pod))[key_id]
    in_file = await exec_in(k8s, pod.metadata.name, [
        "python", "-c", "import os; print(open(os.path.join(os.environ["
        "'JUPYTERHUB_PLATFORM_CREDENTIALS_DIR'], 'research-s3', 'aws_access_key_id')).read())",
    ])  # fmt: skip
    assert in_file.strip() == renewed_key, "the mounted file holds the renewed key"

    # bob: another group, no research-s3 — not in his Secret, refused by the service.
    await launch(bob)
    (bob_pod,) = await user_pods(k8s, "bob")
    bob_values = secret_values(await credentials_secret(k8s, bob_pod))
    assert not [k for k in bob_values if k.startswith(f"{SET}.")]
    bob_token = bob_values[model.API_TOKEN_KEY]
    remember(bob_values)
    status, body = await credentials_get(cred_platform, bob_token, f"credentials/{SET}")
    assert status == 403, body
    assert first["key_id"] not in json.dumps(body)

    # alice's own server token gets her set; a forged one nothing.
    alice_token = secret_values(await credentials_secret(k8s, pod))[model.API_TOKEN_KEY]
    status, body = await credentials_get(cred_platform, alice_token, f"credentials/{SET}")
    assert status == 200 and body["set"] == SET
    status, _ = await credentials_get(
        cred_platform, alice_token[:-4] + "abcd", f"credentials/{SET}"
    )
    assert status == 403

    # The Secret goes with the pod.
    await alice.stop()

    async def secret_gone() -> bool:
        try:
            await credentials_secret(k8s, pod)
        except client.ApiException as exc:
            return exc.status == 404
        return False

    await wait_for(secret_gone, timeout=30, interval=0.5, what="alice's Secret to go")


SCANNED_KINDS = (
    "/api/v1/namespaces/default/pods",
    "/api/v1/namespaces/default/events",
    "/api/v1/namespaces/default/configmaps",
    "/api/v1/namespaces/default/services",
    "/api/v1/namespaces/default/persistentvolumeclaims",
    "/api/v1/namespaces/default/serviceaccounts",
    "/apis/batch/v1/namespaces/default/jobs",
)


def _scanned_files(state_dir):
    """Every file of the run but the pods' volumes (a Secret volume holds values by design)."""
    for path in state_dir.rglob("*"):
        if path.is_file() and not path.is_symlink() and "volumes" not in path.parts:
            yield path


async def test_no_credential_value_outside_secrets(cred_platform):
    assert len(SEEN) >= 7, "the first test saw two key sets and two API tokens"
    found = []
    for path in _scanned_files(cred_platform.state_dir):
        content = path.read_bytes()
        found += [f"{path}" for value in SEEN if value.encode() in content]
    access = ClusterAccess.from_kubeconfig(cred_platform.cluster.kubeconfig_path)
    objects = []
    async with access.session() as session:
        for kind in SCANNED_KINDS:
            async with session.get(f"{access.url}{kind}") as resp:
                assert resp.status == 200, kind
                objects.append((kind, await resp.text()))
    found += [kind for kind, text in objects for value in SEEN if value in text]
    assert not found, f"credential values outside Secrets: {sorted(set(found))}"
