"""The policy file's named sections (culling policies, credential sets, quotas) and every
reference to them, checked at load: a misspelt name is a load error, never a silently missing policy."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from jupyterhub_platform.validate import Invalid

from .backup import check_backup_groups, check_backup_profiles, parse_backup
from .credential_sets import (
    check_credential_references,
    parse_credential_sets,
    profile_credential_references,
)
from .culling import Culling, check_names, check_profile_references, parse_culling
from .entitlements import ProfileRule
from .model import GroupGrant, Policy
from .normalise import GroupNormaliser
from .quotas import check_quota_groups, parse_quotas


def parse_sections(
    top: Mapping,
    grants: tuple[GroupGrant, ...],
    default_culling: str | None,
    normaliser: GroupNormaliser,
) -> dict:
    """``Policy`` keyword arguments for the ``culling:``, ``credential_sets:``, ``quotas:`` and
    ``backup:`` sections."""
    culling = parse_culling(top.get("culling"))
    check_names(
        culling,
        [(("groups", g.group, "culling_policy"), g.culling_policy) for g in grants]
        + [(("defaults", "culling_policy"), default_culling)],
    )
    _check_groups(culling, grants, normaliser)
    credential_sets = parse_credential_sets(top.get("credential_sets"))
    check_credential_references(
        credential_sets,
        [(("groups", g.group, "credential_sets"), g.credential_sets) for g in grants],
    )
    quotas = parse_quotas(top.get("quotas"))
    check_quota_groups(quotas, [g.group for g in grants], normaliser.key)
    backup = parse_backup(top.get("backup"))
    check_backup_groups(backup, [g.group for g in grants], normaliser.key)
    return {
        "culling": culling,
        "credential_sets": credential_sets,
        "quotas": quotas,
        "backup": backup,
    }


def check_profile_sections(policy: Policy, rules: Iterable[ProfileRule]) -> None:
    """The profile files' culling policies and credential sets, the rules' profiles and the
    profiles that opt out of backups."""
    rules = tuple(rules)
    check_profile_references(policy.culling, rules)
    check_backup_profiles(policy.backup, rules)
    check_credential_references(policy.credential_sets, profile_credential_references(rules))


def _check_groups(
    culling: Culling, grants: tuple[GroupGrant, ...], normaliser: GroupNormaliser
) -> None:
    known = {normaliser.key(g.group) for g in grants}
    listed = ", ".join(g.group for g in grants) or "none"
    named = [
        (("culling", "policies", p.name, "exempt_groups"), sorted(p.exempt_groups))
        for p in culling.policies.values()
    ] + [
        (("culling", "rules", i, "group"), [r.group])
        for i, r in enumerate(culling.rules)
        if r.group
    ]
    for at, groups in named:
        for group in groups:
            if normaliser.key(group) not in known:
                raise Invalid(f"{group!r} is not a group of this policy (groups: {listed})", at)
