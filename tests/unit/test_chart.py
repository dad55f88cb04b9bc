"""Chart values → traitlets config, as the stock z2jh 4.4 chart's hub builds it."""

from __future__ import annotations

from pathlib import Path

import pytest
from kubernetes_asyncio.client import ApiClient
from kubernetes_asyncio.config import kube_config
from kubespawner import KubeSpawner
from traitlets.config import Config

from jupyterhub_platform.devcluster import chart

VALUES = Path(__file__).resolve().parents[2] / "chart-values" / "values.yaml"


def env(**kw) -> chart.ChartEnvironment:
    return chart.ChartEnvironment(
        proxy_api_url=kw.get("proxy_api_url", "http://proxy-api:8001"),
        hub_bind_url="http://:8081",
        hub_connect_url="http://hub:8081",
        secret=lambda key: f"secret-for-{key}",
    )


def test_shipped_values_are_all_mapped():
    chart.check_supported(chart.load_values(VALUES), VALUES)


def test_unmapped_key_is_rejected_naming_file_key_and_value():
    values = {"singleuser": {"extraTolerations": [{"key": "gpu"}]}}
    with pytest.raises(chart.ChartValuesError) as err:
        chart.check_supported(values, "my-values.yaml")
    assert "my-values.yaml" in str(err.value)
    assert "singleuser.extraTolerations" in str(err.value)
    assert "gpu" in str(err.value)


@pytest.mark.parametrize(
    "values",
    [
        {"hub": {"config": {"KubeSpawner": 3}}},
        {"hub": {"services": {"reports": "http://x"}}},
        {"hub": {"loadRoles": []}},
    ],
)
def test_sections_that_must_be_mappings(values):
    with pytest.raises(chart.ChartValuesError, match="must be a mapping"):
        chart.check_supported(values, "v.yaml")


def test_chart_culler_is_rejected():
    with pytest.raises(chart.ChartValuesError, match="cull.enabled"):
        chart.check_supported({"cull": {"enabled": True}}, "v.yaml")


@pytest.mark.parametrize(
    ("text", "message"),
    [("hub: [unclosed", "not valid YAML"), ("- a list", "must be a mapping")],
)
def test_bad_values_file_errors_name_the_file(tmp_path, text, message):
    path = tmp_path / "values.yaml"
    path.write_text(text)
    with pytest.raises(chart.ChartValuesError, match=message) as err:
        chart.load_values(path)
    assert str(path) in str(err.value)


def test_missing_values_file_is_a_clear_error(tmp_path):
    with pytest.raises(chart.ChartValuesError, match="cannot read"):
        chart.load_values(tmp_path / "absent.yaml")


def test_fixed_chart_settings_and_environment():
    cfg = chart.chart_config({}, env())
    assert cfg["JupyterHub"]["spawner_class"] == "kubespawner.KubeSpawner"
    assert cfg["ConfigurableHTTPProxy"] == {
        "api_url": "http://proxy-api:8001",
        "should_start": False,
    }
    assert cfg["JupyterHub"]["hub_bind_url"] == "http://:8081"
    assert cfg["JupyterHub"]["hub_connect_url"] == "http://hub:8081"
    assert cfg["JupyterHub"]["cleanup_servers"] is False
    assert cfg["JupyterHub"]["db_url"] == "sqlite:///jupyterhub.sqlite"
    assert cfg["KubeSpawner"]["namespace"] == "default"
    assert cfg["JupyterHub"]["cookie_secret"] == "secret-for-hub.config.JupyterHub.cookie_secret"
    assert cfg["CryptKeeper"]["keys"] == ["secret-for-hub.config.CryptKeeper.keys"]


def test_chart_defaults_apply_when_values_are_silent():
    cfg = chart.chart_config({}, env())
    ks = cfg["KubeSpawner"]
    assert ks["uid"] == 1000 and ks["fs_gid"] == 100
    assert ks["mem_guarantee"] == "1G"
    assert ks["storage_capacity"] == "10Gi"
    assert "cpu_limit" not in ks  # null in the chart: left to KubeSpawner
    assert cfg["Spawner"]["cmd"] == "jupyterhub-singleuser"
    assert cfg["JupyterHub"]["concurrent_spawn_limit"] == 64


def test_singleuser_keys_map_to_kubespawner_traits():
    values = {
        "singleuser": {
            "image": {"name": "example/lab", "tag": "1.2"},
            "cpu": {"limit": 2, "guarantee": 0.5},
            "memory": {"limit": "4G", "guarantee": "1G"},
            "uid": 1234,
            "fsGid": 99,
            "extraEnv": {"A": "1"},
            "defaultUrl": "/lab",
            "cmd": ["start.sh", "jupyterhub-singleuser"],
        }
    }
    cfg = chart.chart_config(values, env())
    ks = cfg["KubeSpawner"]
    assert ks["image"] == "example/lab:1.2"
    assert (ks["cpu_limit"], ks["cpu_guarantee"]) == (2, 0.5)
    assert (ks["mem_limit"], ks["mem_guarantee"]) == ("4G", "1G")
    assert (ks["uid"], ks["fs_gid"]) == (1234, 99)
    assert ks["environment"] == {"A": "1"}
    assert cfg["Spawner"]["default_url"] == "/lab"
    assert cfg["Spawner"]["cmd"] == ["start.sh", "jupyterhub-singleuser"]


def test_explicit_null_cmd_means_image_command():
    cfg = chart.chart_config({"singleuser": {"cmd": None}}, env())
    assert cfg["Spawner"]["cmd"] is None


def test_dynamic_storage_gives_a_pvc_per_server_mounted_at_home():
    values = {
        "singleuser": {
            "storage": {"type": "dynamic", "capacity": "5Gi", "homeMountPath": "/home/u"}
        }
    }
    ks = chart.chart_config(values, env())["KubeSpawner"]
    assert ks["storage_pvc_ensure"] is True
    assert ks["storage_capacity"] == "5Gi"
    assert ks["storage_access_modes"] == ["ReadWriteOnce"]
    assert "pvc_name_template" not in ks  # KubeSpawner's own default, as in chart 4.x
    assert ks["volumes"] == [
        {"name": "volume-{user_server}", "persistentVolumeClaim": {"claimName": "{pvc_name}"}}
    ]
    assert ks["volume_mounts"] == [{"mountPath": "/home/u", "name": "volume-{user_server}"}]


def test_no_storage_means_no_home_volume():
    ks = chart.chart_config({"singleuser": {"storage": {"type": "none"}}}, env())["KubeSpawner"]
    assert "volumes" not in ks and "storage_pvc_ensure" not in ks


def test_services_and_roles_become_lists_with_chart_tokens():
    values = {
        "hub": {
            "services": {
                "reports": {"url": "http://reports:8000"},
                "seeded": {"apiToken": "given-token"},
            },
            "loadRoles": {"readers": {"scopes": ["read:users"], "services": ["reports"]}},
        }
    }
    cfg = chart.chart_config(values, env())["JupyterHub"]
    assert cfg["services"] == [
        {
            "name": "reports",
            "url": "http://reports:8000",
            "api_token": "secret-for-hub.services.reports.apiToken",
        },
        {"name": "seeded", "api_token": "given-token"},
    ]
    assert cfg["load_roles"] == [
        {"name": "readers", "scopes": ["read:users"], "services": ["reports"]}
    ]


def test_hub_config_is_applied_last_without_its_secret_keys():
    values = {
        "hub": {
            "config": {
                "JupyterHub": {"cleanup_servers": True, "cookie_secret": "leak", "services": []},
                "KubeSpawner": {"cpu_limit": 9},
                "CryptKeeper": {"keys": ["leak"]},
            }
        },
        "singleuser": {"cpu": {"limit": 1}},
    }
    cfg = chart.chart_config(values, env())
    assert cfg["JupyterHub"]["cleanup_servers"] is True
    assert cfg["JupyterHub"]["cookie_secret"] != "leak"
    assert cfg["JupyterHub"]["services"] == []  # from hub.services, not hub.config
    assert cfg["CryptKeeper"]["keys"] != ["leak"]
    assert cfg["KubeSpawner"]["cpu_limit"] == 9


def test_merge_values_is_recursive_for_mappings_only():
    merged = chart.merge_values({"a": {"b": 1, "c": [1]}, "d": 1}, {"a": {"c": [2]}, "d": None})
    assert merged == {"a": {"b": 1, "c": [2]}, "d": None}


KUBECONFIG = """
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "http://127.0.0.1:9"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
"""


async def test_real_kubespawner_builds_the_pod_the_values_describe(tmp_path, monkeypatch):
    # KubeSpawner loads a kubeconfig when created; it never contacts the API to build a pod.
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG)
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(kubeconfig))
    c = Config()
    chart.apply_config(c, chart.chart_config(chart.load_values(VALUES), env()))
    spawner = KubeSpawner(config=c, _mock=True)
    assert spawner.cpu_limit == 2
    assert spawner.mem_limit == 4 * 1024**3
    assert spawner.default_url == "/lab"
    assert spawner.cmd == ["jupyterhub-singleuser"]
    async with ApiClient() as api:
        pod = api.sanitize_for_serialization(await spawner.get_pod_manifest())
    volume = pod["spec"]["volumes"][0]
    assert volume["persistentVolumeClaim"]["claimName"] == spawner.pvc_name
    assert spawner.pvc_name.startswith("claim-mock-name")
    mounts = [
        m for m in pod["spec"]["containers"][0]["volumeMounts"] if m["name"] == volume["name"]
    ]
    assert mounts[0]["mountPath"] == "/home/jovyan"
    assert pod["spec"]["securityContext"]["fsGroup"] == 100
