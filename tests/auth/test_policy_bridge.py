"""Groups from claim paths, and the policy's answer written into JupyterHub's auth model."""

from __future__ import annotations

import subprocess
import sys

import jupyterhub
import pytest
from jupyterhub.app import JupyterHub
from jupyterhub.spawner import LocalProcessSpawner
from tornado import web
from traitlets.config import Config

from jupyterhub_platform.auth.policy_bridge import (
    ENTITLEMENTS_KEY,
    PolicyBridge,
    groups_from_claims,
)
from jupyterhub_platform.policy import PlatformPolicy
from jupyterhub_platform.spawner import ProfileSpawner
from jupyterhub_platform.testing import shipped_policy_file

KEYCLOAK = {
    "sub": "1f2e",
    "groups": ["/researchers", "/platform-admins"],
    "realm_access": {"roles": ["offline_access", "students"]},
    "resource_access": {"jupyterhub": {"roles": ["instructors"]}, "other": {"roles": ["x"]}},
    "https://example.org/groups": "gpu-users",
}


def bridge(**traits) -> PolicyBridge:
    c = Config()
    c.PlatformPolicy.policy_file = str(shipped_policy_file())
    for name, value in traits.items():
        setattr(c.PolicyBridge, name, value)
    return PolicyBridge(config=c)


def test_nested_claim_paths_and_client_substitution():
    b = bridge(
        groups_claim=[
            "groups",
            "realm_access.roles",
            "resource_access.{client_id}.roles",
            ["https://example.org/groups"],
            "missing.path",
        ]
    )
    assert groups_from_claims(KEYCLOAK, b.claim_paths("jupyterhub")) == [
        "/platform-admins",
        "/researchers",
        "gpu-users",
        "instructors",
        "offline_access",
        "students",
    ]


def test_non_list_claims_are_ignored():
    assert groups_from_claims(
        {"groups": {"a": 1}, "roles": [1, "", "ok"]}, [("groups",), ("roles",)]
    ) == ["ok"]


async def test_auth_model_from_policy():
    b = bridge()
    model = b.apply_policy({"name": "bob"}, ["/platform-admins", "/researchers", "zz"])
    assert model["admin"] is True
    assert model["groups"] == ["platform-admins", "researchers", "zz"]
    assert model["roles"] == [
        {"name": "user"},
        {
            "name": "platform-operators",
            "description": "Read-only view of users, servers and metrics",
            "scopes": ["read:users", "read:servers", "read:metrics"],
        },
        {"name": "admin"},
    ]
    assert await b.check_allowed("bob", model)
    names = {r["name"] for r in await b.load_managed_roles()}
    assert names == {"instructors", "platform-operators"}


async def test_refused_with_a_message():
    b = bridge()
    model = b.apply_policy({"name": "carol"}, ["visitors"])
    assert model["admin"] is False and not model[ENTITLEMENTS_KEY].login_allowed
    with pytest.raises(web.HTTPError) as info:
        await b.check_allowed("carol", model)
    assert info.value.status_code == 403
    assert "Your account (carol) is not in any group" in info.value.log_message


@pytest.mark.parametrize(
    "trait", [{"allow_all": True}, {"allowed_users": {"x"}}, {"admin_users": {"x"}}]
)
def test_second_source_of_truth_refused(trait):
    with pytest.raises(ValueError, match="comes from the group policy file"):
        bridge(**trait)


def test_bad_policy_file_stops_the_hub_naming_file_and_field(tmp_path):
    bad = tmp_path / "policy.yaml"
    bad.write_text("groups: {a: {admin: maybe}}")
    c = Config()
    c.PlatformPolicy.policy_file = str(bad)
    with pytest.raises(
        SystemExit,
        match=r"policy.yaml:1: groups\.a\.admin: must be true or false, got the string .maybe.",
    ):
        PolicyBridge(config=c)


def test_a_failed_refresh_refuses_api_token_requests_too():
    """JupyterHub 6.1+ would keep stale rights on token requests unless auth_refresh_strict."""
    b = bridge()
    if not b.has_trait("auth_refresh_strict"):
        assert jupyterhub.version_info < (6, 1)  # before 6.1 a failed refresh always refuses
        return
    assert b.auth_refresh_strict is True
    c = Config()
    c.PlatformPolicy.policy_file = str(shipped_policy_file())
    c.Authenticator.auth_refresh_strict = False  # an explicit choice is kept (and warned about)
    assert PolicyBridge(config=c).auth_refresh_strict is False


def hub_with(spawner_class, config: Config) -> JupyterHub:
    """The JupyterHub app, parent of the authenticator it creates at start-up."""
    return JupyterHub(config=config, spawner_class=spawner_class)


@pytest.mark.parametrize("spawner_class", [ProfileSpawner, type("Mine", (ProfileSpawner,), {})])
def test_with_a_profile_spawner_bad_profile_files_stop_the_hub(tmp_path, spawner_class):
    (tmp_path / "broken.yaml").write_text("slug: broken\ndisplay_name: B\nkind: spaceship\n")
    c = Config()
    c.PlatformPolicy.policy_file = str(shipped_policy_file())
    c.ProfileSpawner.profile_directories = [str(tmp_path)]
    with pytest.raises(SystemExit, match=r"broken.yaml:3: kind: must be one of"):
        PolicyBridge(parent=hub_with(spawner_class, c))
    PolicyBridge(parent=hub_with(LocalProcessSpawner, c))  # other spawners: not checked


@pytest.mark.processes
def test_platform_policy_is_a_section_the_hub_lists():
    assert issubclass(PolicyBridge, PlatformPolicy)
    helped = subprocess.run(
        [sys.executable, "-m", "jupyterhub", "--help-all"],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    assert "--PlatformPolicy.policy_file=<Unicode>" in helped.stdout
