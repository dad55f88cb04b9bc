"""What a user with some groups gets, as a security reviewer wants to read it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .cull_decision import PROFILE_KEY, applicable
from .culling import format_duration
from .model import Policy
from .quota_decision import amount
from .quotas import LIMIT_KEYS, UserQuota


def explain(
    policy: Policy, raw_groups: Iterable[str], spawns: Iterable[Mapping[str, str]] = ()
) -> dict:
    """What ``raw_groups`` (as the identity provider sends them) earn, as plain JSON-able data:
    each raw name's path to its final name, then the entitlements with role scopes spelled out.
    ``spawns`` are user_options to show the culling policy of (default: each usable profile)."""
    raw_groups = list(raw_groups)
    entitlements = policy.resolve(raw_groups)
    spawns = list(spawns) or [{PROFILE_KEY: slug} for slug in sorted(entitlements.profiles)]
    return {
        "policy": policy.source,
        "names": [
            {"raw": t.raw, "steps": list(t.steps), "final": t.final}
            for t in map(policy.normaliser.trace, raw_groups)
        ],
        "groups": sorted(entitlements.groups),
        "backup": _backup(policy, raw_groups),
        "login_allowed": entitlements.login_allowed,
        "admin": entitlements.admin,
        "roles": {name: list(policy.roles[name].scopes) for name in sorted(entitlements.roles)},
        "profiles": {
            slug: {option: sorted(keys) for option, keys in sorted(options.items())}
            for slug, options in sorted(entitlements.profiles.items())
        },
        # Without the profile files only the policy's own grants can be shown, not enumerated.
        "profile_grants": None
        if policy.profile_rules
        else sorted({str(p) for g in policy.grants_for(entitlements.groups) for p in g.profiles}),
        "credential_sets": sorted(entitlements.credential_sets),
        "culling_policy": entitlements.culling_policy,
        "culling": [_culling(policy, entitlements.groups, options) for options in spawns],
        "quotas": {
            "multi_group": policy.quotas.multi_group,
            **_quotas(policy.quota_for(entitlements.groups)),
        },
    }


def _backup(policy: Policy, raw_groups: list[str]) -> dict:
    decision = policy.backup_for(raw_groups)
    return {"backed_up": decision.backed_up, "reason": decision.reason}


def _quotas(quota: UserQuota) -> dict:
    """Per-user limits (with where each comes from) and the group pools, as plain data."""
    return {
        "user": {
            field: {"limit": limit.value, "from": limit.source}
            for field, limit in quota.limits.items()
        },
        "pools": {
            pool.group: {
                field: getattr(pool.limits, field)
                for field in LIMIT_KEYS
                if getattr(pool.limits, field) is not None
            }
            for pool in quota.pools
        },
    }


def render_quotas(quotas: dict) -> list[str]:
    """``quotas:`` lines: each per-user limit and its source, then each shared pool."""
    if not quotas["user"] and not quotas["pools"]:
        return ["quotas:          (none: nothing is limited)"]
    lines = [
        "quotas (per user, summed over running and pending servers; "
        f"several groups: {quotas['multi_group'].replace('_', ' ')}):"
    ]
    lines += [
        f"  {field}: {amount(field, entry['limit'])}{' GiB' if field == 'memory' else ''}"
        f"  (from {entry['from']})"
        for field, entry in quotas["user"].items()
    ]
    for group, limits in quotas["pools"].items():
        shown = ", ".join(
            f"{field} {amount(field, value)}{' GiB' if field == 'memory' else ''}"
            for field, value in limits.items()
        )
        lines.append(f"  pool shared by group {group}: {shown}")
    return lines


def _culling(policy: Policy, groups: frozenset[str], options: Mapping[str, str]) -> dict:
    applied = applicable(policy, groups, options)
    limits = applied.policy
    return {
        "spawn": dict(options),
        "policy": applied.name,
        "idle_timeout": limits.idle_timeout if limits else None,
        "max_age": limits.max_age if limits else None,
        "exempt": applied.exempt,
        "candidates": [{"policy": name, "from": where} for name, where in applied.candidates],
    }


def render_culling(entry: dict) -> str:
    """One line: ``jupyterlab,size=ml-gpu: gpu (idle 30m, max age 8h; from ...)``."""
    spawn = ",".join(
        [entry["spawn"].get(PROFILE_KEY, "(no profile)")]
        + [f"{k}={v}" for k, v in entry["spawn"].items() if k != PROFILE_KEY]
    )
    if entry["policy"] is None:
        return f"  {spawn}: never culled (no culling policy applies)"
    limits = (
        "exempt"
        if entry["exempt"]
        else (
            f"idle {format_duration(entry['idle_timeout'])}, max age {format_duration(entry['max_age'])}"
        )
    )
    sources = ", ".join(f"{c['policy']} from {c['from']}" for c in entry["candidates"])
    return f"  {spawn}: {entry['policy']} ({limits}; candidates: {sources})"


def render(report: dict) -> str:
    """:func:`explain`'s report as indented text."""

    def yes(flag: bool) -> str:
        return "yes" if flag else "no"

    lines = [
        f"policy:          {report['policy']}",
        "group names:" + ("" if report["names"] else "     (none)"),
    ]
    for name in report["names"]:
        final = repr(name["final"]) if name["final"] is not None else "dropped"
        lines.append(f"  {name['raw']!r} -> {final}")
        lines += [f"    {step}" for step in name["steps"]]
    lines += [
        f"groups:          {', '.join(report['groups']) or '(none)'}",
        f"home backed up:  {yes(report['backup']['backed_up'])}: {report['backup']['reason']}",
        f"login allowed:   {yes(report['login_allowed'])}",
    ]
    if not report["login_allowed"]:
        lines.append("  (no group of this user is allowed to log in; nothing else applies)")
        return "\n".join(lines)
    lines.append(f"admin:           {yes(report['admin'])}")
    lines.append("roles:" + ("" if report["roles"] else "           (none)"))
    for name, scopes in report["roles"].items():
        lines.append(f"  {name}:")
        lines += [f"    - {scope}" for scope in scopes]
    if report["profile_grants"] is not None:
        grants = ", ".join(report["profile_grants"]) or "(none)"
        lines.append(f"profiles:        {grants}  (policy grants; --profiles enumerates choices)")
    else:
        lines.append("profiles:" + ("" if report["profiles"] else "        (none)"))
    for slug, options in report["profiles"].items():
        lines.append(f"  {slug}")
        lines += [f"    {option}: {', '.join(keys)}" for option, keys in options.items()]
    lines.append(f"credential sets: {', '.join(report['credential_sets']) or '(none)'}")
    lines.append(f"culling policy:  {report['culling_policy'] or '(hub default)'}  (the group's)")
    lines.append("culling per server:" + ("" if report["culling"] else " (no profiles)"))
    lines += [render_culling(entry) for entry in report["culling"]]
    lines += render_quotas(report["quotas"])
    return "\n".join(lines)
