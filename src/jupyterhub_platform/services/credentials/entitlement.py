"""Who may have which set: the policy's group grants, re-checked before every issuance.

Pure: the caller reads the user's current groups from the hub."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from jupyterhub_platform.policy.model import Policy

from .model import CredentialSet, IssueError


def issuable_sets(policy: Policy) -> Mapping[str, CredentialSet]:
    """The declared sets that have a provider (a declaration without one issues nothing)."""
    return {n: s for n, s in policy.credential_sets.items() if isinstance(s, CredentialSet)}


def entitled_sets(policy: Policy, groups: Iterable[str]) -> frozenset[str]:
    """The sets the (hub-normalised) ``groups`` grant that can be issued."""
    granted = policy.resolve(groups, normalised=True).credential_sets
    return frozenset(granted) & frozenset(issuable_sets(policy))


def entitled_set(policy: Policy, groups: Iterable[str], name: str) -> CredentialSet:
    """The set ``name`` if ``groups`` grant it; else ``not_entitled`` (an unknown set gets the
    same answer, so a refusal tells nobody which sets exist)."""
    if name not in entitled_sets(policy, groups):
        raise IssueError("not_entitled", f"credential set {name!r} is not available to you")
    return issuable_sets(policy)[name]
