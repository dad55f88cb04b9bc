"""Credential injection at spawn, hub side: the Secret, the pod's references to it, and what a
failing set does to the start. Pods come from ProfileSpawner's real get_pod_manifest()
(``_mock=True``: no Kubernetes) and validate strictly; no value is ever in a pod or a log line."""

from __future__ import annotations

import base64
import json
import logging
from types import SimpleNamespace

import kubernetes_validate
import pytest
from kubernetes_asyncio.client import ApiClient
from kubernetes_asyncio.config import kube_config
from traitlets.config import Config

from jupyterhub_platform.services.credentials import model
from jupyterhub_platform.services.credentials.secret_manifest import (
    VOLUME_NAME,
    secret_manifest,
)
from jupyterhub_platform.spawner import ProfileSpawner, StartFailed

KUBERNETES_VERSION = "1.30"
TOKEN = "hub-api-token-VALUE-7f3a"
KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters: [{name: unused, cluster: {server: "http://127.0.0.1:9"}}]
users: [{name: unused, user: {}}]
contexts: [{name: unused, context: {cluster: unused, user: unused}}]
current-context: unused
"""
POLICY = """\
groups:
  eng: {profiles: [jupyterlab, vscode], credential_sets: [alpha, beta, gamma]}
culling: {policies: {standard: {idle_timeout: 1h}}}
credential_sets:
  alpha: {provider: template, config: {values: {v: "a"}}}
  beta: {provider: template, config: {values: {v: "b"}}}
  gamma: {provider: template, config: {values: {v: "c"}}}
"""


class Static(model.Provider):
    """Issues its configured values, or fails with the configured reason."""

    name = "static"

    @property
    def keys(self):
        return tuple(self.config["values"])

    async def issue(self, subject, ctx):
        if "fail" in self.config:
            raise model.IssueError(self.config["fail"], f"nothing for {subject.username}")
        return model.Issued(dict(self.config["values"]), ctx.now(), ctx.now() + 3600)


def cset(name, values, fail=None, **kwargs) -> model.CredentialSet:
    config = {"values": values, **({"fail": fail} if fail else {})}
    return model.CredentialSet(name, Static(config, ("credential_sets", name)), **kwargs)


async def no_io(*args):
    raise AssertionError("no I/O expected")


CTX = model.IssueContext(fetch=no_io, read_secret=no_io, verify_token=no_io, now=lambda: 1000.0)
ALPHA = cset("alpha", {"key_id": "alpha-ID-VALUE", "secret": "alpha-SECRET-VALUE"},
             env={"ALPHA_KEY_ID": "key_id"})  # fmt: skip
BETA = cset("beta", {"region": "beta-REGION-VALUE"}, env={"BETA_REGION": "region"}, files=False)
GAMMA = cset("gamma", {"token": "gamma-TOKEN-VALUE"})
VALUES = (TOKEN, "alpha-ID-VALUE", "alpha-SECRET-VALUE", "beta-REGION-VALUE", "gamma-TOKEN-VALUE")


@pytest.fixture(autouse=True)
def kube_client_config(tmp_path, monkeypatch):
    path = tmp_path / "kubeconfig"
    path.write_text(KUBECONFIG)
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(path))
    monkeypatch.delenv("JUPYTERHUB_PLATFORM_POLICY", raising=False)


def make_spawner(tmp_path, sets=(ALPHA, BETA, GAMMA), **traits) -> ProfileSpawner:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    config = Config()
    config.PlatformPolicy.policy_file = str(policy)
    config.KubeSpawner.extra_containers = [{"name": "helper", "image": "busybox:1"}]
    for name, value in traits.items():
        setattr(config.ProfileSpawner, name, value)

    async def get_auth_state():
        return {"id_token": "never-used"}

    user = SimpleNamespace(
        name="alice", id=1, url="/user/alice/", escaped_name="alice", settings={"users": {}},
        groups=[SimpleNamespace(name="eng")], get_auth_state=get_auth_state,
    )  # fmt: skip
    spawner = ProfileSpawner(_mock=True, user=user, config=config, api_token=TOKEN)
    spawner.declared_credential_sets = lambda: {s.name: s for s in sets}
    spawner.issue_context = lambda: CTX
    return spawner


async def pod_of(spawner, options=None) -> dict:
    spawner.user_options = options or {"profile": "jupyterlab"}
    await spawner.load_user_options()
    async with ApiClient() as api:
        return api.sanitize_for_serialization(await spawner.get_pod_manifest())


def main(pod: dict) -> dict:
    return pod["spec"]["containers"][0]


def env_of(container: dict) -> dict:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def ref(key: str, pod_name: str = "jupyter-alice") -> dict:
    return {"secretKeyRef": {"name": model.secret_name(pod_name), "key": key}}


def test_the_secret_holds_the_token_and_the_issued_sets_and_is_owned_by_the_pod():
    issued = {
        "alpha": model.Issued({"key_id": "A", "secret": "B"}, 1000.0, 4600.0),
        "gamma": model.Issued({"token": "C"}, 1000.0),
    }
    labels = {"app": "jupyterhub", "component": "singleuser-server", "hub.jupyter.org/username": "alice"}  # fmt: skip
    secret = secret_manifest(
        "jupyter-alice", "jhub", "uid-1", labels, "alice", TOKEN, [ALPHA, BETA, GAMMA], issued
    )
    kubernetes_validate.validate(secret, KUBERNETES_VERSION, strict=True)
    meta = secret["metadata"]
    assert meta["name"] == "jupyter-alice-credentials" and meta["namespace"] == "jhub"
    assert meta["ownerReferences"] == [
        {"apiVersion": "v1", "kind": "Pod", "name": "jupyter-alice", "uid": "uid-1",
         "controller": False, "blockOwnerDeletion": False}
    ]  # fmt: skip
    assert meta["labels"] == {**labels, "component": model.SECRET_COMPONENT}
    assert meta["annotations"][model.SETS_ANNOTATION] == "alpha,gamma"  # beta was not issued
    assert json.loads(meta["annotations"][model.EXPIRY_ANNOTATION]) == {
        "alpha": {"issued_at": 1000.0, "expires_at": 4600.0},
        "gamma": {"issued_at": 1000.0, "expires_at": None},
    }
    assert meta["annotations"][model.USER_ANNOTATION] == "alice"
    assert not any(v in json.dumps(meta) for v in (TOKEN, "A", "B", "C") if len(v) > 1)
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert data == {"jupyterhub-api-token": TOKEN, "alpha.key_id": "A", "alpha.secret": "B",
                    "gamma.token": "C"}  # fmt: skip


async def test_the_pod_refers_to_the_secret_and_holds_no_value(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    spawner = make_spawner(tmp_path, credentials_url="http://hub:8081/services/credentials/")
    pod = await pod_of(spawner)
    kubernetes_validate.validate(pod, KUBERNETES_VERSION, strict=True)
    text = json.dumps(pod)
    assert not [v for v in VALUES if v in text]
    env = env_of(main(pod))
    assert env["JUPYTERHUB_API_TOKEN"] == env["JPY_API_TOKEN"] == ref("jupyterhub-api-token")
    assert env["ALPHA_KEY_ID"] == ref("alpha.key_id")
    assert env["BETA_REGION"] == ref("beta.region")
    assert env["JUPYTERHUB_PLATFORM_CREDENTIALS_DIR"] == model.MOUNT_ROOT
    assert env["JUPYTERHUB_PLATFORM_CREDENTIALS_URL"] == "http://hub:8081/services/credentials/"
    volume = next(v for v in pod["spec"]["volumes"] if v["name"] == VOLUME_NAME)
    assert volume["secret"] == {
        "secretName": "jupyter-alice-credentials",
        "items": [  # beta has files: false
            {"key": "jupyterhub-api-token", "path": "jupyterhub-api-token"},
            {"key": "alpha.key_id", "path": "alpha/key_id"},
            {"key": "alpha.secret", "path": "alpha/secret"},
            {"key": "gamma.token", "path": "gamma/token"},
        ],
    }
    mounts = [m for m in main(pod)["volumeMounts"] if m["name"] == VOLUME_NAME]
    assert mounts == [{"name": VOLUME_NAME, "mountPath": model.MOUNT_ROOT, "readOnly": True}]
    helper = pod["spec"]["containers"][1]
    assert helper["name"] == "helper"
    assert VOLUME_NAME not in json.dumps(helper) and "secretKeyRef" not in json.dumps(helper)
    assert not [v for v in VALUES if v in caplog.text]


async def test_a_failing_optional_set_is_left_out_with_a_warning(tmp_path, caplog):
    broken = cset("beta", {"region": "beta-REGION-VALUE"}, fail="upstream_refused",
                  env={"BETA_REGION": "region"})  # fmt: skip
    spawner = make_spawner(tmp_path, sets=(ALPHA, broken, GAMMA))
    pod = await pod_of(spawner)
    kubernetes_validate.validate(pod, KUBERNETES_VERSION, strict=True)
    assert "BETA_REGION" not in env_of(main(pod)) and "beta." not in json.dumps(pod)
    assert "ALPHA_KEY_ID" in env_of(main(pod))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("beta: not issued (upstream_refused): nothing for alice" in w for w in warnings)
    assert spawner._credentials.notes == ("beta: not issued (upstream_refused): nothing for alice",)
    assert not [v for v in VALUES if v in caplog.text]


async def test_a_failing_required_set_fails_the_start_naming_it(tmp_path, caplog):
    broken = cset("gamma", {"token": "gamma-TOKEN-VALUE"}, fail="token_expired", required=True)
    spawner = make_spawner(tmp_path, sets=(ALPHA, BETA, broken))
    with pytest.raises(StartFailed) as info:
        await pod_of(spawner)
    message = info.value.jupyterhub_message
    assert "'gamma'" in message and "token_expired" in message
    assert not [v for v in VALUES if v in message or v in caplog.text]


async def test_nothing_leaks_into_the_next_start_of_a_reused_spawner(tmp_path):
    spawner = make_spawner(tmp_path)
    await pod_of(spawner)  # all three sets
    spawner.declared_credential_sets = lambda: {}  # the policy no longer declares them
    pod = await pod_of(spawner, {"profile": "vscode"})
    volumes = [v for v in pod["spec"]["volumes"] if v["name"] == VOLUME_NAME]
    assert volumes[0]["secret"]["items"] == [
        {"key": "jupyterhub-api-token", "path": "jupyterhub-api-token"}
    ]
    assert len(volumes) == 1 and len(main(pod)["volumeMounts"]) == 2  # home + credentials
    assert not {"ALPHA_KEY_ID", "BETA_REGION"} & set(env_of(main(pod)))


async def test_without_the_token_in_a_secret_and_no_sets_the_pod_is_kubespawners(tmp_path):
    spawner = make_spawner(tmp_path, sets=(), api_token_in_secret=False)
    pod = await pod_of(spawner)
    assert VOLUME_NAME not in json.dumps(pod)
    assert env_of(main(pod))["JUPYTERHUB_API_TOKEN"] == TOKEN  # KubeSpawner's own behaviour
    assert spawner._credentials is None


async def test_with_the_token_left_in_the_pod_spec_sets_still_come_from_the_secret(tmp_path):
    spawner = make_spawner(tmp_path, api_token_in_secret=False)
    pod = await pod_of(spawner)
    kubernetes_validate.validate(pod, KUBERNETES_VERSION, strict=True)
    env = env_of(main(pod))
    assert env["JUPYTERHUB_API_TOKEN"] == TOKEN and env["ALPHA_KEY_ID"] == ref("alpha.key_id")
    assert not [v for v in VALUES[1:] if v in json.dumps(pod)]
