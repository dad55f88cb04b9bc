"""The s3-sts provider end to end: our verifier, the real STS + S3 stand-in (moto's server with
IAM auth on) over HTTP, and boto3 using the issued keys."""

from __future__ import annotations

import time

import boto3
import botocore.exceptions
import pytest

from jupyterhub_platform.auth.subject_binding import BINDING_KEY
from jupyterhub_platform.auth.token_verifier import TokenVerifier
from jupyterhub_platform.services.credentials.model import IssueContext, IssueError, Subject
from jupyterhub_platform.services.credentials.providers.s3_sts import S3STSProvider
from jupyterhub_platform.services.credentials.transport import http_fetch
from jupyterhub_platform.testing import new_rsa_key

pytestmark = pytest.mark.processes


async def no_secrets(name: str):
    raise AssertionError("s3-sts reads no Secret")


def provider(store, **config) -> S3STSProvider:
    settings = {
        "sts_endpoint": store.url, "s3_endpoint": store.url, "role_arn": store.role_arn,
        "region": store.region, "duration": "15m", **config,
    }  # fmt: skip
    return S3STSProvider(settings, ("credential_sets", "research-s3", "config"))


def context(issuer) -> IssueContext:
    fetch = http_fetch(timeout=10)
    verifier = TokenVerifier(issuer.issuer, issuer.client_id, fetch)
    return IssueContext(fetch=fetch, read_secret=no_secrets, verify_token=verifier, now=time.time)


def subject(issuer, **tokens) -> Subject:
    state = {BINDING_KEY: {"iss": issuer.issuer, "sub": "alice"}, **tokens}
    return Subject("alice@example.org", frozenset({"researchers"}), state)


def s3(issued, **override):
    v = {**issued.values, **override}
    return boto3.client(
        "s3", endpoint_url=v["endpoint_url"], region_name=v["region"],
        aws_access_key_id=v["aws_access_key_id"], aws_secret_access_key=v["aws_secret_access_key"],
        aws_session_token=v["aws_session_token"],
    )  # fmt: skip


async def test_issued_keys_work_with_boto3_and_wrong_ones_do_not(store, issuer):
    before, token = time.time(), issuer.mint()
    issued = await provider(store).issue(subject(issuer, id_token=token), context(issuer))
    assert token not in store.proc.log_path.read_text()  # the store logs the action, not the token
    assert set(issued.values) == {
        "aws_access_key_id", "aws_secret_access_key", "aws_session_token", "expiration",
        "endpoint_url", "region",
    }  # fmt: skip
    assert issued.values["aws_access_key_id"].startswith("ASIA")  # a temporary (session) key
    assert before - 1 <= issued.issued_at <= time.time()
    assert issued.expires_at == pytest.approx(issued.issued_at + 900, abs=5)  # duration 15m
    assert issued.values["endpoint_url"] == store.url and issued.values["region"] == "us-east-1"

    client = s3(issued)
    client.put_object(Bucket=store.bucket, Key="alice/result.csv", Body=b"a,b\n1,2\n")
    got = client.get_object(Bucket=store.bucket, Key="alice/result.csv")["Body"].read()
    assert got == b"a,b\n1,2\n"

    with pytest.raises(botocore.exceptions.ClientError) as wrong:
        s3(issued, aws_secret_access_key="x" * 40).get_object(Bucket=store.bucket, Key="k")
    assert wrong.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    unknown = {"aws_access_key_id": "ASIAUNKNOWN000000000", "aws_session_token": "t"}
    with pytest.raises(botocore.exceptions.ClientError) as nobody:
        s3(issued, **unknown).get_object(Bucket=store.bucket, Key="k")
    assert nobody.value.response["Error"]["Code"] == "InvalidAccessKeyId"


async def test_the_session_is_named_after_the_user(store, issuer):
    issued = await provider(store).issue(subject(issuer, id_token=issuer.mint()), context(issuer))
    sts = boto3.client(
        "sts", endpoint_url=store.url, region_name=store.region,
        aws_access_key_id=issued.values["aws_access_key_id"],
        aws_secret_access_key=issued.values["aws_secret_access_key"],
        aws_session_token=issued.values["aws_session_token"],
    )  # fmt: skip
    assert sts.get_caller_identity()["Arn"].endswith("/jupyter-research/alice@example.org")


def forged(issuer) -> str:
    return issuer.mint(key=new_rsa_key())  # the published kid, another key


@pytest.mark.parametrize(
    ("token", "reason", "message"),
    [
        (forged, "token_invalid", "the id_token was refused: bad signature"),
        (lambda i: i.mint(exp=int(time.time()) - 120), "token_expired",
         "the id_token has expired; log in again"),
        (lambda i: i.mint(exp=int(time.time()) + 10), "token_expired",
         "the id_token has expired or is about to; log in again"),
        (lambda i: i.mint(aud="another-client"), "token_invalid",
         "the id_token was refused: wrong audience"),
        (lambda i: i.mint(iss="https://elsewhere.example.org"), "token_invalid",
         "the id_token was refused: wrong issuer"),
        (lambda i: i.mint(sub="mallory"), "token_invalid",
         "the id_token is not alice@example.org's (another sub)"),
        (lambda i: "not-a-jwt", "token_invalid", "the id_token was refused: malformed token"),
    ],
    ids=["forged", "expired", "expiring", "wrong-audience", "wrong-issuer", "other-sub", "junk"],
)  # fmt: skip
async def test_bad_tokens_are_refused_before_the_sts_sees_them(
    store, issuer, token, reason, message
):
    seen = store.assume_requests()
    bad = token(issuer)
    with pytest.raises(IssueError) as refused:
        await provider(store).issue(subject(issuer, id_token=bad), context(issuer))
    assert (refused.value.reason, refused.value.message) == (reason, message)
    assert bad not in str(refused.value)
    assert store.assume_requests() == seen  # the STS never saw the token


async def test_no_token_in_the_login_state(store, issuer):
    with pytest.raises(IssueError) as missing:
        await provider(store).issue(subject(issuer), context(issuer))
    assert missing.value.reason == "no_token"
    assert missing.value.message == "no id_token in alice@example.org's login state (log in again)"


async def test_an_opaque_access_token_is_verified_at_userinfo(store, issuer):
    issuer.userinfo["opaque-123"] = {"sub": "alice"}
    ctx = context(issuer)
    seen = store.assume_requests()
    issued = await provider(store, token="access_token").issue(
        subject(issuer, access_token="opaque-123"), ctx
    )
    assert issued.values["aws_session_token"] and store.assume_requests() == seen + 1
    with pytest.raises(IssueError) as refused:
        await provider(store, token="access_token").issue(
            subject(issuer, access_token="revoked-456"), ctx
        )
    assert refused.value.reason == "token_invalid"
    assert refused.value.message == "the issuer refused the access_token (HTTP 401)"
    assert store.assume_requests() == seen + 1


async def test_an_unreachable_sts_is_unavailable(issuer):
    from jupyterhub_platform.devcluster.procs import free_port

    config = {"sts_endpoint": f"http://127.0.0.1:{free_port()}", "region": "us-east-1",
              "role_arn": "arn:aws:iam::123456789012:role/r"}  # fmt: skip
    gone = S3STSProvider(config, ("config",))
    with pytest.raises(IssueError) as unavailable:
        await gone.issue(subject(issuer, id_token=issuer.mint()), context(issuer))
    assert unavailable.value.reason == "upstream_unavailable"
    assert unavailable.value.message.startswith("cannot reach http://127.0.0.1:")
