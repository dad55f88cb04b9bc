"""chart-values/cloudflare-access.yaml: an overlay whose hub config starts the authenticator.

That the overlay passes the chart's schema and runs on the stock hub configuration is shown for
every shipped values combination by tests/chart/test_stock_chart.py.
"""

from __future__ import annotations

import pytest
from traitlets.config import Config

from jupyterhub_platform.auth.cloudflare import CloudflareAccessAuthenticator
from jupyterhub_platform.chart.values import load_values_file, merge_all
from jupyterhub_platform.testing import shipped_policy_file, shipped_values

VALUES = shipped_values()
OVERLAY = VALUES.parent / "cloudflare-access.yaml"


def merged() -> dict:
    return merge_all([load_values_file(VALUES), load_values_file(OVERLAY)])


def test_overlay_closes_the_public_entry_point():
    assert merged()["ingress"]["enabled"] is False


def test_overlay_hub_config_builds_the_authenticator():
    hub_config = merged()["hub"]["config"]
    assert hub_config["JupyterHub"]["authenticator_class"] == "cloudflare-access"
    c = Config({name: section for name, section in hub_config.items() if name != "JupyterHub"})
    c.PlatformPolicy.policy_file = str(
        shipped_policy_file()
    )  # the mounted path exists only in the hub pod
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
        (
            {"team": "t", "audience": ["a"], "service_tokens": {"x": "bot"}},
            r"service_tokens\['x'\]",
        ),
        (
            {"team": "t", "audience": ["a"], "allowed_users": {"alice"}},
            "allowed_users cannot be used",
        ),
    ],
)
def test_bad_configuration_is_a_clear_start_up_error(traits, message):
    c = Config()
    c.PlatformPolicy.policy_file = str(shipped_policy_file())
    for name, value in traits.items():
        setattr(c.CloudflareAccessAuthenticator, name, value)
    with pytest.raises(ValueError, match=message):
        CloudflareAccessAuthenticator(config=c)
