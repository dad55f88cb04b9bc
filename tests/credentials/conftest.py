"""Fixtures of the credentials tests: a test issuer we hold the keys of, and the local STS + S3
stand-in as a process; a real hub (and proxy) with the credentials service registered, users with
groups, auth state and real tokens, and the service itself in the test's process (its providers
are the tests'); the Kubernetes emulator for the renewal loop. The hub and the emulator are a
module's (see :func:`cred_hub`); the service is each test's own."""

from __future__ import annotations

import asyncio
import secrets
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "auth"))  # the test issuer's home

from credentials_fixtures import (  # noqa: E402
    CULLING,
    SCOPES,
    Counter,
    sets_policy,
    stop_server,
    wait_for_route,
)
from oidc_test_issuer import StaticIssuer  # noqa: E402

from jupyterhub_platform.devcluster import object_store  # noqa: E402
from jupyterhub_platform.devcluster.cluster import DevCluster  # noqa: E402
from jupyterhub_platform.devcluster.procs import ProcessGroupSet, free_port  # noqa: E402
from jupyterhub_platform.profiles import bundled_profiles_dir  # noqa: E402
from jupyterhub_platform.services.credentials.app import CredentialsApp  # noqa: E402
from jupyterhub_platform.testing import start_hub  # noqa: E402

CLIENT_ID = "jupyterhub"
BUCKET = "research"
ROLE = "jupyter-research"


@pytest.fixture
def issuer():
    """The issuer, with a userinfo endpoint for the access tokens a test registers."""
    with StaticIssuer(CLIENT_ID) as issuer:
        issuer.extra_metadata["userinfo_endpoint"] = f"{issuer.issuer}/userinfo"
        yield issuer


class Store:
    """The running object store: its ready file's contents and its log."""

    def __init__(self, proc, ready: dict):
        self.proc, self.url, self.role_arn = proc, ready["url"], ready["role_arn"]
        self.bucket, self.region = ready["bucket"], ready["region"]

    def assume_requests(self) -> int:
        """How many AssumeRoleWithWebIdentity requests the store has been sent."""
        return self.proc.log_path.read_text().count(f"request: sts {object_store.ASSUME}")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("object-store")
    procs = ProcessGroupSet()
    ready_file = tmp / "ready.json"
    argv = object_store.command(free_port(), ready_file, BUCKET, ROLE)
    proc = procs.start(argv, name="object-store", log_path=tmp / "object-store.log")
    try:
        yield Store(proc, asyncio.run(object_store.wait_ready(proc, ready_file)))
    finally:
        procs.stop_all()


class HubAdmin:
    """The hub's REST API with an admin service's token."""

    def __init__(self, url: str, token: str):
        self.url, self.token = url, token

    async def call(self, method: str, path: str, body=None):
        headers = {"Authorization": f"token {self.token}"}
        async with (
            aiohttp.ClientSession() as s,
            s.request(method, f"{self.url}/hub/api{path}", headers=headers, json=body) as r,
        ):
            assert r.status < 300, f"{method} {path}: {r.status} {await r.text()}"
            return await r.json() if r.status != 204 else None

    async def user(self, name: str, groups: list[str], auth_state: dict) -> None:
        await self.call("POST", f"/users/{name}")
        for group in groups:
            await self.call("POST", f"/groups/{group}/users", {"users": [name]})
        await self.call("PATCH", f"/users/{name}", {"auth_state": auth_state})

    async def new_token(self, name: str, **body) -> dict:
        return await self.call("POST", f"/users/{name}/tokens", {"note": "test", **body})


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def shared_cred_hub(tmp_path_factory):
    """One hub for a module's tests (starting one is most of a test's time); :func:`cred_hub`
    gives each test a hub without users."""
    admin_token, service_token, port = secrets.token_hex(16), secrets.token_hex(16), free_port()
    directory = tmp_path_factory.mktemp("hub")

    def settings(url: str) -> dict:
        return {
            "JupyterHub": {
                "authenticator_class": "dummy",
                "services": [
                    {"name": "tests", "api_token": admin_token},
                    {
                        "name": "credentials",
                        "api_token": service_token,
                        "url": f"http://127.0.0.1:{port}",
                    },
                ],  # fmt: skip
                "load_roles": [
                    {"name": "admin", "services": ["tests"]},
                    {"name": "credentials", "scopes": SCOPES, "services": ["credentials"]},
                ],
                "load_groups": {"team-a": {"users": []}, "team-b": {"users": []}},
            },
            "Authenticator": {"enable_auth_state": True},
        }

    hub = await start_hub(directory, settings)
    try:
        yield hub, HubAdmin(hub.url, admin_token), service_token, port
    finally:
        await hub.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def cred_hub(shared_cred_hub):
    """``(hub, admin, service_token, service_port)``: groups team-a and team-b exist, empty, and
    the hub has no users; the users a test makes (their tokens, auth state and group
    memberships with them) are deleted after it."""
    admin = shared_cred_hub[1]
    users = await admin.call("GET", "/users")
    assert users == [], f"users left on the shared hub: {[u['name'] for u in users]}"
    groups = {g["name"]: g["users"] for g in await admin.call("GET", "/groups")}
    assert groups == {"team-a": [], "team-b": []}, groups
    try:
        yield shared_cred_hub
    finally:
        for user in await admin.call("GET", "/users"):
            await admin.call("DELETE", f"/users/{user['name']}")


@pytest.fixture
def policy_file(tmp_path, monkeypatch):
    """A policy file the service loads at start (the sets themselves come from
    :func:`sets_policy`: the tests' providers)."""
    (tmp_path / "profiles").mkdir()
    shutil.copy(bundled_profiles_dir() / "jupyterlab.yaml", tmp_path / "profiles")
    monkeypatch.setenv("JUPYTERHUB_PLATFORM_PROFILES", str(tmp_path / "profiles"))
    path = tmp_path / "policy.yaml"
    path.write_text(CULLING + "groups: {team-a: {}, team-b: {}}\n")
    return path


@pytest_asyncio.fixture(loop_scope="session")
async def service(cred_hub, policy_file, tmp_path):
    """The credentials service, serving behind the hub's proxy; ``.counter``: its provider."""
    hub, admin, token, port = cred_hub
    app = CredentialsApp()
    app.initialize([
        f"--CredentialsApp.api_token={token}", f"--CredentialsApp.api_url={hub.url}/hub/api",
        f"--PolicySource.policy_file={policy_file}", "--CredentialsApp.service_prefix=/services/credentials/",
        f"--KubeSource.kubeconfig={tmp_path / 'kubeconfig.yaml'}", "--KubeSource.namespace=default",
    ])  # fmt: skip
    counter = Counter()
    base = app.service.policy
    app.use_policy(replace(sets_policy(counter), source=base.source))
    server = app.make_web_app().listen(port, "127.0.0.1")
    app.counter, app.hub, app.admin = counter, hub, admin
    app.url = f"{hub.url}/services/credentials/"
    try:
        await wait_for_route(app.url + "health")
        yield app
    finally:
        await stop_server(server)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def devcluster(tmp_path_factory):
    """The emulator, shared by a module's tests (each uses Secrets of its own names)."""
    cluster = DevCluster(tmp_path_factory.mktemp("emulator") / "devcluster", kubelet="none")
    await cluster.start()
    try:
        yield cluster
    finally:
        await cluster.stop()
