"""The hub pod of the rendered stock chart: its files, env and command, and their local layout."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import pytest
import yaml

from jupyterhub_platform.chart import hub_pod
from jupyterhub_platform.chart.hub_pod import ETC, HubPodError
from jupyterhub_platform.chart.render import render, template_argv
from jupyterhub_platform.devcluster.local_values import (
    ADMIN_SERVICE,
    CloudflareLogin,
    LocalEndpoints,
    OIDCLogin,
    local_services,
    local_values,
    moved_service_urls,
)
from jupyterhub_platform.devcluster.secret_store import SecretStore
from jupyterhub_platform.devcluster.stock_hub import OUTSIDE_VALUES, HubLayout, prepare_hub
from jupyterhub_platform.services.common.app import BIND_URL_ENV

ROOT = Path(__file__).resolve().parents[2]
VALUES = ROOT / "chart-values" / "values.yaml"
ENDPOINTS = LocalEndpoints("127.0.0.1", hub_port=18081, proxy_api_port=18001, public_port=18000)
FACTS = hub_pod.PodFacts("default", "hub-local", "127.0.0.1", "devcluster")


@pytest.fixture(scope="module")
def rendered(z2jh_chart, helm):
    def rendered(*sets: str, files=(VALUES,)) -> hub_pod.HubObjects:
        return hub_pod.hub_objects(render(template_argv(helm, z2jh_chart, list(files), sets=sets)))

    return rendered


@pytest.mark.processes
def test_the_mounts_are_the_pods(rendered):
    hub = rendered()
    files = hub_pod.mounted_files(hub).files
    for path in ("jupyterhub_config.py", "z2jh.py", "config/proxy-api", "secret/values.yaml",
                 "secret/hub.config.CryptKeeper.keys", "platform/policy.yaml"):  # fmt: skip
        assert f"{ETC}/{path}" in files, path
    assert files[f"{ETC}/platform/policy.yaml"].startswith("# Group policy")
    assert hub_pod.mounted_files(hub).workdir == hub_pod.SRV


@pytest.mark.processes
def test_the_one_rewrite_is_the_prefix_in_the_stock_files_and_the_values_paths(rendered, tmp_path):
    mounted = hub_pod.mounted_files(rendered())
    etc = str(tmp_path / "etc" / "jupyterhub")
    local = hub_pod.local_files(mounted, etc)
    assert set(local) == {etc + p[len(ETC) :] for p in mounted.files}
    config = local[f"{etc}/jupyterhub_config.py"]
    assert ETC not in config and f'config_dir = "{etc}/jupyterhub_config.d"' in config
    assert config == mounted.files[f"{ETC}/jupyterhub_config.py"].replace(ETC, etc)
    assert ETC not in local[f"{etc}/z2jh.py"]
    values = yaml.safe_load(local[f"{etc}/secret/values.yaml"])
    assert values["hub"]["config"]["PlatformPolicy"]["policy_file"] == f"{etc}/platform/policy.yaml"
    assert (
        values["hub"]["extraFiles"]["platform-policy"]["mountPath"] == f"{etc}/platform/policy.yaml"
    )
    # everything else is the pod's, byte for byte
    for path in (
        "config/jupyterhub_config.py",
        "platform/policy.yaml",
        "secret/hub.config.CryptKeeper.keys",
    ):
        assert local[f"{etc}/{path}"] == mounted.files[f"{ETC}/{path}"]


@pytest.mark.processes
def test_a_file_mounted_outside_the_prefix_is_refused(rendered):
    hub = rendered("hub.extraFiles.motd.mountPath=/etc/motd", "hub.extraFiles.motd.stringData=hi")
    with pytest.raises(
        HubPodError, match="outside /usr/local/etc/jupyterhub cannot be provided locally: /etc/motd"
    ):
        hub_pod.local_files(hub_pod.mounted_files(hub), "/tmp/x")


@pytest.mark.processes
def test_hub_existing_secret_needs_its_content(rendered):
    hub = rendered("hub.existingSecret=site-secrets")
    with pytest.raises(HubPodError, match="Secret 'site-secrets' .*--existing-secret FILE"):
        hub_pod.mounted_files(hub)
    files = hub_pod.mounted_files(hub, {"values.yaml": "hub: {}\n", "token": "s3cret"}).files
    assert files[f"{ETC}/existing-secret/token"] == "s3cret"


@pytest.mark.processes
def test_the_container_env_from_the_deployment(rendered):
    hub = rendered(
        "hub.extraEnv.FROM_VALUES=yes",
        "hub.extraEnv.SITE_TOKEN.valueFrom.secretKeyRef.name=site",
        "hub.extraEnv.SITE_TOKEN.valueFrom.secretKeyRef.key=token",
    )
    with pytest.raises(
        HubPodError, match="hub env SITE_TOKEN: secretKeyRef site/token is not available"
    ):
        hub_pod.container_env(hub, FACTS)
    env = hub_pod.container_env(hub, FACTS, existing_secret={"token": "from-site"})
    assert env["SITE_TOKEN"] == "from-site" and env["FROM_VALUES"] == "yes"
    assert env["POD_NAMESPACE"] == "default" and env["HELM_RELEASE_NAME"] == "jhub"
    assert (
        env["CONFIGPROXY_AUTH_TOKEN"] == hub.secret["hub.config.ConfigurableHTTPProxy.auth_token"]
    )


@pytest.mark.processes
def test_service_links_point_at_the_local_stand_ins(rendered):
    env = hub_pod.service_link_env(
        rendered(),
        "127.0.0.1",
        {"hub": {8081: 18081}, "proxy-api": {8001: 18001}, "proxy-public": {80: 18000}},
    )
    assert env == {
        "HUB_SERVICE_HOST": "127.0.0.1",
        "HUB_SERVICE_PORT": "18081",
        "HUB_SERVICE_PORT_HUB": "18081",
        "PROXY_API_SERVICE_HOST": "127.0.0.1",
        "PROXY_API_SERVICE_PORT": "18001",
        "PROXY_PUBLIC_SERVICE_HOST": "127.0.0.1",
        "PROXY_PUBLIC_SERVICE_PORT": "18000",
        "PROXY_PUBLIC_SERVICE_PORT_HTTP": "18000",
    }


@pytest.mark.processes
def test_the_command_is_the_charts_run_by_this_python(rendered):
    assert hub_pod.hub_args(rendered(), "/venv/bin/python", "/state/etc") == [
        "/venv/bin/python", "-m", "jupyterhub", "--config", "/state/etc/jupyterhub_config.py", "--upgrade-db",
    ]  # fmt: skip
    with pytest.raises(HubPodError, match="hub args .* do not run jupyterhub"):
        hub_pod.hub_args(rendered("hub.args={sh,-c,echo}"), "python", "/e")


def overlay(store: SecretStore, login=None) -> dict:
    shipped = {"hub": {"loadRoles": {"admin": {"services": ["reports"]}}}}
    return local_values(
        shipped,
        ENDPOINTS,
        login or OIDCLogin("http://127.0.0.1:19000"),
        store.get,
        singleuser_cmd=["jupyterhub-singleuser"],
    )


def test_the_overlay_says_everything_the_local_platform_changes(tmp_path):
    store = SecretStore(tmp_path / "secrets.json")
    values = overlay(store)
    config = values["hub"]["config"]
    assert (
        config["JupyterHub"]["hub_bind_url"]
        == config["JupyterHub"]["hub_connect_url"]
        == "http://127.0.0.1:18081"
    )
    assert config["ConfigurableHTTPProxy"]["api_url"] == "http://127.0.0.1:18001"
    assert config["OIDCAuthenticator"]["issuer"] == "http://127.0.0.1:19000"
    assert config["OIDCAuthenticator"]["oauth_callback_url"] == ""
    assert config["KubeSpawner"]["cmd"] == ["jupyterhub-singleuser"]
    assert values["hub"]["loadRoles"]["admin"]["services"] == ["reports", ADMIN_SERVICE]
    assert values["scheduling"] == {"userScheduler": {"enabled": False}}
    assert overlay(store) == values  # the chart Secret's values are stable across restarts
    assert stat.S_IMODE((tmp_path / "secrets.json").stat().st_mode) == 0o600
    cloudflare = overlay(store, CloudflareLogin("http://127.0.0.1:19100", "aud-1"))["hub"]["config"]
    assert "OIDCAuthenticator" not in cloudflare
    assert cloudflare["CloudflareAccessAuthenticator"] == {
        "team_domain": "http://127.0.0.1:19100", "audience": ["aud-1"], "username_from_email": "local-part",
    }  # fmt: skip


def test_hub_managed_services_run_from_this_virtualenv_on_local_ports(tmp_path):
    (tmp_path / "my-service").write_text("#!/bin/sh\n")
    shipped = {
        "hub": {
            "services": {
                "web": {"command": ["my-service", "--every=5"], "url": "http://hub:10101"},
                "elsewhere": {"command": ["not-installed-here"]},
                "token-only": {"apiToken": "x"},
            }
        }
    }
    ports = iter([23456])
    services = local_services(shipped, "127.0.0.1", lambda _name: next(ports), tmp_path)
    assert services == {
        "web": {
            "command": [str(tmp_path / "my-service"), "--every=5"],
            "url": "http://127.0.0.1:23456",
            "environment": {BIND_URL_ENV: "http://127.0.0.1:23456"},
        },
        "elsewhere": {},
    }
    shipped["singleuser"] = {
        "extraEnv": {
            "WEB": "http://hub:10101/services/web/",
            "WEB_ROOT": "http://hub:10101",
            "NEAR_MISS": "http://hub:101010/",
            "OTHER": "http://hub:8081/hub/api",
        }
    }
    assert moved_service_urls(shipped, services) == {
        "WEB": "http://127.0.0.1:23456/services/web/",
        "WEB_ROOT": "http://127.0.0.1:23456",
    }


@pytest.mark.processes
def test_prepare_hub_renders_lays_out_and_keeps_secrets_private(z2jh_chart, helm, tmp_path):
    layout = HubLayout(tmp_path / "hub")
    stale = layout.etc / "left-over.py"
    stale.parent.mkdir(parents=True)
    stale.write_text("from a previous start")
    store = SecretStore(tmp_path / "secrets.json")
    hub = prepare_hub(
        layout,
        helm=helm,
        chart=z2jh_chart,
        values_files=[VALUES],
        overlay=overlay(store),
        endpoints=ENDPOINTS,
        kubeconfig=tmp_path / "kubeconfig",
        base_env={"PATH": "/bin"},
    )
    assert hub.argv[:4] == [sys.executable, "-m", "jupyterhub", "--config"]
    assert hub.cwd == layout.srv and layout.srv.is_dir()
    assert hub.env["KUBECONFIG"] == str(tmp_path / "kubeconfig") and hub.env["PATH"] == "/bin"
    assert hub.env["CONFIGPROXY_AUTH_TOKEN"] == store.get(
        "hub.config.ConfigurableHTTPProxy.auth_token"
    )
    assert not stale.exists()
    assert stat.S_IMODE(layout.etc.stat().st_mode) == 0o700
    assert stat.S_IMODE(layout.overlay.stat().st_mode) == 0o600
    header = layout.overlay.read_text()
    assert all(line.split(":")[0][:40] in " ".join(header.split()) for line in OUTSIDE_VALUES)
    values = yaml.safe_load((layout.etc / "secret" / "values.yaml").read_text())
    assert values["hub"]["config"]["JupyterHub"]["hub_bind_url"] == "http://127.0.0.1:18081"
    keys = (layout.etc / "secret" / "hub.config.CryptKeeper.keys").read_text()
    assert keys == store.get("hub.config.CryptKeeper.keys")
