"""The forged-token suite and key handling, against the real stand-in process.

The authenticator runs in this process and fetches certs and get-identity over HTTP from the
stand-in, which mints the genuine and forged tokens. Every rejection names its reason; the
token itself never reaches the log.
"""

from __future__ import annotations

import hashlib
import hmac
import logging

import cloudflare_fixtures as fixtures
import jwt
import pytest
from cloudflare_fixtures import b64, make_authenticator, payload_of, reassemble
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from jupyterhub_platform.auth.cloudflare import AccessDenied
from jupyterhub_platform.auth.jwks import fetch_json
from jupyterhub_platform.devcluster.procs import wait_for

pytestmark = pytest.mark.jh6_only

cloudflare = fixtures.cloudflare


async def rejected(auth, token: str, caplog) -> AccessDenied:
    with pytest.raises(AccessDenied) as info:
        await auth.verify_token(token)
    assert token not in caplog.text
    return info.value


async def test_genuine_token_verifies(cloudflare):
    auth = make_authenticator(cloudflare)
    claims = await auth.verify_token(await cloudflare.mint(email="alice@example.org"))
    assert claims["email"] == "alice@example.org"
    assert claims["aud"] == [cloudflare.audience]


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ({"ttl": -120}, "token expired"),  # beyond the 30 s leeway
        ({"nbf_offset": 300}, "token not yet valid"),
        ({"iss": "https://evil.cloudflareaccess.com"}, "wrong issuer"),
        ({"aud": "another-application"}, "wrong audience"),
        ({"key": "unpublished"}, "signing key not in the provider's key set"),
        ({"drop": ["exp"]}, "required claim missing"),
    ],
    ids=["expired", "not-yet-valid", "wrong-iss", "wrong-aud", "unknown-kid", "no-exp"],
)
async def test_forged_claims_are_refused(cloudflare, caplog, spec, reason):
    auth = make_authenticator(cloudflare)
    denied = await rejected(auth, await cloudflare.mint(**spec), caplog)
    assert (denied.status, denied.reason) == (403, reason)
    assert "Cloudflare Access" in denied.message


async def test_small_clock_skew_is_tolerated(cloudflare):
    auth = make_authenticator(cloudflare)
    assert await auth.verify_token(
        await cloudflare.mint(iat_offset=-100, ttl=90)
    )  # expired 10 s ago
    assert await auth.verify_token(await cloudflare.mint(nbf_offset=10))


async def test_tampered_none_and_hs256_are_refused(cloudflare, caplog):
    auth = make_authenticator(cloudflare)
    genuine = await cloudflare.mint(email="alice@example.org")
    header = jwt.get_unverified_header(genuine)

    tampered = reassemble(genuine, payload={**payload_of(genuine), "email": "bob@example.org"})
    assert (await rejected(auth, tampered, caplog)).reason == "bad signature"

    unsigned = reassemble(genuine, header={**header, "alg": "none"}).rsplit(".", 1)[0] + "."
    assert (await rejected(auth, unsigned, caplog)).reason == "algorithm not allowed"

    # Algorithm confusion: HS256 "signed" with the public key the certs endpoint publishes.
    jwk = next(k for k in (await fetch_json(auth.jwks.url))["keys"] if k["kid"] == header["kid"])
    public_pem = jwt.PyJWK(jwk).key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    signing_input = reassemble(genuine, header={**header, "alg": "HS256"}).rsplit(".", 1)[0]
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    assert (
        await rejected(auth, f"{signing_input}.{b64(mac)}", caplog)
    ).reason == "algorithm not allowed"

    assert (await rejected(auth, "not-a-jwt", caplog)).reason == "malformed token"


async def test_remembered_token_still_expires(cloudflare, caplog):
    auth = make_authenticator(cloudflare, leeway=0.0)
    token = await cloudflare.mint(email="alice@example.org", ttl=2)
    assert await auth.verify_token(token)
    assert auth.verified.get(token) is not None  # remembered: the next request skips the RSA check
    assert await auth.verify_token(token)
    await wait_for(
        lambda: not auth.verified.get(token), timeout=10, what="the remembered token's exp"
    )
    assert (await rejected(auth, token, caplog)).reason == "token expired"


async def test_scheduled_rotation_overlap_then_retirement(cloudflare, caplog):
    auth = make_authenticator(cloudflare)
    old = await cloudflare.mint(email="alice@example.org")
    assert await auth.verify_token(old)

    kids = await cloudflare.rotate(keep_previous=True)
    new = await cloudflare.mint(email="alice@example.org")
    assert jwt.get_unverified_header(new)["kid"] == kids["current"]
    # unknown kid -> refetch (at most every keys_min_refetch_interval) -> picked up
    await wait_for(lambda: _verifies(auth, new), timeout=10, what="the new key picked up")
    assert await auth.verify_token(old)  # the previous key stays valid during the overlap
    assert auth.jwks.kids == {kids["current"], kids["previous"]}

    await cloudflare.retire_previous()
    await auth.jwks.refresh(force=True)  # the hourly refetch, brought forward
    assert (await rejected(auth, old, caplog)).reason == "signing key not in the provider's key set"
    assert await auth.verify_token(new)


async def test_manual_rotation_revokes_the_old_key(cloudflare, caplog):
    auth = make_authenticator(cloudflare, keys_min_refetch_interval=0.0)
    old = await cloudflare.mint(email="alice@example.org")
    assert await auth.verify_token(old)
    await cloudflare.rotate(keep_previous=False)
    new = await cloudflare.mint(email="alice@example.org")
    assert await auth.verify_token(new)
    assert (await rejected(auth, old, caplog)).reason == "signing key not in the provider's key set"


async def test_unknown_kid_refetches_are_rate_limited(cloudflare, caplog):
    auth = make_authenticator(cloudflare, keys_min_refetch_interval=3600)
    assert await auth.verify_token(await cloudflare.mint())
    before = (await cloudflare.stats())["calls"]["certs"]
    for _ in range(5):
        await rejected(auth, await cloudflare.mint(key="unpublished"), caplog)
    assert (await cloudflare.stats())["calls"]["certs"] == before  # no JWKS hammering


async def test_certs_down_cached_keys_work_fresh_kid_fails_closed(cloudflare, caplog):
    auth = make_authenticator(cloudflare, keys_min_refetch_interval=0.0)
    token = await cloudflare.mint(email="alice@example.org")
    assert await auth.verify_token(token)
    await cloudflare.outage(certs=True)
    await cloudflare.rotate(keep_previous=True)
    with caplog.at_level(logging.WARNING):
        assert await auth.verify_token(token)  # cached key
        fresh = await cloudflare.mint(email="alice@example.org")
        assert (
            await rejected(auth, fresh, caplog)
        ).reason == "signing key not in the provider's key set"
    assert "serving cached keys" in caplog.text

    await cloudflare.outage(certs=False)
    assert await wait_for(lambda: _verifies(auth, fresh), timeout=10, what="fresh key picked up")


async def _verifies(auth, token: str) -> bool:
    try:
        return bool(await auth.verify_token(token))
    except AccessDenied:
        return False


async def test_no_keys_ever_fetched_fails_closed(cloudflare, caplog):
    await cloudflare.outage(certs=True)
    auth = make_authenticator(cloudflare)
    denied = await rejected(auth, await cloudflare.mint(), caplog)
    assert (denied.status, denied.reason) == (503, "signing keys unavailable")
