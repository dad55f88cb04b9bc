"""The forged-token suite and discovery, against a real provider process and a key-holding issuer.

Each case states the token, the expected outcome and the logged reason; logs never contain the
token itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging

import jwt
import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from oidc_test_issuer import StaticIssuer
from traitlets.config import Config

from jupyterhub_platform.auth import jwks
from jupyterhub_platform.auth.jwks import JWKSCache, fetch_json
from jupyterhub_platform.auth.oidc import OIDCAuthenticator
from jupyterhub_platform.testing import CLIENT_ID, new_rsa_key, shipped_policy_file

pytestmark = pytest.mark.jh6_only


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segments(token: str) -> tuple[dict, dict, str]:
    header, payload, signature = token.split(".")
    pad = lambda s: s + "=" * (-len(s) % 4)  # noqa: E731
    return (
        json.loads(base64.urlsafe_b64decode(pad(header))),
        json.loads(base64.urlsafe_b64decode(pad(payload))),
        signature,
    )


def assemble(header: dict, payload: dict, signature: str) -> str:
    return ".".join(
        [b64(json.dumps(header).encode()), b64(json.dumps(payload).encode()), signature]
    )


class CountingFetch:
    def __init__(self):
        self.calls = 0

    async def __call__(self, url: str) -> dict:
        self.calls += 1
        return await fetch_json(url)


def authenticator(issuer: str, **traits) -> OIDCAuthenticator:
    c = Config()
    c.PlatformPolicy.policy_file = str(shipped_policy_file())
    c.OIDCAuthenticator.issuer = issuer
    c.OIDCAuthenticator.client_id = CLIENT_ID
    c.OIDCAuthenticator.client_secret = "x"
    for name, value in traits.items():
        setattr(c.OIDCAuthenticator, name, value)
    return OIDCAuthenticator(config=c)


async def verify(cache: JWKSCache, token: str, issuer: str, **kwargs) -> dict:
    return await cache.verify(
        token, issuer=issuer, audience=CLIENT_ID, authorized_party=CLIENT_ID, **kwargs
    )


# --- against the real provider: its own keys, its own tokens ---------------------------------


async def test_provider_token_verifies_and_forgeries_fail(provider):
    tokens = await provider.code_flow("alice", nonce="n-1")
    id_token = tokens["id_token"]
    fetch = CountingFetch()
    now = [0.0]
    cache = JWKSCache(
        f"{provider.issuer}/jwks", fetch=fetch, min_refetch_interval=60, clock=lambda: now[0]
    )

    claims = await verify(cache, id_token, provider.issuer, nonce="n-1")
    assert claims["sub"] == "alice" and claims["groups"] == ["researchers"]

    header, payload, signature = segments(id_token)
    provider_jwk = (await fetch_json(f"{provider.issuer}/jwks"))["keys"][0]
    public_pem = jwt.PyJWK(provider_jwk).key.public_bytes(
        Encoding.PEM, PublicFormat.SubjectPublicKeyInfo
    )
    hs_header = {**header, "alg": "HS256"}
    signing_input = f"{b64(json.dumps(hs_header).encode())}.{b64(json.dumps(payload).encode())}"
    hs256_token = f"{signing_input}.{b64(hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest())}"
    cases = [
        ("wrong nonce", id_token, {"nonce": "n-2"}, jwks.WrongNonce),
        (
            "tampered payload",
            assemble(header, {**payload, "groups": ["platform-admins"]}, signature),
            {},
            jwks.BadSignature,
        ),
        (
            "alg=none",
            assemble({**header, "alg": "none"}, payload, ""),
            {},
            jwks.DisallowedAlgorithm,
        ),
        ("HS256 signed with the public key", hs256_token, {}, jwks.DisallowedAlgorithm),
        (
            "unknown kid",
            jwt.encode(payload, new_rsa_key(), algorithm="RS256", headers={"kid": "attacker"}),
            {},
            jwks.UnknownKey,
        ),
        (
            "known kid, other key",
            jwt.encode(
                payload, new_rsa_key(), algorithm="RS256", headers={"kid": provider_jwk["kid"]}
            ),
            {},
            jwks.BadSignature,
        ),
        ("not a JWT", "not.a.jwt", {}, jwks.MalformedToken),
        ("two parts", id_token.rsplit(".", 1)[0], {}, jwks.MalformedToken),
        ("header not an object", assemble([1], payload, signature), {}, jwks.MalformedToken),
        ("header not base64url", "%%%." + id_token.split(".", 1)[1], {}, jwks.MalformedToken),
        (
            "payload not JSON",
            f"{id_token.split('.')[0]}.{b64(b'{oops')}.{signature}",
            {},
            jwks.BadSignature,
        ),
    ]
    now[0] = 100.0  # past min_refetch_interval: the first unknown kid may trigger a refetch
    for name, token, kwargs, expected in cases:
        with pytest.raises(expected):
            await verify(cache, token, provider.issuer, **kwargs)
            pytest.fail(f"{name} verified")
    # the provider's own token, verified by a hub expecting another issuer or audience
    with pytest.raises(jwks.WrongAudience):
        await cache.verify(id_token, issuer=provider.issuer, audience="another-client")
    with pytest.raises(jwks.WrongIssuer):
        await verify(cache, id_token, "http://evil.example")
    another_kid = jwt.encode(
        payload, new_rsa_key(), algorithm="RS256", headers={"kid": "attacker-2"}
    )
    with pytest.raises(jwks.UnknownKey):
        await verify(cache, another_kid, provider.issuer)
    # one fetch to load the keys, one refetch for the first unknown kid, none for the second
    assert fetch.calls == 2


def test_symmetric_or_none_algorithms_cannot_be_allowed():
    for bad in (["HS256"], ["none"], ["RS256", "HS512"], []):
        with pytest.raises(ValueError, match="asymmetric|subset"):
            jwks.check_algorithms(bad)


async def test_key_rotation_new_kid_accepted_after_refetch(provider):
    fetch = CountingFetch()
    cache = JWKSCache(f"{provider.issuer}/jwks", fetch=fetch, min_refetch_interval=0)
    old = (await provider.code_flow("alice"))["id_token"]
    await verify(cache, old, provider.issuer)
    old_kids = cache.kids

    await provider.restart()  # the provider now signs with a new key
    new = (await provider.code_flow("alice"))["id_token"]
    claims = await verify(cache, new, provider.issuer)
    assert claims["sub"] == "alice"
    assert cache.kids != old_kids and fetch.calls == 2


async def test_cached_keys_served_while_jwks_endpoint_down(provider):
    cache = JWKSCache(f"{provider.issuer}/jwks", ttl=0, min_refetch_interval=0)
    token = (await provider.code_flow("alice"))["id_token"]
    await verify(cache, token, provider.issuer)
    await provider.stop()
    assert (await verify(cache, token, provider.issuer))["sub"] == "alice"  # stale but served

    empty = JWKSCache(f"{provider.issuer}/jwks")
    with pytest.raises(jwks.KeySetUnavailable, match="cannot fetch JWKS"):
        await verify(empty, token, provider.issuer)


# --- tokens with trusted signatures but bad claims (minted with a key our issuer publishes) ----


@pytest.mark.parametrize(
    ("case", "overrides", "nonce", "reason"),
    [
        ("expired", {"exp": -600}, "the-nonce", "token expired"),
        ("not yet valid", {"nbf": 600}, "the-nonce", "token not yet valid"),
        ("issued in the future", {"iat": 600}, "the-nonce", "token not yet valid"),
        ("wrong iss", {"iss": "http://evil.example"}, "the-nonce", "wrong issuer"),
        ("wrong aud", {"aud": "another-client"}, "the-nonce", "wrong audience"),
        ("foreign azp", {"aud": [CLIENT_ID, "x"], "azp": "x"}, "the-nonce", "wrong audience"),
        ("several aud, no azp", {"aud": [CLIENT_ID, "x"]}, "the-nonce", "wrong audience"),
        ("wrong nonce", {}, "another-nonce", "wrong nonce"),
        ("no exp", {"exp": None}, "the-nonce", "required claim missing"),
    ],
)
async def test_forged_claims_rejected_and_reason_logged(case, overrides, nonce, reason, caplog):
    with StaticIssuer(CLIENT_ID) as issuer:
        auth = authenticator(issuer.issuer, leeway=30)
        now_relative = {
            k: (v + issuer.claims()["iat"] if k in ("exp", "nbf", "iat") and v is not None else v)
            for k, v in overrides.items()
        }
        token = issuer.mint(**now_relative)
        caplog.set_level(logging.INFO)
        with pytest.raises(Exception) as raised:
            await auth.verify_id_token(token, nonce=nonce)
        assert getattr(raised.value, "status_code", None) == 403, case
        assert reason in caplog.text, case
        assert token not in caplog.text and token.split(".")[1] not in caplog.text

        ok = issuer.mint()
        assert (await auth.verify_id_token(ok, nonce="the-nonce"))["sub"] == "alice"


async def test_leeway_tolerates_small_skew():
    with StaticIssuer(CLIENT_ID) as issuer:
        auth = authenticator(issuer.issuer, leeway=30)
        now = issuer.claims()["iat"]
        token = issuer.mint(exp=now - 10, iat=now - 310, nbf=now + 10)
        assert (await auth.verify_id_token(token, nonce="the-nonce"))["sub"] == "alice"


# --- discovery ---------------------------------------------------------------------------------


async def test_discovery_sets_endpoints(provider):
    auth = authenticator(provider.issuer)
    await auth.provider_metadata()
    assert auth.authorize_url == f"{provider.issuer}/oauth2/authorize"
    assert auth.token_url == f"{provider.issuer}/oauth2/token"
    assert auth.userdata_url == f"{provider.issuer}/userinfo"
    assert auth.jwks.url == f"{provider.issuer}/jwks"
    assert auth.metadata.end_session_endpoint == f"{provider.issuer}/oauth2/end_session"


def test_second_source_of_truth_refused(provider):
    with pytest.raises(ValueError, match="admin_users cannot be used"):
        authenticator(provider.issuer, admin_users={"mallory"})


async def test_kid_less_token_after_key_rotation_accepted_after_one_refetch():
    """Providers publishing one key may omit ``kid`` (oidc-provider-mock 0.3.x does): after a
    rotation the new token must not read as a bad signature against the cached old key."""
    with StaticIssuer(CLIENT_ID) as issuer:
        fetch = CountingFetch()
        now = [0.0]
        cache = JWKSCache(
            f"{issuer.issuer}/jwks", fetch=fetch, min_refetch_interval=60, clock=lambda: now[0]
        )
        await verify(cache, issuer.mint(with_kid=False), issuer.issuer, nonce="the-nonce")

        issuer.key, issuer.kid = new_rsa_key(), "test-key-2"  # rotated
        now[0] = 100.0
        rotated = issuer.mint(with_kid=False)
        assert (await verify(cache, rotated, issuer.issuer, nonce="the-nonce"))["sub"] == "alice"
        assert fetch.calls == 2

        forged = issuer.mint(key=new_rsa_key(), with_kid=False)  # within the refetch interval
        with pytest.raises(jwks.BadSignature):
            await verify(cache, forged, issuer.issuer)
        assert fetch.calls == 2  # a stream of kid-less forgeries costs no refetches
