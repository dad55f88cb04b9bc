"""The local hub's config: shipped values + the visible list of local overrides."""

from __future__ import annotations

import socket
import stat
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from jupyterhub_platform.devcluster import chart, hub_config

VALUES = Path(__file__).resolve().parents[2] / "chart-values" / "values.yaml"


@pytest.fixture
def endpoints(tmp_path) -> hub_config.LocalEndpoints:
    return hub_config.LocalEndpoints(
        hub_port=18081,
        proxy_api_url="http://127.0.0.1:18001",
        idp_url="http://127.0.0.1:19400",
        values_path=str(VALUES),
        secrets_path=str(tmp_path / "secrets.json"),
        extra_files_dir=str(tmp_path / "extra-files"),
    )


def test_only_endpoints_differ_from_the_chart_config(endpoints):
    local = hub_config.hub_config(endpoints)
    store = hub_config.SecretStore(Path(endpoints.secrets_path))
    production = chart.chart_config(
        chart.load_values(VALUES), hub_config.chart_environment(endpoints, store)
    )
    overrides = hub_config.local_overrides(endpoints, store)
    changed = {
        (cls, trait)
        for cls, traits in local.items()
        for trait, value in traits.items()
        if production.get(cls, {}).get(trait) != value
    }
    assert changed == {(cls, t) for cls, traits in overrides.items() for t in traits} | {
        ("JupyterHub", "services"),
        ("JupyterHub", "load_roles"),
        ("PlatformPolicy", "policy_file"),  # a mounted file, at its local stand-in
    }
    oidc = local["OIDCAuthenticator"]
    assert oidc["issuer"] == "http://127.0.0.1:19400"
    assert oidc["oauth_callback_url"] == ""  # follows the address the browser used
    assert oidc["client_id"] == "jupyterhub"  # production settings are untouched
    assert local["JupyterHub"]["authenticator_class"] == "platform-oidc"
    assert local["JupyterHub"]["hub_connect_url"] == "http://127.0.0.1:18081"
    assert local["ConfigurableHTTPProxy"]["api_url"] == "http://127.0.0.1:18001"
    mount = production["PlatformPolicy"]["policy_file"]
    assert local["PlatformPolicy"]["policy_file"] == str(Path(endpoints.extra_files_dir) / mount.lstrip("/"))


def test_extra_files_and_extra_config_run_like_the_chart(endpoints, tmp_path):
    values = chart.load_install_values(VALUES)
    files = chart.extra_files(values)
    assert files[values["hub"]["config"]["PlatformPolicy"]["policy_file"]] == (
        VALUES.parent / "policy.yaml"
    ).read_text()
    assert [key for key, _ in chart.extra_config(values)] == ["platform-checks"]


def test_admin_service_holds_the_admin_role(endpoints):
    cfg = hub_config.hub_config(endpoints)["JupyterHub"]
    token = hub_config.admin_token(Path(endpoints.secrets_path))
    assert {"name": hub_config.ADMIN_SERVICE, "api_token": token} in cfg["services"]
    admin = [r for r in cfg["load_roles"] if r["name"] == "admin"]
    assert admin == [{"name": "admin", "services": [hub_config.ADMIN_SERVICE]}]


def test_caller_overrides_come_last(endpoints):
    cfg = hub_config.hub_config(
        replace(endpoints, hub_config_overrides={"KubeSpawner": {"start_timeout": 7}})
    )
    assert cfg["KubeSpawner"]["start_timeout"] == 7


def test_secrets_are_stable_and_private(tmp_path):
    path = tmp_path / "state" / "secrets.json"
    first = hub_config.SecretStore(path).get("proxy.secretToken")
    assert len(bytes.fromhex(first)) == 32
    assert hub_config.SecretStore(path).get("proxy.secretToken") == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


@pytest.fixture
def listening_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def _load_in_jupyterhub(config_file: Path) -> subprocess.CompletedProcess:
    probe = (
        "from jupyterhub.app import JupyterHub\n"
        f"app = JupyterHub(config_file={str(config_file)!r})\n"
        "app.load_config_file(app.config_file)\n"
        "print(app.config.KubeSpawner.cpu_limit, app.config.JupyterHub.authenticator_class,\n"
        "      app.config.PlatformPolicy.policy_file)\n"
    )
    return subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=False, timeout=60
    )


def test_generated_config_file_loads_in_jupyterhub(endpoints, tmp_path, listening_port):
    """The real JupyterHub loads the generated file once the cluster and proxy API are up."""
    ready = tmp_path / "ready.json"
    ready.write_text("{}")
    live = replace(
        endpoints,
        proxy_api_url=f"http://127.0.0.1:{listening_port}",
        cluster_ready_file=str(ready),
    )
    result = _load_in_jupyterhub(hub_config.write_hub_files(tmp_path / "hub", live))
    assert result.returncode == 0, result.stderr
    cpu_limit, authenticator, policy_file = result.stdout.split()
    assert (cpu_limit, authenticator) == ("2", "platform-oidc")
    # hub.extraFiles are "mounted" and hub.extraConfig ran (it checks those very files)
    assert Path(policy_file).read_text() == (VALUES.parent / "policy.yaml").read_text()


def test_hub_refuses_to_start_with_a_bad_profile(endpoints, tmp_path, listening_port):
    ready = tmp_path / "ready.json"
    ready.write_text("{}")
    bad_profiles = tmp_path / "profiles"
    bad_profiles.mkdir()
    (bad_profiles / "broken.yaml").write_text("slug: broken\nkind: spaceship\n")
    live = replace(
        endpoints,
        proxy_api_url=f"http://127.0.0.1:{listening_port}",
        cluster_ready_file=str(ready),
        hub_config_overrides={"ProfileSpawner": {"profile_directories": [str(bad_profiles)]}},
    )
    result = _load_in_jupyterhub(hub_config.write_hub_files(tmp_path / "hub", live))
    assert result.returncode != 0
    assert "broken.yaml" in result.stderr and "kind" in result.stderr
    assert "Traceback" not in result.stderr


def test_generated_config_gives_up_clearly_without_the_cluster(endpoints, tmp_path, listening_port):
    late = replace(
        endpoints,
        proxy_api_url=f"http://127.0.0.1:{listening_port}",
        cluster_ready_file=str(tmp_path / "never.json"),
        startup_timeout=0.5,
    )
    result = _load_in_jupyterhub(hub_config.write_hub_files(tmp_path / "hub", late))
    assert result.returncode != 0
    assert "did not come up in 0.5s" in result.stderr
