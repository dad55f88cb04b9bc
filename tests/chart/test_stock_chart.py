"""Every shipped values combination on the stock z2jh chart's own hub configuration.

Helm renders the real chart (its schema runs there); the hub pod's files are laid out as the
pod mounts them; the chart's ``jupyterhub_config.py`` goes through ``JupyterHub.initialize()``
with an unreachable issuer; then a ProfileSpawner builds the pod of each shipped profile and of
the GPU size, and every pod is validated against the Kubernetes OpenAPI schema. Only the GPU
size's pod tolerates the GPU nodes' taint, whatever the overlay.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
from shipped_combinations import COMBINATIONS, EXPECTED_AUTHENTICATOR

from jupyterhub_platform.chart.render import render, template_argv
from jupyterhub_platform.devcluster.local_values import LocalEndpoints
from jupyterhub_platform.devcluster.procs import free_port
from jupyterhub_platform.devcluster.stock_hub import HubLayout, lay_out_hub
from jupyterhub_platform.profiles.catalogue import bundled_profiles_dir, load_catalogue

pytestmark = pytest.mark.jh55_only

ROOT = Path(__file__).resolve().parents[2]
PROBE = Path(__file__).with_name("stock_hub_probe.py")
KUBERNETES_VERSION = "1.30"
PROBE_GROUP = {"values+oidc-google": "example.org"}  # that policy's one group: the hd claim
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
UNUSED_KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters: [{name: unused, cluster: {server: "http://127.0.0.1:9"}}]
users: [{name: unused, user: {}}]
contexts: [{name: unused, context: {cluster: unused, user: unused, namespace: default}}]
current-context: unused
"""


def test_every_shipped_values_file_is_in_a_combination():
    shipped = {p.name for p in (ROOT / "chart-values").glob("*.yaml")}
    assert shipped == {name for files in COMBINATIONS.values() for name in files}


def stock_hub(helm, chart, tmp_path, files, *sets):
    """The hub pod of ``files`` laid out in ``tmp_path``, with an unreachable issuer."""
    unreachable = f"http://127.0.0.1:{free_port()}"
    docs = render(
        template_argv(
            helm,
            chart,
            [ROOT / "chart-values" / name for name in files],
            sets=[
                f"hub.config.OIDCAuthenticator.issuer={unreachable}",
                "hub.config.OIDCAuthenticator.client_secret=from-set",
                *sets,
            ],
        )
    )
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(UNUSED_KUBECONFIG)
    endpoints = LocalEndpoints("127.0.0.1", free_port(), free_port(), free_port())
    return lay_out_hub(
        docs,
        HubLayout(tmp_path / "hub"),
        endpoints=endpoints,
        kubeconfig=kubeconfig,
        base_env={"PATH": os.environ["PATH"], "HOME": str(tmp_path)},
    )


@pytest.mark.parametrize("combination", list(COMBINATIONS))
@pytest.mark.processes
def test_shipped_values_run_on_the_stock_hub_config(combination, z2jh_chart, helm, tmp_path):
    hub = stock_hub(helm, z2jh_chart, tmp_path, COMBINATIONS[combination])
    assert hub.argv[:3] == [sys.executable, "-m", "jupyterhub"]
    config_file = hub.argv[hub.argv.index("--config") + 1]
    report_file = tmp_path / "report.json"
    result = subprocess.run(
        [
            sys.executable,
            str(PROBE),
            config_file,
            str(report_file),
            PROBE_GROUP.get(combination, "platform-admins"),
        ],  # fmt: skip
        cwd=hub.cwd,
        env=hub.env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads(report_file.read_text())

    assert report["authenticator"] == EXPECTED_AUTHENTICATOR[combination]
    assert report["spawner"] == "ProfileSpawner"
    assert report["discovered"] is False  # initialize() did not need the identity provider
    catalogue = load_catalogue([bundled_profiles_dir()])
    assert set(report["pods"]) == {p.slug for p in catalogue.profiles}
    for slug, pod in report["pods"].items():
        kubernetes_validate.validate(pod, KUBERNETES_VERSION, strict=True)  # raises when invalid
        labels = pod["metadata"]["labels"]
        assert labels["jupyterhub-platform/profile"] == slug
        assert labels["app.kubernetes.io/managed-by"] == "kubespawner"  # the chart's labels
        init = pod["spec"].get("initContainers", [])
        restarted = [s.name for s in catalogue.get(slug).sidecars if s.on_exit == "restart"]
        # the chart's singleuser.cloudMetadata first, then the profile's native sidecars
        assert [c["name"] for c in init] == ["block-cloud-metadata", *restarted]
        for container in pod["spec"]["containers"] + init[1:]:  # sidecars share the chart's home
            homes = [
                m["name"] for m in container["volumeMounts"] if m["mountPath"] == "/home/jovyan"
            ]
            assert homes == [f"volume-probe--{slug}"], (slug, container["name"])
        assert GPU_TOLERATION not in pod["spec"].get("tolerations", []), slug  # CPU-only pods

    gpu_pod = report["gpu_pod"]
    if combination in PROBE_GROUP:  # a policy that does not grant the GPU size to that group
        assert gpu_pod == {"refused": 403}
        return
    kubernetes_validate.validate(gpu_pod, KUBERNETES_VERSION, strict=True)
    assert GPU_TOLERATION in gpu_pod["spec"]["tolerations"]  # from the profile's size
    assert gpu_pod["spec"]["nodeSelector"]["nvidia.com/gpu.present"] == "true"
    (notebook,) = [c for c in gpu_pod["spec"]["containers"] if c["name"] == "notebook"]
    assert notebook["resources"]["limits"]["nvidia.com/gpu"] == "1"


@pytest.mark.processes
def test_the_gpu_overlay_tolerates_the_gpu_taint_only_in_the_image_pullers(z2jh_chart, helm):
    def rendered(*files):
        docs = render(template_argv(helm, z2jh_chart, [ROOT / "chart-values" / f for f in files]))
        return {(d["kind"], d["metadata"]["name"]): d for d in docs}

    def tolerations(doc):
        return doc["spec"]["template"]["spec"].get("tolerations", [])

    plain, gpu = rendered("values.yaml"), rendered("values.yaml", "gpu.yaml")
    pullers = [("DaemonSet", "hook-image-puller"), ("DaemonSet", "continuous-image-puller")]
    for key in pullers:
        assert GPU_TOLERATION in tolerations(gpu[key])
        assert GPU_TOLERATION not in tolerations(plain[key])
    # the placeholders (the user pods' own are the probe's, above) stay as they were
    placeholder = gpu[("StatefulSet", "user-placeholder")]
    assert GPU_TOLERATION not in tolerations(placeholder)
    assert tolerations(placeholder) == tolerations(plain[("StatefulSet", "user-placeholder")])


@pytest.mark.processes
def test_a_bad_profile_file_stops_the_stock_hub_at_start_up(z2jh_chart, helm, tmp_path):
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    (profiles / "broken.yaml").write_text("slug: broken\ndisplay_name: Broken\nkind: spaceship\n")
    hub = stock_hub(
        helm, z2jh_chart, tmp_path, ["values.yaml"],
        f"hub.config.ProfileSpawner.profile_directories={{{profiles}}}",
    )  # fmt: skip
    result = subprocess.run(
        hub.argv, cwd=hub.cwd, env=hub.env, capture_output=True, text=True, timeout=120, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "refusing to start, invalid configuration" in output
    assert f"{profiles / 'broken.yaml'}:3: kind: must be one of" in output
    assert "Traceback" not in output
