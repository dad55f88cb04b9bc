"""ProfileSpawner's credential Secret against the emulator over HTTP: one extra API request per
spawn, owned by the pod (collected with it), and no value in the pod.

No kubelet: the test marks the pod Running itself (as test_kubespawner_on_emulator does), so it
asserts on the API objects only.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from types import SimpleNamespace

import pytest
from aiohttp import web
from jupyterhub.objects import Hub, Server
from kubernetes_asyncio.client import Configuration
from kubernetes_asyncio.config import kube_config
from kubespawner import KubeSpawner
from kubespawner.clients import load_config
from test_kubespawner_on_emulator import mark_running
from traitlets.config import Config

from jupyterhub_platform.devcluster.procs import wait_for
from jupyterhub_platform.services.credentials import model
from jupyterhub_platform.spawner import ProfileSpawner
from jupyterhub_platform.spawner.credentials import (
    CredentialsRefused,
    hub_issue_context,
    put_secret,
)

POLICY = """\
groups:
  eng: {profiles: [jupyterlab], credential_sets: [alpha, beta, gamma]}
culling: {policies: {standard: {idle_timeout: 1h}}}
credential_sets:
  alpha: {provider: template, config: {values: {v: "a"}}}
  beta: {provider: template, config: {values: {v: "b"}}}
  gamma: {provider: template, config: {values: {v: "c"}}}
"""
SPAWNER_AGENT = "OpenAPI-Generator"  # kubernetes_asyncio's default, which KubeSpawner keeps


class Static(model.Provider):
    name = "static"

    @property
    def keys(self):
        return tuple(self.config)

    async def issue(self, subject, ctx):
        return model.Issued(dict(self.config), ctx.now(), ctx.now() + 3600)


def cset(name: str, **kwargs) -> model.CredentialSet:
    values = {"key": f"{name}-VALUE-{'x' * 8}", "id": f"{name}-ID-VALUE"}
    return model.CredentialSet(name, Static(values, ("credential_sets", name)), **kwargs)


SETS = (cset("alpha", env={"ALPHA_ID": "id"}), cset("beta", files=False, env={"B": "key"}),
        cset("gamma"))  # fmt: skip
VALUES = [v for s in SETS for v in s.provider.config.values()]


async def no_io(*args):
    raise AssertionError("no I/O expected")


CTX = model.IssueContext(fetch=no_io, read_secret=no_io, verify_token=no_io, now=lambda: 1000.0)


@pytest.fixture
async def spawner_factory(devcluster, monkeypatch, tmp_path):
    """ProfileSpawners wired to this emulator (KubeSpawner's process-wide state reset)."""
    monkeypatch.setattr(
        kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(devcluster.kubeconfig_path)
    )
    monkeypatch.delenv("JUPYTERHUB_PLATFORM_POLICY", raising=False)
    load_config.cache_clear()
    KubeSpawner.reflectors = {}
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)

    def make(name: str, sets=SETS, **traits) -> ProfileSpawner:
        config = Config()
        config.PlatformPolicy.policy_file = str(policy)
        config.KubeSpawner.update({"start_timeout": 20, "namespace": "default", **traits})

        async def get_auth_state():
            return {}

        user = SimpleNamespace(
            name=name, id=len(name), escaped_name=name, url=f"/user/{name}/", server=Server(),
            groups=[SimpleNamespace(name="eng")], settings={"users": {}},
            get_auth_state=get_auth_state,
        )  # fmt: skip
        spawner = ProfileSpawner(
            config=config, hub=Hub(), user=user, api_token=f"{name}-API-TOKEN-VALUE",
            oauth_client_id="unused", _mock=True,
        )  # fmt: skip
        spawner.user_options = {"profile": "jupyterlab"}
        spawner.declared_credential_sets = lambda: {s.name: s for s in sets}
        spawner.issue_context = lambda: CTX
        return spawner

    yield make
    for reflector in list(KubeSpawner.reflectors.values()):
        await reflector.stop()
    KubeSpawner.reflectors = {}
    load_config.cache_clear()
    Configuration.set_default(None)


async def counted_start(spawner, core, devcluster) -> list[tuple[str, str]]:
    """Start with the test as kubelet; the spawner's API requests (watches left out)."""
    seen = []

    def count(request):
        if request.headers.get("User-Agent", "").startswith(SPAWNER_AGENT):
            if "watch" not in request.query:
                seen.append((request.method, request.path))

    devcluster.server.on_request = count
    try:
        start = asyncio.ensure_future(spawner.start())
        await mark_running(core, spawner.pod_name)
        await asyncio.wait_for(start, 20)
    finally:
        devcluster.server.on_request = None
    return seen


async def test_three_sets_cost_one_secret_create_owned_by_the_pod(
    spawner_factory, core, devcluster, caplog
):
    caplog.set_level(logging.DEBUG)  # kubernetes_asyncio logs response bodies at debug level
    core.api_client.user_agent = "credential-injection-test"  # the test's requests: not counted
    # the first start also starts the shared reflectors (list + watch): not compared
    await counted_start(spawner_factory("warm", sets=(), api_token_in_secret=False), core,
                        devcluster)  # fmt: skip
    plain = await counted_start(
        spawner_factory("bob", sets=(), api_token_in_secret=False), core, devcluster
    )
    alice = spawner_factory("alice")
    with_sets = await counted_start(alice, core, devcluster)
    extra = list(with_sets)
    for request in plain:  # the same requests, for the other user's objects
        extra.remove(next(r for r in extra if r[0] == request[0] and
                          r[1].replace("alice", "bob") == request[1]))  # fmt: skip
    assert ("POST", "/api/v1/namespaces/default/pods") in plain
    assert extra == [("POST", "/api/v1/namespaces/default/secrets")]
    assert len(with_sets) == len(plain) + 1

    pod = await core.read_namespaced_pod(alice.pod_name, "default")
    secret = await core.read_namespaced_secret(model.secret_name(alice.pod_name), "default")
    assert [(o.kind, o.name, o.uid) for o in secret.metadata.owner_references] == [
        ("Pod", alice.pod_name, pod.metadata.uid)
    ]
    assert secret.metadata.labels["component"] == model.SECRET_COMPONENT
    assert secret.metadata.annotations[model.SETS_ANNOTATION] == "alpha,beta,gamma"
    data = {k: base64.b64decode(v).decode() for k, v in secret.data.items()}
    assert data[model.API_TOKEN_KEY] == "alice-API-TOKEN-VALUE"
    assert data["beta.key"] == SETS[1].provider.config["key"] and len(data) == 7
    spec = json.dumps(core.api_client.sanitize_for_serialization(pod))
    assert not [v for v in [*VALUES, "alice-API-TOKEN-VALUE"] if v in spec]
    assert "secretKeyRef" in spec
    assert not [v for v in [*VALUES, "alice-API-TOKEN-VALUE"] if v in caplog.text]

    await alice.stop()

    async def collected():
        names = [s.metadata.name for s in (await core.list_namespaced_secret("default")).items]
        return model.secret_name(alice.pod_name) not in names

    await wait_for(collected, timeout=5, what="the Secret to go with its pod")


async def test_a_left_over_secret_is_deleted_and_created_again(spawner_factory, core, devcluster):
    alice = spawner_factory("alice")
    name = model.secret_name(alice.pod_name)
    await core.create_namespaced_secret(
        "default", {"metadata": {"name": name}, "stringData": {"stale": "x"}}
    )
    requests = await counted_start(alice, core, devcluster)
    secrets = [r for r in requests if "/secrets" in r[1]]
    path = "/api/v1/namespaces/default/secrets"  # the hub's Role may create and delete, not update
    assert secrets == [("POST", path), ("DELETE", f"{path}/{name}"), ("POST", path)]
    pod = await core.read_namespaced_pod(alice.pod_name, "default")
    secret = await core.read_namespaced_secret(name, "default")
    assert "stale" not in secret.data and model.API_TOKEN_KEY in secret.data
    assert secret.metadata.owner_references[0].uid == pod.metadata.uid
    await alice.stop()


class Unreachable(model.Provider):
    name = "unreachable"
    keys = ("token",)

    async def issue(self, subject, ctx):
        raise model.IssueError("upstream_unavailable", "sts.example.org did not answer")


async def test_a_set_left_out_is_told_in_the_spawn_progress(spawner_factory, core, devcluster):
    broken = model.CredentialSet("beta", Unreachable({}, ("credential_sets", "beta")))
    alice = spawner_factory("alice", sets=(SETS[0], broken))
    start = asyncio.ensure_future(alice.start())
    messages = []

    async def follow():
        async for event in alice.progress():
            messages.append(event.get("message", ""))

    follower = asyncio.ensure_future(follow())
    await mark_running(core, alice.pod_name)
    await asyncio.wait_for(start, 20)
    await asyncio.wait_for(follower, 10)
    note = "Credentials: beta: not issued (upstream_unavailable): sts.example.org did not answer"
    assert note in messages
    secret = await core.read_namespaced_secret(model.secret_name(alice.pod_name), "default")
    assert secret.metadata.annotations[model.SETS_ANNOTATION] == "alpha"
    await alice.stop()


async def test_the_hubs_issue_context_reads_secrets_and_fetches(spawner_factory, core):
    spawner = spawner_factory("alice")
    await core.create_namespaced_secret(
        "default", {"metadata": {"name": "group-keys"}, "stringData": {"key": "k-VALUE"}}
    )
    ctx = hub_issue_context(spawner.api, "default", spawner.authenticator)
    assert await ctx.read_secret("group-keys") == {"key": "k-VALUE"}
    with pytest.raises(model.IssueError) as info:
        await ctx.read_secret("missing")
    assert (
        info.value.reason == "source_missing"
        and info.value.message == "no Secret missing in namespace default"
    )

    async def echo(request):
        return web.Response(status=201, body=await request.read(), headers={"X-Seen": "1"})

    app = web.Application()
    app.router.add_post("/sts", echo)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        status, headers, body = await ctx.fetch("POST", f"http://127.0.0.1:{port}/sts", {}, b"x")
        assert (status, headers["X-Seen"], body) == (201, "1", b"x")
    finally:
        await runner.cleanup()
    with pytest.raises(model.IssueError) as info:
        await ctx.fetch("POST", f"http://127.0.0.1:{port}/sts", {}, b"x")  # now closed
    assert info.value.reason == "upstream_unavailable" and f"127.0.0.1:{port}" in info.value.message
    with pytest.raises(model.IssueError) as info:  # no verifier in the hub yet: fail closed
        await ctx.verify_token("id_token", "not-checked")
    assert info.value.reason == "no_token"


async def test_a_refused_secret_is_reported_by_status_without_its_values(spawner_factory):
    spawner = spawner_factory("alice")
    manifest = {"metadata": {"name": "Not_A_Name"}, "data": {"key": "c2VjcmV0LVZBTFVF"}}
    with pytest.raises(CredentialsRefused) as info:
        await put_secret(spawner.api, "default", manifest, 5)
    assert str(info.value) == "could not create the credentials Secret Not_A_Name (HTTP 422)"
