"""The renewal loop's decisions, the cache, issuance failures and the workspace client's mounted
files: no processes, no hub."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import time
from types import MappingProxyType

import pytest

from jupyterhub_platform.policy.model import GroupGrant, Policy
from jupyterhub_platform.services.common.hub_client import HubClient
from jupyterhub_platform.services.credentials.cache import IssueCache
from jupyterhub_platform.services.credentials.handlers import STATUS
from jupyterhub_platform.services.credentials.metrics import CredentialMetrics
from jupyterhub_platform.services.credentials.model import (
    EXPIRY_ANNOTATION,
    SETS_ANNOTATION,
    CredentialSet,
    Issued,
    IssueError,
    Provider,
    Subject,
)
from jupyterhub_platform.services.credentials.renewal import REVOKED, due_sets, renewal_patch
from jupyterhub_platform.services.credentials.service import CredentialService
from jupyterhub_platform.workspace import credentials

NOW = 1_800_000_000.0


def annotations(sets: dict) -> dict:
    return {SETS_ANNOTATION: ",".join(sets), EXPIRY_ANNOTATION: json.dumps(
        {k: v for k, v in sets.items() if v is not None})}  # fmt: skip


def test_a_set_is_due_at_80_percent_of_its_lifetime_or_when_never_issued():
    found = annotations({
        "at-79": {"issued_at": NOW - 79, "expires_at": NOW + 21},
        "at-80": {"issued_at": NOW - 80, "expires_at": NOW + 20},
        "expired": {"issued_at": NOW - 200, "expires_at": NOW - 100},
        "forever": {"issued_at": NOW - 10**6, "expires_at": None},
        "failed-at-spawn": None,
    })  # fmt: skip
    assert due_sets(found, NOW) == ["at-80", "expired", "failed-at-spawn"]
    assert due_sets({SETS_ANNOTATION: "a,b", EXPIRY_ANNOTATION: "not json"}, NOW) == ["a", "b"]
    assert due_sets({}, NOW) == []


def test_the_patch_renews_values_and_blanks_and_drops_revoked_sets():
    found = annotations({"s3": {"issued_at": 1, "expires_at": 2}, "gone": {"issued_at": 1,
                         "expires_at": 2}, "kept": {"issued_at": 1, "expires_at": None}})  # fmt: skip
    keys = ["jupyterhub-api-token", "s3.key", "gone.a", "gone.b", "kept.x", "gonear.y"]
    body = renewal_patch(found, keys, {"s3": Issued({"key": "v"}, NOW, NOW + 60), "gone": REVOKED})
    assert body["data"] == {"s3.key": base64.b64encode(b"v").decode(), "gone.a": "", "gone.b": ""}
    meta = body["metadata"]["annotations"]
    assert meta[SETS_ANNOTATION] == "s3,kept"
    assert json.loads(meta[EXPIRY_ANNOTATION]) == {
        "s3": {"issued_at": NOW, "expires_at": NOW + 60},
        "kept": {"issued_at": 1, "expires_at": None},
    }


def test_the_cache_serves_until_the_renewal_point_or_max_age():
    clock = [NOW]
    cache = IssueCache(lambda: clock[0], max_age=300)
    cache.put("u", "short", Issued({"k": "v"}, NOW, NOW + 100))
    cache.put("u", "forever", Issued({"k": "v"}, NOW, None))
    clock[0] = NOW + 79
    assert cache.get("u", "short") is not None and cache.get("v", "short") is None
    clock[0] = NOW + 80
    assert cache.get("u", "short") is None and cache.get("u", "forever") is not None
    clock[0] = NOW + 300
    assert cache.get("u", "forever") is None


def mount(tmp_path, monkeypatch, values: dict, written: float) -> None:
    directory = tmp_path / "research-s3"
    directory.mkdir()
    for key, value in values.items():
        (directory / key).write_text(value)
        os.utime(directory / key, (written, written))
    monkeypatch.setenv(credentials.DIR_ENV, str(tmp_path))
    monkeypatch.delenv(credentials.URL_ENV, raising=False)


S3_VALUES = {
    "aws_access_key_id": "AKIA1", "aws_secret_access_key": "s", "aws_session_token": "t",
    "endpoint_url": "http://s3", "region": "us-east-1",
}  # fmt: skip


def iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def test_fresh_mounted_s3_files_are_boto3_settings(tmp_path, monkeypatch):
    now = time.time()
    mount(tmp_path, monkeypatch, {**S3_VALUES, "expiration": iso(now + 3000)}, now - 600)
    assert credentials.get("research-s3") == {
        "aws_access_key_id": "AKIA1", "aws_secret_access_key": "s", "aws_session_token": "t",
        "endpoint_url": "http://s3", "region_name": "us-east-1",
    }  # fmt: skip


@pytest.mark.parametrize(
    "values",
    [{**S3_VALUES, "expiration": "AGE"}, {**S3_VALUES, "aws_access_key_id": ""}],
    ids=["within the last 20% of its lifetime", "blanked (revoked)"],
)
def test_stale_or_blank_files_are_not_used(values, tmp_path, monkeypatch, capsys):
    now = time.time()
    values = {k: iso(now + 100) if v == "AGE" else v for k, v in values.items()}
    mount(tmp_path, monkeypatch, values, now - 900)
    assert credentials.mounted("research-s3") is None
    monkeypatch.setenv(credentials.TOKEN_ENV, "t")
    assert credentials.credential_process_main(["research-s3"]) == 1
    assert capsys.readouterr().err == (
        "jupyterhub-platform-credential-process: credential set 'research-s3': not mounted "
        "here, and $JUPYTERHUB_PLATFORM_CREDENTIALS_URL is not set\n"
    )


def test_credential_process_prints_the_aws_json(tmp_path, monkeypatch, capsys):
    now = time.time()
    mount(tmp_path, monkeypatch, {**S3_VALUES, "expiration": iso(now + 3600)}, now)
    assert credentials.credential_process_main(["research-s3"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "Version": 1, "AccessKeyId": "AKIA1", "SecretAccessKey": "s", "SessionToken": "t",
        "Expiration": iso(now + 3600),
    }  # fmt: skip
    assert credentials.credential_process_main([]) == 2
    assert (
        "usage: jupyterhub-platform-credential-process <credential set>" in capsys.readouterr().err
    )


def test_the_service_refuses_to_start_without_a_policy_with_the_setting(capsys, monkeypatch):
    from jupyterhub_platform.services.credentials.app import CredentialsApp

    monkeypatch.delenv("JUPYTERHUB_PLATFORM_POLICY", raising=False)
    with pytest.raises(SystemExit) as exit_:
        CredentialsApp().initialize(["--CredentialsApp.api_token=t"])
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert "no policy file: set $JUPYTERHUB_PLATFORM_POLICY or PolicySource.policy_file" in err
    assert "Traceback" not in err


class Slow(Provider):
    """Issues after a pause (concurrent requests overlap) or fails as told."""

    name = "test-slow"
    keys = ("value",)

    def __init__(self, fail: Exception | None = None):
        super().__init__({}, ("credential_sets", "slow"))
        self.fail, self.calls = fail, 0

    async def issue(self, subject, ctx) -> Issued:
        self.calls += 1
        await asyncio.sleep(0.05)
        if self.fail:
            raise self.fail
        return Issued({"value": f"value-{self.calls}"}, time.time(), time.time() + 60)


def direct_service(provider: Provider) -> CredentialService:
    """A service whose hub is never asked (issue() takes the subject)."""
    unreachable = HubClient("http://127.0.0.1:9/hub/api", "t", retries=0)
    policy = Policy(
        grants=(GroupGrant("team", credential_sets=("slow",)),),
        credential_sets=MappingProxyType({"slow": CredentialSet("slow", provider)}),
    )
    return CredentialService(hub=unreachable, policy=policy, ctx=None,
                             cache=IssueCache(time.time), metrics=CredentialMetrics(),
                             token_client=lambda token: unreachable)  # fmt: skip


ALICE = Subject("alice", frozenset({"team"}), {"id_token": "never-logged"})


async def test_concurrent_requests_share_one_issuance():
    provider = Slow()
    service = direct_service(provider)
    first, second = await asyncio.gather(service.issue(ALICE, "slow"), service.issue(ALICE, "slow"))
    assert first is second and provider.calls == 1


@pytest.mark.parametrize(
    ("fail", "reason", "message"),
    [
        (IssueError("upstream_refused", "the STS refused the token"), "upstream_refused",
         "the STS refused the token"),
        (RuntimeError("secret-value-in-message"), "provider_error", "the slow provider failed"),
    ],
)  # fmt: skip
async def test_a_failed_issuance_is_audited_without_values(
    fail, reason, message, caplog, audit_log
):
    caplog.set_level(logging.INFO)
    service = direct_service(Slow(fail))
    with pytest.raises(IssueError) as info:
        await service.issue(ALICE, "slow")
    assert (info.value.reason, info.value.message) == (reason, message)
    (event,) = audit_log
    assert {k: event[k] for k in ("action", "actor", "subject", "result", "reason")} == {
        "action": "credential.issue", "actor": "alice", "subject": "alice", "result": "failed",
        "reason": reason}  # fmt: skip
    assert event["details"] == {"set": "slow", "provider": "test-slow", "expires_at": None,
                                "via": "api"}  # fmt: skip
    text = caplog.text + json.dumps(audit_log)
    assert "secret-value-in-message" not in text and "never-logged" not in text
    assert service.metrics.refusals.labels(reason)._value.get() == 1


async def test_an_unreachable_hub_is_503_not_a_refusal_of_the_token():
    service = direct_service(Slow())
    with pytest.raises(IssueError) as info:
        await service.identify("some-token")
    assert info.value.reason == "upstream_unavailable"
    assert STATUS[info.value.reason] == 503
