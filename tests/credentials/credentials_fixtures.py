"""The tests' providers and policy: two sets, each granted to one group."""

from __future__ import annotations

import itertools
import time
from types import MappingProxyType

from jupyterhub_platform.policy.model import GroupGrant, Policy
from jupyterhub_platform.services.credentials.model import CredentialSet, Issued, Provider

CULLING = "culling: {policies: {standard: {idle_timeout: 1h}}}\n"  # the jupyterlab profile's
SETS = {"team-a": "alpha", "team-b": "beta"}
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


def sets_policy(counter: Counter) -> Policy:
    """team-a grants alpha, team-b grants beta (as a loaded policy file would have them)."""
    return Policy(
        grants=tuple(GroupGrant(g, credential_sets=(s,)) for g, s in SETS.items()),
        credential_sets=MappingProxyType({
            s: CredentialSet(s, counter.for_set(s), description=f"the {s} set") for s in SETS.values()
        }),
    )  # fmt: skip
