"""chart-values/cloudflare-access.yaml: a valid z2jh overlay whose hub config starts the authenticator."""

from __future__ import annotations

import pytest
from traitlets.config import Config

from jupyterhub_platform.auth.cloudflare import CloudflareAccessAuthenticator
from jupyterhub_platform.auth.harness import POLICY, REPO
from jupyterhub_platform.devcluster import chart

OVERLAY = REPO / "chart-values" / "cloudflare-access.yaml"


def merged() -> dict:
    return chart.merge_values(chart.load_install_values(REPO / "chart-values" / "values.yaml"), chart.load_values(OVERLAY))


def test_overlay_matches_the_chart_schema_and_mapping(z2jh_values_validator):
    validator = z2jh_values_validator
    overlay = chart.load_values(OVERLAY)  # the main file is checked by tests/unit
    assert [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(overlay)] == []
    values = merged()
    chart.check_supported(values, OVERLAY)
    assert values["ingress"]["enabled"] is False


def test_overlay_hub_config_builds_the_authenticator():
    hub_config = merged()["hub"]["config"]
    assert hub_config["JupyterHub"]["authenticator_class"] == "cloudflare-access"
    c = Config({name: section for name, section in hub_config.items() if name != "JupyterHub"})
    c.PlatformPolicy.policy_file = str(POLICY)  # the mounted path exists only in the hub pod
    auth = CloudflareAccessAuthenticator(config=c)
    assert auth.team_domain == "https://example-team.cloudflareaccess.com"
    assert auth.jwks.url == "https://example-team.cloudflareaccess.com/cdn-cgi/access/certs"
    assert auth.auto_login and not auth.accept_cookie and auth.identity_unavailable == "deny"
    assert hub_config["Authenticator"]["auth_refresh_age"] == 300
    assert auth.auth_refresh_age < 1e-3  # every request is re-checked regardless


@pytest.mark.parametrize(
    ("traits", "message"),
    [
        ({"audience": ["a"]}, "set team"),
        ({"team": "t"}, "audience"),
        ({"team": "t", "audience": ["a"], "service_tokens": {"x": "bot"}}, r"service_tokens\['x'\]"),
        ({"team": "t", "audience": ["a"], "allowed_users": {"alice"}}, "allowed_users cannot be used"),
    ],
)
def test_bad_configuration_is_a_clear_start_up_error(traits, message):
    c = Config()
    c.PlatformPolicy.policy_file = str(POLICY)
    for name, value in traits.items():
        setattr(c.CloudflareAccessAuthenticator, name, value)
    with pytest.raises(ValueError, match=message):
        CloudflareAccessAuthenticator(config=c)
