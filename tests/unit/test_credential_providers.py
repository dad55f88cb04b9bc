"""The four providers: their config checks (exact messages, field paths under the set's
config), what each issues, and the STS's answers parsed without echoing the token.

The I/O is the :class:`IssueContext` the hub hands in; here it serves fixed answers (the real
STS, issuer and verifier are in tests/credentials/)."""

from __future__ import annotations

import pytest

from jupyterhub_platform.auth.subject_binding import BINDING_KEY
from jupyterhub_platform.services.credentials.model import IssueContext, IssueError, Subject
from jupyterhub_platform.services.credentials.providers import installed, load_provider
from jupyterhub_platform.services.credentials.providers.oidc_token import OIDCTokenProvider
from jupyterhub_platform.services.credentials.providers.s3_sts import (
    S3STSProvider,
    parse_response,
    session_name,
)
from jupyterhub_platform.services.credentials.providers.secret import SecretProvider
from jupyterhub_platform.services.credentials.providers.template import TemplateProvider
from jupyterhub_platform.validate import Invalid

AT = ("credential_sets", "s", "config")
NOW = 1_800_000_000.0
S3 = {"role_arn": "arn:aws:iam::123456789012:role/research", "region": "eu-west-1"}


def test_the_installed_providers_are_the_four_shipped_ones():
    assert sorted(installed()) == ["oidc-token", "s3-sts", "secret", "template"]
    provider = load_provider("s3-sts", S3, ("credential_sets", "s"))
    assert isinstance(provider, S3STSProvider) and provider.at == AT


def test_a_registered_class_must_be_a_provider():
    with pytest.raises(Invalid) as e:
        load_provider("odd", {}, ("credential_sets", "s"), {"odd": dict})
    assert e.value.problems == (
        (("credential_sets", "s", "provider"), "provider 'odd' is not a Provider class"),
    )


CONFIG_ERRORS = [
    (SecretProvider, {}, [(("secret",), "required field is missing"), (("keys",), "required field is missing")]),
    (SecretProvider, {"secret": "Bad_Name", "keys": []},
     [(("secret",), "'Bad_Name' is not a valid Secret name (lowercase letters, digits, '-' and '.')"),
      (("keys",), "must name at least one key")]),
    (SecretProvider, {"secret": "s", "keys": ["ok", "a.b"]},
     [(("keys", 1), "'a.b' is not a valid key (letters, digits, '-' and '_', at most 63; no dots)")]),
    (TemplateProvider, {"values": {}}, [(("values",), "must be a mapping of key -> template, got a mapping")]),
    (TemplateProvider, {"values": {"k": "{username.__class__}"}},
     [(("values", "k"), "unknown placeholder {username.__class__} (known: {groups}, {username})")]),
    (TemplateProvider, {"values": {"k": "{0}"}}, [(("values", "k"), "unknown placeholder {0} (known: {groups}, {username})")]),
    (TemplateProvider, {"values": {"k": "a {"}},
     [(("values", "k"), "is not a valid template: Single '{' encountered in format string (write {{ and }} for braces)")]),
    (TemplateProvider, {"values": {"k": 3}}, [(("values", "k"), "must be a string (quote it in YAML), got int 3")]),
    (OIDCTokenProvider, {"token": "refresh_token"},
     [(("token",), "must be one of id_token, access_token, got 'refresh_token'")]),
    (S3STSProvider, {**S3, "duration": "13h"}, [(("duration",), "must be at most 12h (AWS's maximum session), got '13h'")]),
    (S3STSProvider, {**S3, "duration": "soon"},
     [(("duration",), "expected a positive duration (seconds, or like 30m, 8h, 1h30m, 2d), got 'soon'")]),
    (S3STSProvider, {**S3, "sts_endpoint": "sts.example.org"},
     [(("sts_endpoint",), "must be an http(s) URL, got the string 'sts.example.org'")]),
    (S3STSProvider, {**S3, "role_arn": "arn:aws:iam::123:role/x", "region": "EU"},
     [(("role_arn",), "'arn:aws:iam::123:role/x' is not a valid IAM role ARN"),
      (("region",), "'EU' is not a valid slug (lowercase letters, digits and '-', max 63)")]),
    (S3STSProvider, {**S3, "bucket": "b"},
     [(("bucket",), "unknown field (allowed: duration, region, role_arn, s3_endpoint, sts_endpoint, token)")]),
]  # fmt: skip


@pytest.mark.parametrize(("cls", "config", "problems"), CONFIG_ERRORS)
def test_config_errors_are_reported_under_the_config(cls, config, problems):
    with pytest.raises(Invalid) as e:
        cls(config, AT)
    assert e.value.problems == tuple(((*AT, *path), reason) for path, reason in problems)


def test_s3_defaults_are_aws_in_the_region():
    p = S3STSProvider(S3, AT)
    assert (p.sts_endpoint, p.s3_endpoint) == (
        "https://sts.eu-west-1.amazonaws.com", "https://s3.eu-west-1.amazonaws.com",
    )  # fmt: skip
    assert (p.duration, p.kind) == (3600, "id_token")


@pytest.mark.parametrize(
    ("username", "session"),
    [("alice", "alice"), ("a", "a_"), ("jo smith/ü", "jo-smith--"), ("x" * 80, "x" * 64),
     ("bob+tag@example.org", "bob+tag@example.org")],
)  # fmt: skip
def test_session_names_are_what_aws_allows(username, session):
    assert session_name(username) == session


def ctx(*, secrets=None, claims=None, sts=None) -> IssueContext:
    async def fetch(method, url, headers, body):
        fetch.calls.append((method, url, headers, body))
        return sts

    async def read_secret(name):
        if name not in (secrets or {}):
            raise IssueError("source_missing", f"no Secret {name} in namespace hub")
        return secrets[name]

    async def verify_token(kind, token):
        if claims is None:
            raise IssueError("token_invalid", f"the {kind} was refused: bad signature")
        return claims

    fetch.calls = []
    return IssueContext(
        fetch=fetch, read_secret=read_secret, verify_token=verify_token, now=lambda: NOW
    )


ALICE = Subject("alice", frozenset({"students", "course-101"}),
                {"id_token": "the.id.token", "access_token": "opaque", BINDING_KEY: {"iss": "i", "sub": "a-1"}})  # fmt: skip


async def test_template_fills_username_and_sorted_groups():
    p = TemplateProvider({"values": {"uri": "https://t.example.org/{username}", "who": "{groups}",
                                     "braces": "{{literal}}"}}, AT)  # fmt: skip
    issued = await p.issue(ALICE, ctx())
    assert dict(issued.values) == {
        "uri": "https://t.example.org/alice", "who": "course-101,students", "braces": "{literal}",
    }  # fmt: skip
    assert (issued.issued_at, issued.expires_at, p.keys) == (NOW, None, ("uri", "who", "braces"))


async def test_secret_gives_the_named_keys_only():
    p = SecretProvider({"secret": "course-materials", "keys": ["access_key_id", "secret"]}, AT)
    data = {"access_key_id": "AK", "secret": "S", "other": "not listed"}
    issued = await p.issue(ALICE, ctx(secrets={"course-materials": data}))
    assert (
        dict(issued.values) == {"access_key_id": "AK", "secret": "S"} and issued.expires_at is None
    )
    with pytest.raises(IssueError) as e:
        await p.issue(ALICE, ctx(secrets={"course-materials": {"secret": "S"}}))
    assert (e.value.reason, e.value.message) == (
        "source_missing",
        "Secret course-materials has no key access_key_id",
    )
    with pytest.raises(IssueError) as e:
        await p.issue(ALICE, ctx())
    assert e.value.message == "no Secret course-materials in namespace hub"


async def test_oidc_token_hands_out_the_verified_token():
    issued = await OIDCTokenProvider({}, AT).issue(
        ALICE, ctx(claims={"sub": "a-1", "exp": NOW + 600})
    )
    assert dict(issued.values) == {"token": "opaque", "expiration": "2027-01-15T08:10:00Z"}
    assert issued.expires_at == NOW + 600
    opaque = await OIDCTokenProvider({"token": "id_token"}, AT).issue(
        ALICE, ctx(claims={"sub": "a-1"})
    )
    assert (
        dict(opaque.values) == {"token": "the.id.token", "expiration": ""}
        and opaque.expires_at is None
    )


async def test_oidc_token_of_another_subject_is_refused():
    with pytest.raises(IssueError) as e:
        await OIDCTokenProvider({}, AT).issue(ALICE, ctx(claims={"sub": "someone-else"}))
    assert (e.value.reason, e.value.message) == (
        "token_invalid",
        "the access_token is not alice's (another sub)",
    )


async def test_an_unverified_token_is_never_sent():
    context = ctx(claims=None)
    with pytest.raises(IssueError) as e:
        await S3STSProvider(S3, AT).issue(ALICE, context)
    assert e.value.reason == "token_invalid" and context.fetch.calls == []


SUCCESS = b"""<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
<AssumeRoleWithWebIdentityResult><Credentials><AccessKeyId>ASIAEXAMPLE</AccessKeyId>
<SecretAccessKey>secret</SecretAccessKey><SessionToken>session</SessionToken>
<Expiration>2027-01-15T09:00:00Z</Expiration></Credentials></AssumeRoleWithWebIdentityResult>
</AssumeRoleWithWebIdentityResponse>"""
REFUSED = b"""<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>
<Code>InvalidIdentityToken</Code><Message>Token the.id.token is not trusted</Message></Error>
<RequestId>r-1</RequestId></ErrorResponse>"""


async def test_s3_sts_posts_the_verified_token_and_returns_the_keys():
    context = ctx(claims={"sub": "a-1"}, sts=(200, {}, SUCCESS))
    issued = await S3STSProvider({**S3, "duration": "15m"}, AT).issue(ALICE, context)
    assert dict(issued.values) == {
        "aws_access_key_id": "ASIAEXAMPLE", "aws_secret_access_key": "secret",
        "aws_session_token": "session", "expiration": "2027-01-15T09:00:00Z",
        "endpoint_url": "https://s3.eu-west-1.amazonaws.com", "region": "eu-west-1",
    }  # fmt: skip
    assert issued.expires_at == 1_800_003_600.0
    [(method, url, headers, body)] = context.fetch.calls
    assert (method, url) == ("POST", "https://sts.eu-west-1.amazonaws.com")
    assert "Authorization" not in headers  # unsigned, as AWS documents
    assert body == (
        "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A"
        "123456789012%3Arole%2Fresearch&RoleSessionName=alice&WebIdentityToken=the.id.token"
        "&DurationSeconds=900"
    )


@pytest.mark.parametrize(
    ("status", "body", "reason", "message"),
    [
        (400, REFUSED, "upstream_refused", "the STS refused: InvalidIdentityToken: Token <token> is not trusted"),
        (503, b"<html>busy</html>", "upstream_unavailable", "the STS answered HTTP 503 without credentials"),
        (200, b"not xml", "upstream_refused", "the STS answered HTTP 200 without credentials"),
        (200, SUCCESS.replace(b"2027-01-15T09:00:00Z", b"tomorrow"), "upstream_refused",
         "the STS's Expiration is not ISO 8601"),
    ],
)  # fmt: skip
def test_sts_answers_that_are_not_credentials(status, body, reason, message):
    with pytest.raises(IssueError) as e:
        parse_response(status, body, "the.id.token")
    assert (e.value.reason, e.value.message) == (reason, message)
