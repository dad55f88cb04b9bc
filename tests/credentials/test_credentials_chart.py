"""The shipped ``credentials.yaml`` overlay and its RBAC manifest (the whole chart check of the
overlay is in tests/chart/)."""

from __future__ import annotations

import kubernetes_validate
import yaml

from jupyterhub_platform.chart.values import get_path, load_values_file
from jupyterhub_platform.devcluster.platform import shipped_values_dir

KUBERNETES_VERSION = "1.30"
PROXY_PODS = {"podSelector": {"matchLabels": {"component": "proxy"}}}
USER_PODS = {"podSelector": {"matchLabels": {"hub.jupyter.org/network-access-hub": "true"}}}


def test_the_overlay_runs_the_service_on_10103_for_user_servers_and_the_proxy():
    main = load_values_file(shipped_values_dir() / "values.yaml")
    overlay = load_values_file(shipped_values_dir() / "credentials.yaml")
    ports = get_path(overlay, "hub.service.extraPorts")
    assert all(p in ports for p in get_path(main, "hub.service.extraPorts"))  # helm replaces lists
    assert {"name": "credentials", "port": 10103, "targetPort": 10103} in ports
    rules = get_path(overlay, "hub.networkPolicy.ingress")
    assert all(r in rules for r in get_path(main, "hub.networkPolicy.ingress"))
    (rule,) = [r for r in rules if {"port": 10103} in r["ports"]]
    assert rule == {"ports": [{"port": 10103}], "from": [PROXY_PODS, USER_PODS]}

    service = get_path(overlay, "hub.services.credentials")
    assert service["command"][0] == "jupyterhub-platform-credentials"
    assert service["url"] == "http://hub:10103"
    assert service["environment"]["JUPYTERHUB_SERVICE_BIND_URL"] == "http://0.0.0.0:10103"
    assert service["environment"]["JUPYTERHUB_PLATFORM_POLICY"] == get_path(
        main, "hub.services.culler.environment.JUPYTERHUB_PLATFORM_POLICY"
    )
    url = get_path(overlay, "hub.config.ProfileSpawner.credentials_url")
    assert url == service["url"] + "/services/credentials/"
    role = get_path(overlay, "hub.loadRoles.credentials")
    assert role["services"] == ["credentials"]
    assert sorted(role["scopes"]) == sorted(
        ["list:users", "read:users:groups", "read:servers", "admin:auth_state"]
    )


def test_the_rbac_manifest_validates_and_adds_only_patch_on_secrets():
    docs = list(yaml.safe_load_all(
        (shipped_values_dir() / "manifests" / "credentials-rbac.yaml").read_text()))  # fmt: skip
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    role = next(d for d in docs if d["kind"] == "Role")
    assert role["rules"] == [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["patch"]}]
    binding = next(d for d in docs if d["kind"] == "RoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "hub"}]
