"""One set of JWT-verification traits for both authenticators; the old names still work."""

from __future__ import annotations

import logging

import pytest
from traitlets.config import Config

from jupyterhub_platform.auth.cloudflare import CloudflareAccessAuthenticator
from jupyterhub_platform.auth.jwt_traits import JWTVerifierTraits
from jupyterhub_platform.auth.oidc import OIDCAuthenticator

SHARED = ("leeway", "keys_cache_ttl", "keys_min_refetch_interval")


@pytest.mark.parametrize("cls", [OIDCAuthenticator, CloudflareAccessAuthenticator])
def test_both_authenticators_share_the_traits(cls):
    assert issubclass(cls, JWTVerifierTraits)
    traits = cls.class_traits(config=True)
    for name in SHARED:
        assert traits[name] is JWTVerifierTraits.class_traits()[name]
        assert traits[name].help


@pytest.mark.parametrize(
    ("cls", "old", "new"),
    [
        (OIDCAuthenticator, "jwks_cache_ttl", "keys_cache_ttl"),
        (OIDCAuthenticator, "jwks_min_refetch_interval", "keys_min_refetch_interval"),
        (CloudflareAccessAuthenticator, "certs_cache_ttl", "keys_cache_ttl"),
        (CloudflareAccessAuthenticator, "certs_min_refetch_interval", "keys_min_refetch_interval"),
    ],
)
def test_old_names_are_documented_aliases(cls, old, new):
    trait = cls.class_traits()[old]
    assert trait.metadata["renamed_to"] == new and f"``{new}``" in trait.help


def test_an_old_name_in_config_sets_the_new_trait_and_warns(caplog):
    config = Config()
    config.CloudflareAccessAuthenticator.certs_cache_ttl = 120.0
    config.CloudflareAccessAuthenticator.certs_min_refetch_interval = 7.0
    with caplog.at_level(logging.WARNING):
        auth = CloudflareAccessAuthenticator(
            config=config, team_domain="http://127.0.0.1:9", audience=["aud"]
        )
    assert (auth.keys_cache_ttl, auth.keys_min_refetch_interval) == (120.0, 7.0)
    assert auth.jwks.ttl == 120.0  # the key set really uses it
    assert "CloudflareAccessAuthenticator.certs_cache_ttl is deprecated" in caplog.text
    assert "use CloudflareAccessAuthenticator.keys_cache_ttl" in caplog.text


def test_new_names_set_directly_log_nothing(caplog):
    with caplog.at_level(logging.WARNING):
        auth = CloudflareAccessAuthenticator(
            team_domain="http://127.0.0.1:9", audience=["aud"], keys_cache_ttl=5.0
        )
    assert auth.keys_cache_ttl == 5.0 and "deprecated" not in caplog.text
