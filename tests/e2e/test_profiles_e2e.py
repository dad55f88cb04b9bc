"""ProfileSpawner on the local platform: entitled spawns, 403s and 400s before any pod exists.

The platform runs the shipped chart values with ``spawner_class: profiles``, the shipped
profiles plus one extra profile that only platform admins may use. Demo users (devcluster/idp.py):
alice is in ``researchers``; bob in ``platform-admins`` and ``researchers``.
"""

from __future__ import annotations

import json
import tempfile
import textwrap

import pytest
import pytest_asyncio
from hub_user import ARTIFACTS, HubUser, user_pods
from kubernetes_asyncio import client as k8s_client
from kubernetes_asyncio import config as k8s_config

from jupyterhub_platform.devcluster.platform import LocalPlatform
from jupyterhub_platform.devcluster.procs import wait_for
from jupyterhub_platform.profiles.catalogue import bundled_profiles_dir

pytestmark = [pytest.mark.jh6_only, pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]

ADMINS_ONLY = """\
slug: admins-only
display_name: Admins only
kind: jupyterlab
allowed_groups: [platform-admins]
image: quay.io/jupyter/minimal-notebook:2025-01-06
resources:
  choices:
    small: {cpu: {request: 0.5, limit: 1}, memory: {request: 1Gi, limit: 1Gi}}
"""

# Open to everyone, with one size only platform admins may pick: the choice-level 403. (The
# shipped policy grants researchers every shipped choice, ml-gpu included.)
RESTRICTED_SIZE = """\
slug: shared-lab
display_name: Shared lab
kind: jupyterlab
image: quay.io/jupyter/minimal-notebook:2025-01-06
resources:
  choices:
    small: {cpu: {request: 0.5, limit: 1}, memory: {request: 1Gi, limit: 1Gi}}
    big:
      cpu: {request: 2, limit: 2}
      memory: {request: 4Gi, limit: 4Gi}
      allowed_groups: [platform-admins]
"""


SIDECAR_PROFILE = """\
slug: {slug}
display_name: {slug}
kind: desktop
image: quay.io/jupyter/minimal-notebook:2025-01-06
resources:
  choices:
    small: {{cpu: {{request: 0.5, limit: 1}}, memory: {{request: 1Gi, limit: 1Gi}}}}
sidecars:
  - name: helper
    image: ghcr.io/example/helper:1
    command: {command}
    resources: {{cpu: {{request: 100m, limit: 100m}}, memory: {{request: 64Mi, limit: 64Mi}}}}
    readiness: {{tcp_port: 9}}
"""
SIDECAR_READY_TIMEOUT = 3

# The server's own container exits at once: KubeSpawner alone would wait for the start timeout.
CRASHING_SERVER = """\
slug: crashing-server
display_name: Crashing server
kind: custom
image: quay.io/jupyter/minimal-notebook:2025-01-06
command: ["false"]
resources:
  choices:
    small: {cpu: {request: 0.5, limit: 1}, memory: {request: 1Gi, limit: 1Gi}}
"""


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def profile_platform(z2jh_chart):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    state_dir = tempfile.mkdtemp(prefix="profiles-", dir=ARTIFACTS)
    extra = ARTIFACTS / f"{state_dir}-extra-profiles"
    extra.mkdir()
    (extra / "admins-only.yaml").write_text(textwrap.dedent(ADMINS_ONLY))
    (extra / "shared-lab.yaml").write_text(RESTRICTED_SIZE)
    (extra / "crashing-server.yaml").write_text(CRASHING_SERVER)
    for slug, command in (("crashing-sidecar", ["false"]), ("unready-sidecar", ["sleep", "300"])):
        (extra / f"{slug}.yaml").write_text(SIDECAR_PROFILE.format(slug=slug, command=command))
    hub_config = {
        # The shipped values' 5 s let a refusal (400/403) reach the REST client; 30 s let a failed
        # start reach it too, even on a loaded machine where the spawn could otherwise end before
        # a client opens its progress stream.
        "JupyterHub": {"tornado_settings": {"slow_spawn_timeout": 30}},
        "ProfileSpawner": {
            "profile_directories": [str(bundled_profiles_dir()), str(extra)],
            "sidecar_ready_timeout": SIDECAR_READY_TIMEOUT,
        },
    }
    print(f"\nlocal platform (profiles) state and logs: {state_dir}")
    extra_values = {"hub": {"config": hub_config}}
    async with LocalPlatform(state_dir, chart=z2jh_chart, extra_values=extra_values) as running:
        yield running


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def k8s(profile_platform):
    configuration = k8s_client.Configuration()
    await k8s_config.load_kube_config(
        config_file=str(profile_platform.cluster.kubeconfig_path),
        client_configuration=configuration,
    )
    async with k8s_client.ApiClient(configuration) as api:
        yield k8s_client.CoreV1Api(api)


@pytest_asyncio.fixture(loop_scope="session")
async def user(profile_platform):
    users: list[HubUser] = []

    async def login(name: str) -> HubUser:
        hub_user = HubUser(profile_platform.hub_url, name)
        users.append(hub_user)
        assert await hub_user.login() == 302
        return hub_user

    yield login
    for hub_user in users:
        if "" in (await hub_user.model()).get("servers", {}):
            await hub_user.stop()
        await hub_user.close()


async def spawn_status(user: HubUser, options: dict) -> tuple[int, str]:
    resp = await user.api("POST", f"/users/{user.name}/server", json=options)
    body = await resp.json() if resp.content_type == "application/json" else {}
    return resp.status, body.get("message", "")


async def test_entitled_user_gets_the_profile_they_chose(user, k8s):
    alice = await user("alice")
    options = {"profile": "jupyterlab", "image": "scipy", "size": "standard"}
    status, message = await spawn_status(alice, options)
    assert status in (201, 202), message
    await alice.wait_ready()
    (pod,) = await user_pods(k8s, "alice")
    notebook = next(c for c in pod.spec.containers if c.name == "notebook")
    assert notebook.image == "quay.io/jupyter/scipy-notebook:2025-01-06"
    assert float(notebook.resources.limits["cpu"]) == 2
    assert int(notebook.resources.limits["memory"]) == 8 * 2**30
    assert pod.metadata.labels["jupyterhub-platform/profile"] == "jupyterlab"
    assert notebook.security_context.allow_privilege_escalation is False


@pytest.mark.parametrize(
    "options, status, words",
    [
        ({"profile": "admins-only"}, 403, "not allowed to use profile 'admins-only'"),
        ({"profile": "shared-lab", "size": "big"}, 403, "not allowed to use size 'big'"),
        ({"image--unlisted-choice": "evil/img:1"}, 400, "is not an image this profile allows"),
        ({"profile": "jupyterlab", "size": "huge"}, 400, "has no size 'huge'"),
    ],
)
async def test_refused_requests_create_no_pod(user, k8s, options, status, words):
    alice = await user("alice")
    got, message = await spawn_status(alice, options)
    assert (got, words in message) == (status, True), message
    assert await user_pods(k8s, "alice") == []
    assert "" not in (await alice.model()).get("servers", {})


# More refusals than the chart's consecutive_failure_limit (5): none may count as a spawn failure.
MALFORMED = [
    ({"x": "y"}, 400, "Unknown option 'x'"),
    (
        [1, 2],
        400,
        "object",
    ),  # "user_options must be an object" (5.5), "Body must be a JSON object" (6.x)
    ("a string", 400, "object"),
    ({"profile": "no-such-profile"}, 400, "there is no profile 'no-such-profile'"),
    ({"profile": "admins-only"}, 403, "not allowed to use profile 'admins-only'"),
    ({"profile": "shared-lab", "size": "big"}, 403, "not allowed to use size 'big'"),
    ({"profile": ["jupyterlab"]}, 400, "must be a non-empty string"),
]


async def test_refused_rest_spawns_never_count_as_spawn_failures(user, k8s, profile_platform):
    alice = await user("alice")
    hub_log = profile_platform.logs_dir / "hub.log"
    before = hub_log.stat().st_size
    for body, status, words in MALFORMED:
        resp = await alice.api("POST", "/users/alice/server", json=body)
        message = (await resp.json()).get("message", "")
        assert (resp.status, words in message) == (status, True), (
            f"{body!r}: {resp.status} {message}"
        )
    log = hub_log.read_bytes()[before:].decode(errors="replace")
    assert "consecutive spawns failed" not in log and "Aborting due to" not in log
    assert "Error starting alice's server" not in log  # refused before any spawn began
    assert profile_platform.exited() is None
    assert await user_pods(k8s, "alice") == []

    await alice.spawn({"profile": "jupyterlab", "size": "standard"})
    await alice.wait_ready()


async def test_the_spawn_form_refuses_with_403_and_shows_the_reason(user, k8s):
    alice = await user("alice")
    url = f"{alice.hub_url}/hub/spawn/alice"
    async with alice.session.get(url) as resp:
        page = await resp.text()
    assert resp.status == 200 and 'name="profile"' in page
    assert "admins-only" not in page and "quay.io" not in page
    data = {"profile": "admins-only", "_xsrf": alice.xsrf_token(url)}
    async with alice.session.post(url, data=data) as resp:
        page = await resp.text()
    assert resp.status == 403
    assert "not allowed to use profile" in page
    assert await user_pods(k8s, "alice") == []


async def test_admin_group_member_may_use_the_restricted_profile(user, k8s):
    bob = await user("bob")
    status, message = await spawn_status(bob, {"profile": "admins-only"})
    assert status in (201, 202), message
    await bob.wait_ready()

    async def labelled() -> bool:
        pods = await user_pods(k8s, "bob")
        return (
            bool(pods) and pods[0].metadata.labels["jupyterhub-platform/profile"] == "admins-only"
        )

    await wait_for(labelled, timeout=10, interval=0.25, what="bob's admins-only pod")


async def spawn_failure(user: HubUser) -> str:
    """The message of the spawn's "failed" progress event."""
    url = f"{user.hub_url}/hub/api/users/{user.name}/server/progress"
    async with user.session.get(url) as resp:
        assert resp.status == 200
        async for line in resp.content:
            if line.startswith(b"data:"):
                event = json.loads(line[5:])
                if event.get("failed"):
                    return event["message"]
    raise AssertionError("the spawn did not fail")


@pytest.mark.parametrize(
    "slug, words",
    [
        ("crashing-sidecar", "sidecar container 'helper' exited"),
        ("crashing-server", "the server's container 'notebook' exited"),
        (
            "unready-sidecar",
            f"'helper' did not become ready within {SIDECAR_READY_TIMEOUT} seconds",
        ),
    ],
)
async def test_a_failing_container_fails_the_spawn_naming_it(user, k8s, slug, words):
    alice = await user("alice")
    status, message = await spawn_status(alice, {"profile": slug})
    if status in (201, 202):  # still starting when slow_spawn_timeout passed
        message = await spawn_failure(alice)
    else:
        assert status == 500
    assert words in message, message

    async def cleaned_up() -> bool:
        return not await user_pods(k8s, "alice") and "" not in (await alice.model())["servers"]

    await wait_for(cleaned_up, timeout=30, interval=0.25, what="the failed server's pod to go")


async def test_the_spawn_form_starts_the_chosen_profile(user, k8s):
    alice = await user("alice")
    await alice.spawn_via_form({"profile": "vscode", "profile-option-vscode--size": "highmem"})
    await alice.wait_ready()
    (pod,) = await user_pods(k8s, "alice")
    assert pod.metadata.labels["jupyterhub-platform/kind"] == "vscode"
    notebook = next(c for c in pod.spec.containers if c.name == "notebook")
    assert int(notebook.resources.limits["memory"]) == 16 * 2**30
    env = {e.name: e.value for e in notebook.env}
    assert env["JUPYTERHUB_DEFAULT_URL"] == "/vscode/"
