"""The local platform's credential wiring (pure): the policy pointed at the local STS + S3
server, or granting nothing without it, and the spawner's service URL moved like the others."""

from __future__ import annotations

from pathlib import Path

import yaml

from jupyterhub_platform.chart.values import load_values_file, merge_values, policy_in_values
from jupyterhub_platform.devcluster.credential_store import (
    CredentialStore,
    local_policy_values,
    service_values,
)
from jupyterhub_platform.devcluster.local_values import moved_spawner_urls
from jupyterhub_platform.devcluster.platform import shipped_values_dir

SHIPPED = load_values_file(shipped_values_dir() / "values.yaml")


def local_policy(store):
    merged = merge_values(SHIPPED, local_policy_values(SHIPPED, store))
    return yaml.safe_load(policy_in_values(merged).text)


def test_with_a_store_every_s3_sts_set_uses_it():
    store = CredentialStore(Path("/state/store"), 18123)
    policy = local_policy(store)
    s3_sets = [s for s in policy["credential_sets"].values() if s.get("provider") == "s3-sts"]
    assert s3_sets, "the shipped policy declares an s3-sts set"
    for spec in s3_sets:
        assert spec["config"]["sts_endpoint"] == spec["config"]["s3_endpoint"] == store.url
        assert spec["config"]["role_arn"] == "arn:aws:iam::123456789012:role/jupyter-research"
    granted = {g: s.get("credential_sets") for g, s in policy["groups"].items() if s}
    assert granted["researchers"], "grants stay with a store"


def test_without_a_store_no_group_is_granted_a_set_needing_one_but_the_declarations_stay():
    shipped = yaml.safe_load(policy_in_values(SHIPPED).text)
    policy = local_policy(None)
    kinds = {n: s["provider"] for n, s in policy["credential_sets"].items()}
    granted = {n for g in policy["groups"].values() for n in (g or {}).get("credential_sets", [])}
    assert granted and all(kinds[n] not in ("s3-sts", "secret") for n in granted)
    assert {
        n for g in shipped["groups"].values() for n in (g or {}).get("credential_sets", [])
    } > granted
    assert policy["credential_sets"].keys() == shipped["credential_sets"].keys()
    assert policy["groups"].keys() == shipped["groups"].keys()


def test_the_store_command_names_its_port_and_ready_file(tmp_path):
    store = CredentialStore(tmp_path / "store", 18124)
    argv = store.argv()
    assert argv[1:3] == ["-m", "jupyterhub_platform.devcluster.object_store"]
    assert argv[argv.index("--port") + 1] == "18124"
    assert argv[argv.index("--ready-file") + 1] == str(store.ready_file)


def test_the_service_verifies_tokens_from_the_local_issuer():
    values = {"hub": {"services": {"credentials": {"command": [
        "/venv/bin/jupyterhub-platform-credentials",
        "--CredentialsApp.oidc_issuer=https://idp.example.org",
    ]}}}}  # fmt: skip
    local = service_values(values, "http://127.0.0.1:19000", Path("/state/kubeconfig.yaml"))
    service = local["hub"]["services"]["credentials"]
    assert service["environment"] == {"KUBECONFIG": "/state/kubeconfig.yaml"}
    command = service["command"]
    assert command == [
        "/venv/bin/jupyterhub-platform-credentials",
        "--CredentialsApp.oidc_issuer=http://127.0.0.1:19000",
        "--CredentialsApp.renew_every=5",
    ]


def test_the_spawners_credentials_url_moves_to_the_local_service():
    shipped = {
        "hub": {
            "services": {"credentials": {"url": "http://hub:10103"}},
            "config": {
                "ProfileSpawner": {"credentials_url": "http://hub:10103/services/credentials/"}
            },
        }
    }
    services = {"credentials": {"url": "http://127.0.0.1:4321"}}
    assert moved_spawner_urls(shipped, services) == {
        "ProfileSpawner": {"credentials_url": "http://127.0.0.1:4321/services/credentials/"}
    }
    assert moved_spawner_urls({"hub": {}}, services) == {}
