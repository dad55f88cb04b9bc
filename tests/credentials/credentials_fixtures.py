"""The tests' providers and policy: two sets, each granted to one group."""

from __future__ import annotations

import asyncio
import itertools
import time
from types import MappingProxyType

import aiohttp

from jupyterhub_platform.policy.model import GroupGrant, Policy
from jupyterhub_platform.services.credentials.model import CredentialSet, Issued, Provider

SCOPES = ["list:users", "read:users:groups", "read:servers", "admin:auth_state"]
"""The credentials service's role (chart-values/credentials.yaml)."""
CULLING = "culling: {policies: {standard: {idle_timeout: 1h}}}\n"  # the jupyterlab profile's
SETS = {"team-a": "alpha", "team-b": "beta"}
S3_SET = "gamma-s3"
"""Also granted to team-a: keys as the s3-sts provider's."""
LIFETIME = 3600.0


class Counter(Provider):
    """Values naming the user, the set, a marker from their auth state and a serial number."""

    name = "test-counter"
    keys = ("secret", "expiration")

    def __init__(self, set_name: str = "", serial=None):
        super().__init__({}, ("credential_sets", set_name))
        self.set_name = set_name
        self.serial = serial or itertools.count(1)
        self.calls: list[str] = []

    def for_set(self, set_name: str) -> Counter:
        provider = Counter(set_name, self.serial)
        provider.calls = self.calls
        return provider

    async def issue(self, subject, ctx) -> Issued:
        self.calls.append(f"{subject.username}/{self.set_name}")
        now = time.time()
        marker = subject.auth_state.get("marker", "none")
        return Issued(
            {"secret": f"{self.set_name}-{subject.username}-{marker}-{next(self.serial)}",
             "expiration": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + LIFETIME))},
            now, now + LIFETIME,
        )  # fmt: skip


class S3Like(Provider):
    """An s3-sts provider's keys, without STS."""

    name = "test-s3"
    keys = ("aws_access_key_id", "aws_secret_access_key", "aws_session_token", "expiration",
            "endpoint_url", "region")  # fmt: skip

    async def issue(self, subject, ctx) -> Issued:
        now = time.time()
        return Issued(
            {"aws_access_key_id": f"AKIA{subject.username.upper()}",
             "aws_secret_access_key": f"secret-of-{subject.username}",
             "aws_session_token": f"session-of-{subject.username}",
             "expiration": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + LIFETIME)),
             "endpoint_url": "http://s3.example.org", "region": "us-east-1"},
            now, now + LIFETIME,
        )  # fmt: skip


def sets_policy(counter: Counter) -> Policy:
    """team-a grants alpha and gamma-s3, team-b grants beta (as a loaded policy file would)."""
    sets = {s: CredentialSet(s, counter.for_set(s), description=f"the {s} set")
            for s in SETS.values()}  # fmt: skip
    sets[S3_SET] = CredentialSet(S3_SET, S3Like({}, ("credential_sets", S3_SET)))
    grants = [GroupGrant(g, credential_sets=(s,)) for g, s in SETS.items()]
    grants.append(GroupGrant("team-a", credential_sets=(S3_SET,)))
    return Policy(grants=tuple(grants), credential_sets=MappingProxyType(sets))


async def wait_for_route(url: str, timeout: float = 30) -> None:
    """Until the proxy sends ``url`` to the service (the hub adds its route at start)."""
    deadline = asyncio.get_running_loop().time() + timeout
    async with aiohttp.ClientSession() as s:
        while True:
            async with s.get(url, allow_redirects=False) as r:
                if r.status == 200 and r.content_type == "application/json":
                    return
            assert asyncio.get_running_loop().time() < deadline, f"{url}: {r.status}"
            await asyncio.sleep(0.2)


async def stop_server(server) -> None:
    """Stop listening and drop the kept-alive connections (the proxy's too), so that the next
    test's service, on the same port, is the one the proxy reaches."""
    server.stop()
    await server.close_all_connections()
