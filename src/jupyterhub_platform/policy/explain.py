"""What a user with some groups gets, as a security reviewer wants to read it."""

from __future__ import annotations

from collections.abc import Iterable

from .model import Policy


def explain(policy: Policy, raw_groups: Iterable[str]) -> dict:
    """What ``raw_groups`` (as the identity provider sends them) earn, as plain JSON-able data:
    each raw name's path to its final name, then the entitlements with role scopes spelled out."""
    raw_groups = list(raw_groups)
    entitlements = policy.resolve(raw_groups)
    return {
        "policy": policy.source,
        "names": [
            {"raw": t.raw, "steps": list(t.steps), "final": t.final}
            for t in map(policy.normaliser.trace, raw_groups)
        ],
        "groups": sorted(entitlements.groups),
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
    }


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
    lines.append(f"culling policy:  {report['culling_policy'] or '(hub default)'}")
    return "\n".join(lines)
