"""ProfileSpawner on KubeSpawner's real machinery: validation, pod manifests, hygiene, sidecars.

The spawner is built like kubespawner's own tests build KubeSpawner (``_mock=True``, a fake
user); nothing here talks to Kubernetes. Manifests come from KubeSpawner's get_pod_manifest()
and are checked with kubernetes-validate (strict, Kubernetes 1.30).
"""

from __future__ import annotations

import asyncio
import json
import textwrap
from pathlib import Path
from types import SimpleNamespace

import kubernetes_validate
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from kubernetes_asyncio.client import ApiClient, V1Container
from kubernetes_asyncio.config import kube_config
from tornado import web
from traitlets.config import Config

from jupyterhub_platform.profiles.catalogue import bundled_profiles_dir, load_catalogue
from jupyterhub_platform.profiles.kubespawner import ANNOTATION_START
from jupyterhub_platform.profiles.options import KNOWN_KEYS, OptionError
from jupyterhub_platform.services.credentials.secret_manifest import VOLUME_NAME
from jupyterhub_platform.spawner import ProfileSpawner, StartFailed, check_configuration
from jupyterhub_platform.spawner.sidecars import exited_sidecar, startup_failure

CREDENTIALS = VOLUME_NAME  # every server mounts its credentials Secret (api_token_in_secret)

KUBERNETES_VERSION = "1.30"
SHIPPED = load_catalogue([bundled_profiles_dir()])
ALL_GROUPS = ["gpu-users", "platform-admins", "researchers"]

KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters: [{name: unused, cluster: {server: "http://127.0.0.1:9"}}]
users: [{name: unused, user: {}}]
contexts: [{name: unused, context: {cluster: unused, user: unused}}]
current-context: unused
"""


@pytest.fixture(scope="module", autouse=True)
def kube_client_config(tmp_path_factory):
    """KubeSpawner loads a client config on construction; give it one that is never used."""
    path = tmp_path_factory.mktemp("kube") / "config"
    path.write_text(KUBECONFIG)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(path))
        patch.delenv("JUPYTERHUB_PLATFORM_POLICY", raising=False)
        yield


def fake_user(name="alice", groups=()):
    return SimpleNamespace(
        name=name,
        id=1,
        url=f"/user/{name}/",
        escaped_name=name,
        groups=[SimpleNamespace(name=g) for g in groups],
        settings={"users": {}},  # JupyterHub's tornado settings, holding its users
    )


def make_spawner(groups=(), config=None, profile_dir=None, **kwargs) -> ProfileSpawner:
    config = Config(config or {})
    if profile_dir is not None:
        config.ProfileSpawner.profile_directories = [str(profile_dir)]
    return ProfileSpawner(_mock=True, user=fake_user(groups=groups), config=config, **kwargs)


async def manifest(spawner: ProfileSpawner, user_options: dict) -> dict:
    spawner.user_options = user_options
    await spawner.load_user_options()
    pod = await spawner.get_pod_manifest()
    async with ApiClient() as api:
        return api.sanitize_for_serialization(pod)


def container(pod: dict, name: str = "notebook") -> dict:
    return next(c for c in pod["spec"]["containers"] if c["name"] == name)


def env(pod: dict) -> dict:
    return {e["name"]: e.get("value") for e in container(pod)["env"]}


def assert_hygienic(pod: dict) -> None:
    kubernetes_validate.validate(pod, KUBERNETES_VERSION, strict=True)
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    for c in pod["spec"]["containers"] + pod["spec"].get("initContainers", []):
        sc = c["securityContext"]
        assert sc["runAsNonRoot"] is True and sc["runAsUser"] == 1000
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"] == {"drop": ["ALL"]}
        assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(c["resources"][kind]), (c["name"], kind)
    mounts = {m["mountPath"]: m["name"] for m in container(pod)["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    home = volumes[mounts["/home/jovyan"]]
    assert home["persistentVolumeClaim"]["claimName"] == "claim-alice"


def shipped_requests():
    for profile in SHIPPED.profiles:
        for image in profile.images:
            for size in profile.sizes:
                yield profile, {"profile": profile.slug, "image": image.key, "size": size.key}


# -- pods ------------------------------------------------------------------------------------
async def test_every_shipped_profile_and_choice_builds_a_valid_hygienic_pod():
    spawner = make_spawner(ALL_GROUPS)  # one spawner, re-used like JupyterHub re-uses them
    for profile, options in shipped_requests():
        pod = await manifest(spawner, options)
        assert_hygienic(pod)
        labels = pod["metadata"]["labels"]
        assert labels["jupyterhub-platform/profile"] == profile.slug
        assert labels["jupyterhub-platform/kind"] == profile.kind
        image = next(c.image for c in profile.images if c.key == options["image"])
        assert container(pod)["image"] == image
        size = next(s for s in profile.sizes if s.key == options["size"])
        limits = container(pod)["resources"]["limits"]
        assert float(limits["cpu"]) == size.resources.cpu_limit
        assert int(limits["memory"]) == size.resources.mem_limit
        if size.gpu:
            assert limits["nvidia.com/gpu"] == "1"
            assert pod["spec"]["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
        else:
            assert "nvidia.com/gpu" not in limits
            assert pod["spec"].get("tolerations", []) == [dict(t) for t in profile.tolerations]


async def test_kinds_set_their_entry_point():
    spawner = make_spawner()
    assert (
        env(await manifest(spawner, {"profile": "vscode"}))["JUPYTERHUB_DEFAULT_URL"] == "/vscode/"
    )
    assert (
        env(await manifest(spawner, {"profile": "desktop"}))["JUPYTERHUB_DEFAULT_URL"]
        == "/desktop/"
    )
    pod = await manifest(spawner, {"profile": "streamlit"})
    assert env(pod)["JUPYTERHUB_DEFAULT_URL"] == "/streamlit/"
    assert env(pod)["JUPYTER_CONFIG_PATH"].endswith("/streamlit-config")
    pod = await manifest(spawner, {"profile": "jupyterlab"})
    assert env(pod)["JUPYTERHUB_DEFAULT_URL"] == "/lab"


def test_the_workspace_files_the_profiles_name_exist():
    """The profiles name paths the workspace image installs from images/workspace/."""
    workspace = Path(__file__).resolve().parents[2] / "images" / "workspace"
    installed = {"/usr/local/bin": workspace / "bin", "/usr/local/share": workspace / "share"}

    def source(path: str) -> Path:
        prefix = next(p for p in installed if path.startswith(p + "/"))
        return installed[prefix] / path[len(prefix) + 1 :]

    env_of = {p.slug: dict(p.env) for p in SHIPPED.profiles}
    config_dir = source(env_of["streamlit"]["JUPYTER_CONFIG_PATH"])
    config = json.loads((config_dir / "jupyter_server_config.json").read_text())
    command = config["ServerProxy"]["servers"]["streamlit"]["command"]
    assert (workspace / "bin" / command[0]).is_file() and "--server.port={port}" in command
    assert source(env_of["desktop"]["JUPYTER_REMOTE_DESKTOP_PROXY_XSTARTUP"]).is_file()
    assert (workspace / "share/jupyterhub-platform/streamlit-demo/app.py").is_file()


async def test_custom_image_only_for_entitled_users_and_full_match():
    researcher = make_spawner(["researchers"])
    image = "quay.io/jupyter/r-notebook:2025-01-06"
    pod = await manifest(researcher, {"profile": "jupyterlab", "image--unlisted-choice": image})
    assert container(pod)["image"] == image
    with pytest.raises(OptionError) as info:
        await manifest(researcher, {"image--unlisted-choice": image + "@sha256:evil"})
    assert info.value.status_code == 400


async def test_a_reused_spawner_forgets_the_previous_profile():
    spawner = make_spawner(["gpu-users"])
    gpu = await manifest(spawner, {"profile": "jupyterlab", "size": "ml-gpu"})
    assert gpu["spec"]["tolerations"] and "nvidia.com/gpu" in container(gpu)["resources"]["limits"]
    plain = await manifest(spawner, {"profile": "vscode"})
    assert not plain["spec"].get("tolerations") and not plain["spec"].get("nodeSelector")
    assert "nvidia.com/gpu" not in container(plain)["resources"]["limits"]
    assert "JUPYTERHUB_PLATFORM_SHARED_DATA" not in env(plain)
    assert [v["name"] for v in plain["spec"]["volumes"]] == ["home", CREDENTIALS]


async def test_chart_settings_keep_applying():
    """z2jh turns singleuser.* into c.KubeSpawner.*; profiles add to them, never drop them."""
    config = Config()
    config.KubeSpawner.environment = {"FROM_CHART": "yes"}
    config.KubeSpawner.node_selector = {"pool": "users"}
    config.KubeSpawner.volumes = [
        {"name": "volume-{user_server}", "persistentVolumeClaim": {"claimName": "{pvc_name}"}}
    ]
    config.KubeSpawner.volume_mounts = [
        {"name": "volume-{user_server}", "mountPath": "/home/jovyan"}
    ]
    config.KubeSpawner.extra_containers = [
        {
            "name": "chart-extra",
            "image": "busybox:1",
            "resources": {"requests": {"cpu": "10m", "memory": "8Mi"}, "limits": {"cpu": "10m", "memory": "8Mi"}},
            "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "allowPrivilegeEscalation": False,
                                "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}},
        }
    ]  # fmt: skip
    config.KubeSpawner.pvc_name_template = "claim-{user_server}"
    spawner = make_spawner(["gpu-users"], config)
    pod = await manifest(spawner, {"profile": "jupyterlab", "size": "ml-gpu"})
    assert_hygienic(pod)
    assert env(pod)["FROM_CHART"] == "yes" and "JUPYTERHUB_PLATFORM_SHARED_DATA" in env(pod)
    assert pod["spec"]["nodeSelector"] == {"pool": "users", "nvidia.com/gpu.present": "true"}
    assert [v["name"] for v in pod["spec"]["volumes"]] == [
        "volume-alice",
        "shared-data",
        CREDENTIALS,
    ]
    assert [c["name"] for c in pod["spec"]["containers"]] == ["notebook", "chart-extra"]


async def test_hygiene_defaults_can_be_overridden():
    config = Config()
    config.KubeSpawner.uid = 2000
    config.KubeSpawner.container_security_context = {"readOnlyRootFilesystem": True}
    pod = await manifest(make_spawner(config=config), {})
    assert container(pod)["securityContext"] == {
        "runAsUser": 2000,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
    }


def test_profile_list_from_chart_is_refused():
    config = Config()
    config.KubeSpawner.profile_list = [{"display_name": "x"}]

    async def build():
        return make_spawner(config=config)

    with pytest.raises(ValueError, match="singleuser.profileList"):
        asyncio.run(build())


async def test_the_charts_empty_profile_list_is_accepted():
    """The stock chart always sets c.KubeSpawner.profile_list from singleuser.profileList: []."""
    config = Config()
    config.KubeSpawner.profile_list = []
    spawner = make_spawner(["researchers"], config)
    assert {e["slug"] for e in spawner.entitled_profile_list()} >= {"jupyterlab"}
    assert spawner.profile_list == ProfileSpawner.entitled_profile_list
    assert_hygienic(await manifest(spawner, {"profile": "jupyterlab"}))


async def test_the_charts_mapping_form_of_volumes_keeps_home_for_profiles_and_sidecars(sidecar_dir):
    """The stock chart writes volumes and mounts as mappings (name -> entry), not lists."""
    config = Config()
    home = "volume-{user_server}"
    config.KubeSpawner.volumes = {
        home: {"name": home, "persistentVolumeClaim": {"claimName": "{pvc_name}"}}
    }
    config.KubeSpawner.volume_mounts = {
        home: {"mountPath": "/home/jovyan", "name": home, "subPath": None}
    }
    config.KubeSpawner.profile_list = []
    config.ProfileSpawner.profile_directories = [str(bundled_profiles_dir()), str(sidecar_dir)]
    spawner = make_spawner(["gpu-users"], config)
    lab = await manifest(spawner, {"profile": "jupyterlab", "size": "ml-gpu"})
    assert_hygienic(lab)
    assert sorted(v["name"] for v in lab["spec"]["volumes"]) == [
        CREDENTIALS,
        "shared-data",
        "volume-alice",
    ]
    desktop = await manifest(spawner, {"profile": "with-sidecar"})  # the same, re-used spawner
    assert_hygienic(desktop)
    assert [v["name"] for v in desktop["spec"]["volumes"]] == [CREDENTIALS, "volume-alice"]
    vnc_mounts = container(desktop, "vnc")["volumeMounts"]
    assert vnc_mounts == [{"name": "volume-alice", "mountPath": "/home/jovyan"}]


# -- refusals ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "groups, user_options, status",
    [
        ([], {"profile": "jupyterlab", "size": "ml-gpu"}, 403),
        ([], {"image--unlisted-choice": "evil/img:1"}, 403),  # kubespawner 7.1's bypass
        (["researchers"], {"image--unlisted-choice": "evil/img:1"}, 400),
        ([], {"profile": "jupyterlab", "size": "nope"}, 400),  # a KeyError (500) upstream
        ([], {"profile": "jupyterlab", "image": "minimal", "cpu_limit": 64}, 400),
    ],
)
async def test_refusals_reach_jupyterhub_as_http_errors_before_start(groups, user_options, status):
    spawner = make_spawner(groups)
    # JupyterHub's own hook runner, called before start(): HTTPErrors pass through unchanged.
    with pytest.raises(web.HTTPError) as info:
        await spawner._run_apply_user_options(user_options)
    assert info.value.status_code == status and info.value.jupyterhub_message
    # start() refuses too, before any Kubernetes request (no reflector was started).
    spawner.user_options = user_options
    with pytest.raises(OptionError):
        await spawner.start()
    assert spawner.pod_reflector is None


async def test_policy_file_decides_when_configured(tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "groups:\n  eng:\n    profiles: [jupyterlab, jupyterlab/size/ml-gpu]\n"
        "  students:\n    profiles: []\n"
        "culling: {policies: {standard: {idle_timeout: 1h}}}\n"  # the shipped profiles name it
    )
    config = Config()
    config.PlatformPolicy.policy_file = str(policy)
    eng = make_spawner(["eng"], config)
    pod = await manifest(eng, {"profile": "jupyterlab", "size": "ml-gpu"})
    assert container(pod)["resources"]["limits"]["nvidia.com/gpu"] == "1"
    with pytest.raises(OptionError) as info:
        await manifest(make_spawner(["students"], config), {"size": "ml-gpu"})
    assert info.value.status_code == 403
    with pytest.raises(OptionError) as info:
        await manifest(make_spawner(["stranger"], config), {})
    assert info.value.status_code == 403


@pytest.fixture(scope="module")
def loop():
    loop = asyncio.new_event_loop()
    yield loop
    tasks = asyncio.all_tasks(loop)
    for task in tasks:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
    loop.close()


@pytest.fixture(scope="module")
def reused_spawner(loop, kube_client_config):
    async def build():
        return make_spawner()

    return loop.run_until_complete(build())


option_values = st.one_of(
    st.sampled_from(
        [p.slug for p in SHIPPED.profiles]
        + ["minimal", "scipy", "workspace", "default", "custom", "standard", "highmem", "ml-gpu"]
        + ["quay.io/jupyter/r-notebook:2025-01-06", "evil/img:1", "quay.io/jupyter/x:2025-01-01x"]
    ),
    st.text(max_size=20),
    st.integers(),
    st.none(),
    st.booleans(),
    st.lists(st.text(max_size=3), max_size=2),
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    options=st.dictionaries(
        st.one_of(st.sampled_from(KNOWN_KEYS + ("image_spec", "cmd")), st.text(max_size=10)),
        option_values,
        max_size=4,
    ),
    groups=st.sets(st.sampled_from(ALL_GROUPS + ["other"])),
)
@example(options={}, groups=set())
@example(
    options={
        "profile": "jupyterlab",
        "image--unlisted-choice": "quay.io/jupyter/r-notebook:2025-01-06",
    },
    groups={"researchers"},
)
@example(options={"size": "ml-gpu"}, groups={"gpu-users"})
def test_no_input_yields_an_error_or_an_unentitled_pod(loop, reused_spawner, options, groups):
    spawner = reused_spawner
    spawner.user.groups = [SimpleNamespace(name=g) for g in groups]
    try:
        pod = loop.run_until_complete(manifest(spawner, options))
    except OptionError as e:
        assert e.status_code in (400, 403)
        return
    slug = pod["metadata"]["labels"]["jupyterhub-platform/profile"]
    profile = SHIPPED.get(slug)
    assert profile.allowed_groups is None or profile.allowed_groups & groups
    image = container(pod)["image"]
    listed = {c.image: c for c in profile.images}
    if image in listed:
        choice = listed[image]
        assert choice.allowed_groups is None or choice.allowed_groups & groups
    else:
        assert profile.custom_image.accepts(image)
        assert profile.custom_image.allowed_groups & groups
    limits = container(pod)["resources"]["limits"]
    size = next(s for s in profile.sizes if s.resources.mem_limit == int(limits["memory"]))
    assert size.allowed_groups is None or size.allowed_groups & groups


# -- form --------------------------------------------------------------------------------------
async def test_jupyterhub_gets_the_form_and_parses_it():
    spawner = make_spawner(["researchers"])
    spawner.user_options = {"profile": "jupyterlab", "image": "scipy", "size": "highmem"}
    html = await spawner.get_options_form()
    assert 'value="scipy" selected' in html and 'value="highmem" selected' in html
    assert "quay.io" not in html and "ghcr.io" not in html and "shared-data" not in html
    options = spawner.run_options_from_form(
        {"profile": ["vscode"], "profile-option-vscode--size": ["highmem"]}
    )
    assert options == {"profile": "vscode", "image": "default", "size": "highmem"}
    # checked right away: JupyterHub's form handler turns this into a 403 page, before spawning
    with pytest.raises(OptionError) as info:
        spawner.run_options_from_form(
            {"profile": ["jupyterlab"], "profile-option-jupyterlab--size": ["ml-gpu"]}
        )
    assert info.value.status_code == 403


async def test_stale_last_choices_fall_back_to_defaults_on_the_form():
    spawner = make_spawner([])
    spawner.user_options = {"profile": "jupyterlab", "size": "ml-gpu"}  # no longer allowed
    html = await spawner.get_options_form()
    assert 'id="profile-jupyterlab" value="jupyterlab"' in html and "ml-gpu" not in html


CUSTOM_COMMAND_PROFILE = """\
slug: voila
display_name: Voila dashboard
kind: custom
default_url: /voila/
image: quay.io/jupyter/minimal-notebook:2025-01-06
resources:
  choices:
    small: {cpu: {request: 0.5, limit: 1}, memory: {request: 1Gi, limit: 2Gi}}
command: [jupyter-standaloneproxy, "--base-url={base_url}", --, voila, "--port={port}"]
"""


async def test_a_profile_command_gets_the_server_url_prefix(tmp_path):
    (tmp_path / "voila.yaml").write_text(CUSTOM_COMMAND_PROFILE)
    pod = await manifest(make_spawner(profile_dir=tmp_path), {})
    notebook = container(pod)
    argv = (notebook.get("command") or []) + (notebook.get("args") or [])
    assert argv == [
        "jupyter-standaloneproxy", "--base-url=/user/alice/", "--", "voila", "--port={port}"
    ]  # fmt: skip
    assert env(pod)["JUPYTERHUB_DEFAULT_URL"] == "/voila/"


# -- sidecars ----------------------------------------------------------------------------------
SIDECAR_PROFILE = """\
slug: with-sidecar
display_name: With a sidecar
kind: desktop
image: quay.io/jupyter/minimal-notebook:2025-01-06
resources:
  choices:
    small: {cpu: {request: 0.5, limit: 1}, memory: {request: 1Gi, limit: 2Gi}}
sidecars:
  - name: vnc
    image: ghcr.io/example/novnc:1
    command: [novnc-start, "--user={username}", "--literal={{x}}"]
    env: {VNC_PORT: "5901"}
    ports: [6080]
    resources:
      cpu: {request: 100m, limit: 500m}
      memory: {request: 128Mi, limit: 256Mi}
    readiness: {tcp_port: 6080}
"""


@pytest.fixture
def sidecar_dir(tmp_path):
    (tmp_path / "sidecar.yaml").write_text(textwrap.dedent(SIDECAR_PROFILE))
    return tmp_path


async def test_sidecars_share_home_and_follow_pod_hygiene(sidecar_dir):
    pod = await manifest(make_spawner(profile_dir=sidecar_dir), {})
    assert_hygienic(pod)
    vnc = container(pod, "vnc")
    assert vnc["volumeMounts"] == [{"name": "home", "mountPath": "/home/jovyan"}]
    assert vnc["readinessProbe"]["tcpSocket"] == {"port": 6080}
    assert vnc["resources"]["limits"] == {"cpu": "500m", "memory": str(256 * 2**20)}
    assert vnc["env"] == [{"name": "VNC_PORT", "value": "5901"}]
    assert vnc["command"] == ["novnc-start", "--user=alice", "--literal={x}"]  # KubeSpawner expands


async def test_the_desktop_apps_gui_sidecar_is_a_native_sidecar_sharing_the_x_socket():
    pod = await manifest(make_spawner(), {"profile": "desktop-apps"})
    assert_hygienic(pod)
    x11 = {"name": "x11-unix", "mountPath": "/tmp/.X11-unix", "readOnly": False}
    assert x11 in container(pod)["volumeMounts"]
    assert {"name": "x11-unix", "emptyDir": {}} in pod["spec"]["volumes"]
    (clock,) = pod["spec"]["initContainers"]  # no chart init containers in this config
    assert clock["name"] == "clock" and clock["restartPolicy"] == "Always"
    assert clock["volumeMounts"] == [{"name": "home", "mountPath": "/home/jovyan"}, x11]
    assert {e["name"]: e["value"] for e in clock["env"]} == {
        "DISPLAY": ":1", "XAUTHORITY": "/home/jovyan/.Xauthority"
    }  # fmt: skip
    assert clock["resources"]["limits"] == {"cpu": "500m", "memory": str(256 * 2**20)}
    assert pod["spec"]["nodeSelector"] == {"jupyterhub-platform/node-group": "gui"}
    assert [c["name"] for c in pod["spec"]["containers"]] == ["notebook"]


async def test_sidecar_kinds_go_to_their_traits_after_the_charts_own(tmp_path):
    (tmp_path / "two.yaml").write_text(SIDECAR_PROFILE.replace("    readiness: {tcp_port: 6080}\n", (
        "    on_exit: stop_server\n"
        "  - {name: app, image: x:1, on_exit: restart, volumes: [scratch], resources: "
        "{cpu: {request: 1, limit: 1}, memory: {request: 1Gi, limit: 1Gi}}}\n"
        "volumes:\n  - {name: scratch, mount_path: /tmp/scratch, empty_dir: true}\n"
    )))  # fmt: skip
    config = Config()
    # the stock chart's own init container is a kubernetes model, not a dict
    chart_init = V1Container(name="block-cloud-metadata", image="busybox:1")
    config.KubeSpawner.init_containers = [chart_init]
    spawner = make_spawner(profile_dir=tmp_path, config=config)
    pod = await manifest(spawner, {})
    assert [c["name"] for c in pod["spec"]["initContainers"]] == ["block-cloud-metadata", "app"]
    assert [c["name"] for c in pod["spec"]["containers"]] == ["notebook", "vnc"]
    assert "restartPolicy" not in container(pod, "vnc")
    app = pod["spec"]["initContainers"][1]
    assert app["volumeMounts"][-1] == {"name": "scratch", "mountPath": "/tmp/scratch",
                                        "readOnly": False}  # fmt: skip
    again = await manifest(spawner, {})  # a re-used spawner adds them once
    assert [c["name"] for c in again["spec"]["initContainers"]] == ["block-cloud-metadata", "app"]


def test_a_stop_server_sidecar_that_exited_stops_the_server_and_native_ones_do_not():
    exited = {"name": "vnc", "state": {"terminated": {"exitCode": 137, "reason": "Error"}}}
    assert exited_sidecar(pod_with(NOTEBOOK_READY, exited)) == ("vnc", 137)
    running = {"name": "vnc", "state": {"running": {}}}
    assert exited_sidecar(pod_with(NOTEBOOK_READY, running)) is None
    assert exited_sidecar(None) is None
    native = pod_with(NOTEBOOK_READY)
    native["spec"] = {"initContainers": [{"name": "app", "restartPolicy": "Always"}]}
    native["status"]["initContainerStatuses"] = [
        {"name": "app", "restartCount": 1, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}
    ]
    assert exited_sidecar(native) is None  # restarted by the kubelet instead
    assert "'app'" in startup_failure(native)  # ... but crashing during the start fails it


async def test_poll_reports_a_stopped_server_when_a_stop_server_sidecar_exited(sidecar_dir):
    spawner = make_spawner(profile_dir=sidecar_dir, delete_stopped_pods=False)
    exited = {"name": "vnc", "ready": False,
              "state": {"terminated": {"exitCode": 3, "reason": "Error"}}}  # fmt: skip
    pods = {f"{spawner.namespace}/{spawner.pod_name}": pod_with(NOTEBOOK_READY, exited)}

    class Reflector:
        def __init__(self, pods):
            self.pods = pods

    async def no_watch():
        return None

    spawner._start_watching_pods = no_watch
    key = spawner._get_reflector_key("pods")
    type(spawner).reflectors[key] = Reflector(pods)
    try:
        assert await spawner.poll() == 3
        running = {"name": "vnc", "ready": True, "state": {"running": {}}}
        pods[next(iter(pods))] = pod_with(NOTEBOOK_READY, running)
        assert await spawner.poll() is None
    finally:
        type(spawner).reflectors.pop(key)


def pod_with(*statuses, start: str = "this-start") -> dict:
    return {
        "metadata": {"name": "jupyter-alice", "annotations": {ANNOTATION_START: start}},
        "status": {"phase": "Running", "podIP": "10.0.0.1", "containerStatuses": list(statuses)},
    }


NOTEBOOK_READY = {"name": "notebook", "ready": True, "state": {"running": {}}}


@pytest.mark.parametrize(
    "sidecar, words",
    [
        ({"name": "vnc", "ready": False, "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}, "'vnc' exited (Error)"),
        ({"name": "vnc", "ready": False, "state": {"waiting": {"reason": "ImagePullBackOff", "message": "no such image"}}}, "'vnc' cannot start (ImagePullBackOff: no such image)"),
        ({"name": "vnc", "ready": False, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}, "CrashLoopBackOff"),
        ({"name": "vnc", "ready": False, "restartCount": 1, "state": {"running": {}}, "lastState": {"terminated": {"exitCode": 2}}}, "'vnc' exited (exit code 2)"),
    ],
)  # fmt: skip
def test_startup_failures_are_named(sidecar, words):
    assert words in startup_failure(pod_with(NOTEBOOK_READY, sidecar))


def test_healthy_or_starting_pods_are_not_failures():
    starting = {
        "name": "vnc",
        "ready": False,
        "state": {"waiting": {"reason": "ContainerCreating"}},
    }
    assert startup_failure(pod_with(NOTEBOOK_READY, starting)) is None
    assert startup_failure(None) is None


def test_a_crashed_server_container_fails_the_start_too():
    crashed = {
        "name": "notebook",
        "ready": False,
        "state": {"terminated": {"exitCode": 1, "reason": "Error"}},
    }
    assert startup_failure(pod_with(crashed)) == "the server's container 'notebook' exited (Error)"


async def test_start_fails_fast_on_a_sidecar_that_never_gets_ready(sidecar_dir):
    spawner = make_spawner(profile_dir=sidecar_dir, sidecar_ready_timeout=0.05)
    unready = {"name": "vnc", "ready": False, "state": {"running": {}}}
    pod = pod_with(NOTEBOOK_READY, unready)
    now = [1000.0]
    spawner.clock = lambda: now[0]
    spawner._start_id = "this-start"  # as creating the pod sets it
    assert spawner.is_pod_running(pod) is False  # outside start: KubeSpawner's answer only
    with spawner.watching_start():
        # the reflector still holding the pod of the same name a stopped server had: neither
        # its exited sidecar nor its running state is this start's
        exited = {"name": "vnc", "ready": False, "state": {"terminated": {"exitCode": 1}}}
        assert spawner.is_pod_running(pod_with(NOTEBOOK_READY, exited, start="earlier")) is False
        ready = {"name": "vnc", "ready": True, "state": {"running": {}}}
        assert spawner.is_pod_running(pod_with(NOTEBOOK_READY, ready, start="earlier")) is False
        assert spawner.is_pod_running(pod) is False  # first sighting starts the clock
        now[0] += 0.04
        assert spawner.is_pod_running(pod) is False  # not beyond the timeout yet
        now[0] += 0.02
        with pytest.raises(StartFailed, match="'vnc' did not become ready within 0.05 seconds"):
            spawner.is_pod_running(pod)
        broken = {"name": "vnc", "ready": False, "state": {"waiting": {"reason": "ErrImagePull"}}}
        with pytest.raises(StartFailed, match="'vnc' cannot start"):
            spawner.is_pod_running(pod_with(NOTEBOOK_READY, broken))
        ready = {"name": "vnc", "ready": True, "state": {"running": {}}}
        assert spawner.is_pod_running(pod_with(NOTEBOOK_READY, ready)) is True
    assert spawner.is_pod_running(pod) is False  # after the start: no watching, no failure


# -- start-up check ----------------------------------------------------------------------------
def test_hub_refuses_to_start_with_bad_profile_files(tmp_path):
    (tmp_path / "bad.yaml").write_text("slug: x\ndisplay_name: X\nkind: nope\n")
    config = Config()
    config.ProfileSpawner.profile_directories = [str(tmp_path)]
    with pytest.raises(SystemExit) as info:
        check_configuration(config)
    assert f"{tmp_path / 'bad.yaml'}:3: kind: must be one of" in str(info.value)
    check_configuration(Config())  # the shipped profiles are fine
