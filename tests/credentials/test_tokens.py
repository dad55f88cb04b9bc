"""The IssueContext's I/O: our token verifier on a real issuer over HTTP (the oidc-token
provider end to end), plain HTTP with a timeout, and Secrets read from the emulator."""

from __future__ import annotations

import base64
import socket
import time

import pytest
from kubernetes_asyncio import client, config

from jupyterhub_platform.auth.subject_binding import BINDING_KEY
from jupyterhub_platform.auth.token_verifier import TokenVerifier
from jupyterhub_platform.devcluster.cluster import DevCluster
from jupyterhub_platform.devcluster.procs import free_port
from jupyterhub_platform.services.credentials.model import IssueContext, IssueError, Subject
from jupyterhub_platform.services.credentials.providers.oidc_token import OIDCTokenProvider
from jupyterhub_platform.services.credentials.providers.secret import SecretProvider
from jupyterhub_platform.services.credentials.transport import http_fetch, secret_reader


async def no_secrets(name: str):
    raise AssertionError("reads no Secret")


def context(verify, read_secret=no_secrets) -> IssueContext:
    return IssueContext(http_fetch(5), read_secret, verify, time.time)


def alice(issuer, **tokens) -> Subject:
    state = {BINDING_KEY: {"iss": issuer.issuer, "sub": "alice"}, **tokens}
    return Subject("alice", frozenset(), state)


async def test_a_jwt_access_token_is_handed_out_with_its_expiry(issuer):
    token = issuer.mint(aud="https://api.example.org")  # an API's audience: userinfo decides
    issuer.userinfo[token] = {"sub": "alice"}
    verifier = TokenVerifier(issuer.issuer, issuer.client_id, http_fetch(5))
    issued = await OIDCTokenProvider({}, ("config",)).issue(alice(issuer, access_token=token),
                                                          context(verifier))  # fmt: skip
    exp = issuer.claims()["exp"]
    assert issued.values["token"] == token and issued.expires_at == pytest.approx(exp, abs=2)
    assert issued.values["expiration"].endswith("Z")


async def test_the_id_token_is_verified_with_the_issuers_keys(issuer):
    verifier = TokenVerifier(issuer.issuer, issuer.client_id, http_fetch(5))
    claims = await verifier("id_token", issuer.mint())
    assert (claims["sub"], claims["aud"], claims["iss"]) == (
        "alice",
        issuer.client_id,
        issuer.issuer,
    )
    with pytest.raises(IssueError) as e:
        await verifier("refresh_token", "x")
    assert (e.value.reason, e.value.message) == ("token_invalid", "cannot verify a 'refresh_token'")


async def test_an_issuer_that_is_down_makes_tokens_unverifiable():
    verifier = TokenVerifier(f"http://127.0.0.1:{free_port()}", "jupyterhub", http_fetch(2))
    with pytest.raises(IssueError) as e:
        await verifier("id_token", "a.b.c")
    assert e.value.reason == "upstream_unavailable"
    assert e.value.message.startswith("the identity provider: cannot reach the OIDC issuer at")


async def test_a_silent_server_times_out():
    with socket.socket() as listener:  # accepts connections (the backlog) and never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        port = listener.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(IssueError) as e:
            await http_fetch(timeout=0.5)("GET", f"http://127.0.0.1:{port}/x", {}, None)
    assert e.value.reason == "upstream_unavailable" and time.monotonic() - started < 5
    assert e.value.message.startswith(f"cannot reach http://127.0.0.1:{port} (")


@pytest.mark.processes
async def test_secrets_are_read_from_the_hub_namespace(tmp_path):
    cluster = DevCluster(tmp_path / "devcluster", kubelet="none")
    await cluster.start()
    try:
        api = await config.new_client_from_config(config_file=str(cluster.kubeconfig_path))
        async with api:
            core = client.CoreV1Api(api)
            data = {"access_key_id": base64.b64encode(b"AKCOURSE").decode()}
            body = {"metadata": {"name": "course-materials"}, "data": data}
            await core.create_namespaced_secret("default", body)
            read = secret_reader(core, "default")
            provider = SecretProvider({"secret": "course-materials", "keys": ["access_key_id"]},
                                      ("config",))  # fmt: skip
            issued = await provider.issue(Subject("bob", frozenset()), context(None, read))
            assert dict(issued.values) == {"access_key_id": "AKCOURSE"}
            with pytest.raises(IssueError) as e:
                await read("absent")
            assert (e.value.reason, e.value.message) == (
                "source_missing", "no Secret absent in namespace default",
            )  # fmt: skip
    finally:
        await cluster.stop()
