"""Who a Cloudflare token names and which groups it carries: pure rules, then get-identity live."""

from __future__ import annotations

import logging

import cloudflare_fixtures as fixtures
import pytest
from cloudflare_fixtures import make_authenticator

from jupyterhub_platform.auth.cloudflare import AccessDenied
from jupyterhub_platform.auth.cloudflare_get_identity import TTLCache
from jupyterhub_platform.auth.cloudflare_identity import (
    Identity,
    IdentityRefused,
    check_service_tokens,
    group_names,
    groups_at,
    identity_from_claims,
)

cloudflare = fixtures.cloudflare

SERVICE = {"ci-client.access": {"name": "ci-bot", "groups": ["researchers"]}}


def identity(claims: dict, **kwargs) -> Identity:
    options = {"username_rule": "email", "allow_service_tokens": False, "service_tokens": SERVICE}
    return identity_from_claims(claims, **{**options, **kwargs})


def test_users_are_named_by_email():
    assert identity({"email": "Alice@Example.org"}) == Identity("Alice@Example.org")
    assert identity({"email": "alice@example.org"}, username_rule="local-part") == Identity("alice")
    for bad in ("alice", "a@b@c", "@example.org", "alice@", 42):
        with pytest.raises(IdentityRefused, match="not an email address"):
            identity({"email": bad})


def test_service_tokens_need_permission_and_a_mapping():
    token = {"common_name": "ci-client.access", "sub": ""}
    with pytest.raises(IdentityRefused, match="service tokens may not log in"):
        identity(token)
    assert identity(token, allow_service_tokens=True) == Identity("ci-bot", True, ("researchers",))
    with pytest.raises(IdentityRefused, match="'other.access' is not mapped"):
        identity({"common_name": "other.access"}, allow_service_tokens=True)
    with pytest.raises(IdentityRefused, match="carries no email claim"):
        identity({"sub": "1234"}, allow_service_tokens=True)


def test_bad_service_token_mapping_is_named():
    check_service_tokens(SERVICE)
    with pytest.raises(ValueError, match=r"service_tokens\['x'\] must be"):
        check_service_tokens({"x": "ci-bot"})
    with pytest.raises(ValueError, match=r"\['groups'\] must be a list"):
        check_service_tokens({"x": {"name": "ci-bot", "groups": "researchers"}})
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['admin'\]"):
        check_service_tokens({"x": {"name": "ci-bot", "admin": True}})


def test_group_shapes():
    objects = [{"id": "1", "name": "researchers", "email": "r@x"}, {"id": "2"}, "students", 7]
    assert group_names(objects, "name") == ["researchers", "students"]
    assert group_names("staff", "name") == ["staff"]
    assert group_names({"name": "staff"}, "name") == ["staff"]
    document = {"groups": [], "oidc_fields": {"groups": ["a", "b"]}, "custom": {"teams": "c"}}
    assert groups_at(document, [("oidc_fields", "groups"), ("custom", "teams")], "name") == [
        "a",
        "b",
        "c",
    ]
    assert groups_at(document, [("groups",)], "name") == []  # present, empty
    assert groups_at(document, [("missing",)], "name") is None  # absent: ask get-identity


def test_ttl_cache_expires_and_prunes():
    now = [0.0]
    cache = TTLCache(10, clock=lambda: now[0])
    cache.put("a", ["x"])
    now[0] = 9.9
    assert cache.get("a") == ["x"]
    now[0] = 10
    assert cache.get("a") is None
    cache.put("b", [], ttl=1)
    assert cache.get("b") == [] and len(cache._entries) == 1
    now[0] = 11
    assert cache.get("b") is None


# --- against the stand-in: tokens and get-identity over HTTP ---------------------------------


async def test_groups_from_get_identity_cached_per_nonce(cloudflare):
    auth = make_authenticator(cloudflare)
    token = await cloudflare.mint(email="bob@example.org", identity_nonce="n-1")
    claims = await auth.verify_token(token)
    bob = auth.identity(claims)
    assert bob == Identity("bob@example.org")
    before = (await cloudflare.stats())["calls"]["identity"]
    assert await auth.groups(bob, claims, token) == ["platform-admins", "researchers"]
    again = await cloudflare.mint(email="bob@example.org", identity_nonce="n-1")  # same session
    assert await auth.groups(bob, await auth.verify_token(again), again) == [
        "platform-admins",
        "researchers",
    ]
    assert (await cloudflare.stats())["calls"]["identity"] == before + 1

    other = await cloudflare.mint(email="bob@example.org", identity_nonce="n-2")  # a new login
    await auth.groups(bob, await auth.verify_token(other), other)
    assert (await cloudflare.stats())["calls"]["identity"] == before + 2


async def test_groups_from_a_token_claim_skip_get_identity(cloudflare):
    auth = make_authenticator(cloudflare, groups_claim=["custom.groups"])
    token = await cloudflare.mint(
        email="dave@example.org", claims={"custom": {"groups": ["students"]}}
    )
    claims = await auth.verify_token(token)
    before = (await cloudflare.stats())["calls"]["identity"]
    assert await auth.groups(auth.identity(claims), claims, token) == ["students"]
    assert (await cloudflare.stats())["calls"]["identity"] == before


async def test_configurable_identity_path(cloudflare):
    auth = make_authenticator(cloudflare, identity_groups_claim=["oidc_fields.groups"])
    await cloudflare.set_user("erin@example.org", [], {"oidc_fields": {"groups": ["/researchers"]}})
    token = await cloudflare.mint(email="erin@example.org")
    claims = await auth.verify_token(token)
    groups = await auth.groups(auth.identity(claims), claims, token)
    assert groups == ["/researchers"]
    assert auth.policy.resolve(groups).login_allowed  # normalised by the policy


async def test_get_identity_down_denies_by_default(cloudflare, caplog):
    await cloudflare.outage(identity=True)
    token = await cloudflare.mint(email="alice@example.org")
    deny = make_authenticator(cloudflare)
    claims = await deny.verify_token(token)
    with pytest.raises(AccessDenied) as info:
        await deny.groups(deny.identity(claims), claims, token)
    assert (info.value.status, info.value.reason) == (503, "get-identity unavailable")
    assert "get-identity answered 503" in caplog.text and token not in caplog.text

    lenient = make_authenticator(cloudflare, identity_unavailable="no-groups")
    assert await lenient.groups(lenient.identity(claims), claims, token) == []
    assert not lenient.apply_policy({"name": "alice@example.org"}, [])["entitlements"].login_allowed


async def test_token_expired_inside_the_leeway_is_refused_as_expired(cloudflare, caplog):
    """The hub tolerates 30 s of skew; get-identity does not: that is an expired token, not an outage."""
    auth = make_authenticator(cloudflare)
    token = await cloudflare.mint(
        email="alice@example.org", iat_offset=-100, ttl=90
    )  # exp 10 s ago
    claims = await auth.verify_token(token)
    with caplog.at_level(logging.INFO), pytest.raises(AccessDenied) as info:
        await auth.groups(auth.identity(claims), claims, token)
    assert (info.value.status, info.value.reason) == (403, "token expired")
    assert "reload the page to sign in again" in info.value.message
    assert "get-identity refused the token (400)" in caplog.text and token not in caplog.text


async def test_missing_email_and_service_tokens(cloudflare):
    auth = make_authenticator(cloudflare)
    no_email = await auth.verify_token(await cloudflare.mint(drop=["email"]))
    with pytest.raises(AccessDenied, match="carries no email claim"):
        auth.identity(no_email)

    service = await auth.verify_token(await cloudflare.mint(common_name="ci-client.access"))
    with pytest.raises(AccessDenied, match="service tokens may not log in"):
        auth.identity(service)
    allowed = make_authenticator(cloudflare, allow_service_tokens=True, service_tokens=SERVICE)
    bot = allowed.identity(service)
    assert bot == Identity("ci-bot", True, ("researchers",))
    assert await allowed.groups(bot, service, "unused") == ["researchers"]
