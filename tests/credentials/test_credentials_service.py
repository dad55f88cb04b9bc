"""The credentials service against a real hub: real users, groups, auth state and hub tokens
(created, revoked and expired by the hub itself), requests through the hub's proxy; renewal of
servers' Secrets in the Kubernetes emulator."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import sys
import time
from pathlib import Path

import aiohttp
import pytest
from credentials_fixtures import CULLING, LIFETIME, S3_SET, SCOPES, stop_server, wait_for_route
from kubernetes_asyncio import client, config

from jupyterhub_platform.devcluster.procs import wait_for
from jupyterhub_platform.services.credentials.app import CredentialsApp
from jupyterhub_platform.services.credentials.model import (
    EXPIRY_ANNOTATION,
    SECRET_COMPONENT,
    SETS_ANNOTATION,
    USER_ANNOTATION,
    data_key,
)
from jupyterhub_platform.workspace import credentials

# The hub and the emulator are the module's (conftest.py); each test makes its own users, tokens,
# service and Secrets.
pytestmark = [pytest.mark.processes, pytest.mark.asyncio(loop_scope="session")]


async def get(url: str, token: str | None) -> tuple[int, dict]:
    headers = {"Authorization": f"token {token}"} if token is not None else {}
    async with (
        aiohttp.ClientSession() as s,
        s.get(url, headers=headers, allow_redirects=False) as r,
    ):
        text = await r.text()
        assert r.content_type == "application/json", (r.status, r.headers, text[:300])
        return r.status, json.loads(text)


async def alice_and_bob(service) -> tuple[str, str]:
    """alice in team-a (alpha), bob in team-b (beta); their tokens."""
    admin = service.admin
    await admin.user("alice", ["team-a"], {"marker": "alice-state"})
    await admin.user("bob", ["team-b"], {"marker": "bob-state"})
    return (await admin.new_token("alice"))["token"], (await admin.new_token("bob"))["token"]


async def test_a_users_token_gets_their_sets_and_only_theirs(service, caplog, audit_log):
    alice, bob = await alice_and_bob(service)
    caplog.set_level(logging.INFO)

    status, body = await get(service.url + "api/v1/sets", alice)
    assert (status, body) == (200, {"user": "alice", "sets": [
        {"name": "alpha", "description": "the alpha set", "provider": "test-counter"},
        {"name": "gamma-s3", "description": "", "provider": "test-s3"}]})  # fmt: skip

    status, body = await get(service.url + "api/v1/credentials/alpha", alice)
    assert status == 200, body
    assert set(body) == {"set", "values", "issued_at", "expires_at"}
    assert body["set"] == "alpha"
    secret = body["values"]["secret"]
    assert secret.startswith("alpha-alice-alice-state-")  # the auth state, read by the service
    assert body["expires_at"] == pytest.approx(body["issued_at"] + LIFETIME)

    # the cache: a second request is the same issuance, the provider is not asked again
    assert (await get(service.url + "api/v1/credentials/alpha", alice))[1] == body
    assert service.counter.calls == ["alice/alpha"]

    # alice's token never yields bob's set; the refusal names the set, nothing else
    status, refused = await get(service.url + "api/v1/credentials/beta", alice)
    assert status == 403
    assert refused == {"error": "credential set 'beta' is not available to you",
                       "reason": "not_entitled"}  # fmt: skip
    assert (await get(service.url + "api/v1/credentials/no-such-set", alice))[1][
        "reason"
    ] == "not_entitled"  # unknown sets look the same: nobody learns which exist
    assert service.counter.calls == ["alice/alpha"]

    status, body = await get(service.url + "api/v1/credentials/beta", bob)
    assert status == 200 and body["values"]["secret"].startswith("beta-bob-bob-state-")

    lines = [(x["subject"], x["details"]["set"], x["result"], x["reason"]) for x in audit_log]
    assert lines == [
        ("alice", "alpha", "ok", ""),
        ("alice", "beta", "refused", "not_entitled"),
        ("alice", "no-such-set", "refused", "not_entitled"),
        ("bob", "beta", "ok", ""),
    ]
    assert audit_log[0]["details"]["provider"] == "test-counter"
    assert audit_log[0]["details"]["expires_at"] == pytest.approx(time.time() + LIFETIME, abs=60)
    audit_text = json.dumps(audit_log)
    assert secret not in audit_text and "alice-state" not in audit_text
    assert secret not in caplog.text


async def test_a_server_like_token_with_few_scopes_identifies_its_user(service):
    await alice_and_bob(service)
    token = (await service.admin.new_token("alice", scopes=["users:activity!user"]))["token"]
    status, body = await get(service.url + "api/v1/credentials/alpha", token)
    assert status == 200 and body["values"]["secret"].startswith("alpha-alice-")


async def test_forged_revoked_and_expired_tokens_are_refused(service, audit_log):
    await alice_and_bob(service)
    revoked = await service.admin.new_token("alice")
    await service.admin.call("DELETE", f"/users/alice/tokens/{revoked['id']}")
    expiring = await service.admin.new_token("alice", expires_in=1)

    async def expired() -> bool:  # by the hub's own clock
        async with (
            aiohttp.ClientSession() as s,
            s.get(f"{service.hub.url}/hub/api/user", headers={
                "Authorization": f"token {expiring['token']}"}) as r,
        ):  # fmt: skip
            return r.status == 403

    await wait_for(expired, timeout=10, interval=0.2, what="the hub to refuse the expired token")
    audit_log.clear()
    for token in ("forged-" + "0" * 32, revoked["token"], expiring["token"], None, ""):
        for path in ("api/v1/credentials/alpha", "api/v1/sets"):
            status, body = await get(service.url + path, token)
            assert status == 403, (token, path, body)
            assert body["reason"] == "unauthenticated" and "Traceback" not in json.dumps(body)
    assert service.counter.calls == []
    assert {(x["subject"], x["result"], x["reason"]) for x in audit_log} == {
        ("", "refused", "unauthenticated")
    }


async def test_metrics_need_read_metrics_and_have_no_users(service):
    alice, _ = await alice_and_bob(service)
    await get(service.url + "api/v1/credentials/alpha", alice)
    await get(service.url + "api/v1/credentials/beta", alice)
    status, body = await get(service.url + "metrics", alice)
    assert status == 403 and "read:metrics" in body["error"]
    headers = {"Authorization": f"token {service.admin.token}"}
    async with aiohttp.ClientSession() as s, s.get(service.url + "metrics", headers=headers) as r:
        assert r.status == 200
        text = await r.text()
    assert (
        'credentials_issuances_total{provider="test-counter",result="issued",set="alpha"} 1.0'
        in text
    )
    assert 'credentials_refusals_total{reason="not_entitled"} 1.0' in text
    assert "alice" not in text
    async with aiohttp.ClientSession() as s, s.get(service.url + "health") as r:
        assert r.status == 200


def credential_secret(name: str, user: str, sets: dict[str, dict], data: dict[str, str]):
    return client.V1Secret(
        metadata=client.V1ObjectMeta(
            name=name,
            labels={"component": SECRET_COMPONENT},
            annotations={
                USER_ANNOTATION: user,
                SETS_ANNOTATION: ",".join(sets),
                EXPIRY_ANNOTATION: json.dumps(sets),
            },
        ),
        data={k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    )


def values(secret) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()}


async def test_renewal_patches_expiring_sets_and_blanks_revoked_ones(service, devcluster):
    """carol's alpha is 90% through its lifetime: renewed; her beta was never granted and dave
    left team-a: blanked and dropped; a fresh set and a Secret of another component stay."""
    admin = service.admin
    await admin.user("carol", ["team-a"], {"marker": "carol-state"})
    await admin.user("dave", ["team-a"], {"marker": "dave-state"})
    await admin.call("DELETE", "/groups/team-a/users", {"users": ["dave"]})
    service.kube.kubeconfig = str(devcluster.kubeconfig_path)
    now = time.time()
    due = {"issued_at": now - 900, "expires_at": now + 100}
    fresh = {"issued_at": now - 100, "expires_at": now + 900}
    old = {"jupyterhub-api-token": "api-token", data_key("alpha", "secret"): "old",
           data_key("alpha", "expiration"): "old", data_key("beta", "secret"): "old-beta"}  # fmt: skip

    api = await config.new_client_from_config(config_file=str(devcluster.kubeconfig_path))
    async with api:
        core = client.CoreV1Api(api)
        await core.create_namespaced_secret(
            "default",
            credential_secret(
                "jupyter-carol-credentials", "carol", {"alpha": due, "beta": due}, old
            ),
        )
        await core.create_namespaced_secret(
            "default",
            credential_secret("jupyter-carol-2-credentials", "carol", {"alpha": fresh}, old),
        )
        await core.create_namespaced_secret("default", credential_secret(
            "jupyter-dave-credentials", "dave", {"alpha": due}, old))  # fmt: skip

        await service.renew()

        carol = await core.read_namespaced_secret("jupyter-carol-credentials", "default")
        got = values(carol)
        assert got["jupyterhub-api-token"] == "api-token"
        assert got[data_key("alpha", "secret")].startswith("alpha-carol-carol-state-")
        assert got[data_key("beta", "secret")] == ""
        assert carol.metadata.annotations[SETS_ANNOTATION] == "alpha"
        expiry = json.loads(carol.metadata.annotations[EXPIRY_ANNOTATION])
        assert set(expiry) == {"alpha"}
        assert expiry["alpha"]["expires_at"] == pytest.approx(time.time() + LIFETIME, abs=60)

        untouched = await core.read_namespaced_secret("jupyter-carol-2-credentials", "default")
        assert values(untouched)[data_key("alpha", "secret")] == "old"

        dave = await core.read_namespaced_secret("jupyter-dave-credentials", "default")
        assert values(dave)[data_key("alpha", "secret")] == ""
        assert values(dave)[data_key("alpha", "expiration")] == ""
        assert dave.metadata.annotations[SETS_ANNOTATION] == ""
        assert service.counter.calls == ["carol/alpha"]

        # the next round has nothing due: nothing issued, nothing patched
        version = carol.metadata.resource_version
        await service.renew()
        carol = await core.read_namespaced_secret("jupyter-carol-credentials", "default")
        assert carol.metadata.resource_version == version
        assert service.counter.calls == ["carol/alpha"]
    text = (await _metrics(service)).splitlines()
    assert 'credentials_renewals_total{result="renewed",set="alpha"} 1.0' in text
    assert 'credentials_renewals_total{result="revoked",set="alpha"} 1.0' in text
    assert any(line.startswith('credentials_seconds_to_expiry{set="alpha"}') for line in text)


async def _metrics(service) -> str:
    headers = {"Authorization": f"token {service.admin.token}"}
    async with aiohttp.ClientSession() as s, s.get(service.url + "metrics", headers=headers) as r:
        return await r.text()


async def test_the_workspace_client_asks_the_service_when_nothing_fresh_is_mounted(
    service, tmp_path, monkeypatch
):
    alice, _ = await alice_and_bob(service)
    monkeypatch.setenv("JUPYTERHUB_PLATFORM_CREDENTIALS_URL", service.url)
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", alice)
    monkeypatch.setenv("JUPYTERHUB_PLATFORM_CREDENTIALS_DIR", str(tmp_path / "mount"))
    stale = tmp_path / "mount" / "alpha"
    stale.mkdir(parents=True)
    (stale / "secret").write_text("stale")
    (stale / "expiration").write_text("2020-01-01T00:00:00Z")

    got = await asyncio.to_thread(credentials.get, "alpha")
    assert got["secret"].startswith("alpha-alice-alice-state-")
    assert await asyncio.to_thread(credentials.get, S3_SET) == {
        "aws_access_key_id": "AKIAALICE", "aws_secret_access_key": "secret-of-alice",
        "aws_session_token": "session-of-alice", "endpoint_url": "http://s3.example.org",
        "region_name": "us-east-1",
    }  # fmt: skip
    with pytest.raises(credentials.CredentialsUnavailable) as refused:
        await asyncio.to_thread(credentials.get, "beta")
    assert str(refused.value) == "credential set 'beta' is not available to you"

    # the console script, as boto3 runs it
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": os.pathsep.join(sys.path),
           "JUPYTERHUB_PLATFORM_CREDENTIALS_URL": service.url, "JUPYTERHUB_API_TOKEN": alice}  # fmt: skip
    script = Path(sys.executable).with_name("jupyterhub-platform-credential-process")
    for set_name, code in ((S3_SET, 0), ("beta", 1)):
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(script), set_name, env=env, start_new_session=True,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == code, err
        if code == 0:
            answer = json.loads(out)
            assert set(answer) == {"Version", "AccessKeyId", "SecretAccessKey", "SessionToken",
                                   "Expiration"}  # fmt: skip
            assert (answer["Version"], answer["AccessKeyId"]) == (1, "AKIAALICE")
        else:
            assert err.decode().strip() == (
                "jupyterhub-platform-credential-process: credential set 'beta' is not available to you"
            )
            assert b"Traceback" not in err and out == b""


async def test_the_hub_runs_the_console_script_as_a_managed_service(tmp_path, policy_file):
    """``jupyterhub-platform-credentials`` as the overlay runs it: started by the hub with its
    environment, serving /health behind the proxy, answering a forged token with 403 JSON."""
    from jupyterhub_platform.devcluster.procs import free_port
    from jupyterhub_platform.testing import start_hub

    port = free_port()
    script = Path(sys.executable).with_name("jupyterhub-platform-credentials")
    src = Path(credentials.__file__).parents[2]  # this checkout's package, as in the tests

    def settings(url: str) -> dict:
        return {"JupyterHub": {
            "authenticator_class": "dummy",
            "services": [{
                "name": "credentials", "url": f"http://127.0.0.1:{port}",
                "command": [sys.executable, str(script), "--CredentialsApp.renew_every=0"],
                "environment": {"JUPYTERHUB_PLATFORM_POLICY": str(policy_file),
                                "JUPYTERHUB_PLATFORM_PROFILES": os.environ[
                                    "JUPYTERHUB_PLATFORM_PROFILES"],
                                "PYTHONPATH": str(src)},
            }],
            "load_roles": [{"name": "credentials", "scopes": SCOPES, "services": ["credentials"]}],
        }}  # fmt: skip

    (tmp_path / "managed").mkdir()
    hub = await start_hub(tmp_path / "managed", settings)
    try:
        url = f"{hub.url}/services/credentials/"
        await wait_for_route(url + "health", timeout=60)
        status, body = await get(url + "api/v1/credentials/alpha", "forged")
        assert (status, body["reason"]) == (403, "unauthenticated")
    finally:
        await hub.stop()
    assert "credentials listening on http://127.0.0.1" in hub.log()


async def test_a_policy_files_secret_set_is_read_from_kubernetes(
    cred_hub, policy_file, devcluster, tmp_path
):
    """No test provider: the set is declared in the policy file, its provider (``secret``) comes
    from the registry, and the service reads the Secret from the emulator."""
    hub, admin, token, port = cred_hub
    policy_file.write_text(CULLING + (
        "groups: {team-a: {credential_sets: [course]}, team-b: {}}\n"
        "credential_sets:\n"
        "  course: {provider: secret, config: {secret: course-key, keys: [key]}}\n"))  # fmt: skip
    api = await config.new_client_from_config(config_file=str(devcluster.kubeconfig_path))
    async with api:
        await client.CoreV1Api(api).create_namespaced_secret("default", client.V1Secret(
            metadata=client.V1ObjectMeta(name="course-key"),
            data={"key": base64.b64encode(b"shared-course-key").decode()}))  # fmt: skip
    app = CredentialsApp()
    app.initialize([
        f"--CredentialsApp.api_token={token}", f"--CredentialsApp.api_url={hub.url}/hub/api",
        f"--PolicySource.policy_file={policy_file}", "--KubeSource.namespace=default",
        f"--KubeSource.kubeconfig={devcluster.kubeconfig_path}",
    ])  # fmt: skip
    server = app.make_web_app().listen(port, "127.0.0.1")
    try:
        url = f"{hub.url}/services/credentials/"
        await wait_for_route(url + "health")
        await admin.user("alice", ["team-a"], {})
        await admin.user("bob", ["team-b"], {})
        alice = (await admin.new_token("alice"))["token"]
        bob = (await admin.new_token("bob"))["token"]
        status, body = await get(url + "api/v1/credentials/course", alice)
        assert (status, body["values"], body["expires_at"]) == (
            200, {"key": "shared-course-key"}, None)  # fmt: skip
        assert (await get(url + "api/v1/credentials/course", bob))[0] == 403
    finally:
        await stop_server(server)
