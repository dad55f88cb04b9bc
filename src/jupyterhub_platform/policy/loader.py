"""Read and validate a policy file; every error names the file, the line, the field and the value.

The policy decides who may log in and who is admin, so it fails closed: unknown keys, unknown
roles, bad scopes, bad regexes and grants of profiles that do not exist are all errors. The first
problem found is raised as a :class:`PolicyError` (``file:line: field: reason``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from jupyterhub_platform.validate import (
    FieldPath,
    Invalid,
    LocatedData,
    load_located,
    parse_located,
)
from jupyterhub_platform.validate import checks as v

from .entitlements import ProfileRule
from .errors import PolicyError
from .model import ALL, DEFAULT_ROLES, ROLE_NAME, GroupGrant, Policy, ProfileGrant, RoleSpec
from .normalise import GroupMapping, GroupNormaliser
from .references import check_profile_sections, parse_sections
from .scopes import scope_problem

TOP_KEYS = (
    "group_names",
    "roles",
    "groups",
    "defaults",
    "culling",
    "credential_sets",
    "quotas",
    "backup",
)
GROUP_KEYS = ("login", "admin", "roles", "profiles", "credential_sets", "culling_policy")


def load_policy(path: Path | str | None, profile_rules: Iterable[ProfileRule] = ()) -> Policy:
    """The policy in ``path`` (None: the empty policy, which lets nobody in)."""
    if path is None:
        return parse_policy(LocatedData("<empty policy>", None, {}, PolicyError), profile_rules)
    return parse_policy(load_located(path, PolicyError), profile_rules)


def policy_from_text(
    text: str, source: str, profile_rules: Iterable[ProfileRule] = (), first_line: int = 1
) -> Policy:
    """The policy YAML ``text`` (e.g. embedded in chart values at ``first_line`` of ``source``)."""
    return parse_policy(parse_located(text, source, PolicyError, first_line), profile_rules)


def parse_policy(doc: LocatedData, profile_rules: Iterable[ProfileRule] = ()) -> Policy:
    """Validate the policy document ``doc``, merged with the profile files' rules."""
    try:
        policy = _policy(doc.data, doc.file)
        return _with_profile_rules(policy, tuple(profile_rules))
    except Invalid as e:
        raise doc.errors(e)[0] from None


def _policy(data: Any, source: str) -> Policy:
    top = _mapping({} if data is None else data, (), TOP_KEYS)
    normaliser = _normaliser(top.get("group_names"))
    roles = _roles(top.get("roles"))
    grants = _grants(top.get("groups"), normaliser, roles)
    normaliser = _with_privileged(normaliser, grants)
    defaults = _mapping(top.get("defaults") or {}, ("defaults",), ("culling_policy",))
    culling = _optional_str(defaults.get("culling_policy"), ("defaults", "culling_policy"))
    return Policy(
        source=source,
        normaliser=normaliser,
        roles=MappingProxyType(roles),
        grants=grants,
        default_culling_policy=culling,
        **parse_sections(top, grants, culling, normaliser),
    )


def _with_profile_rules(policy: Policy, rules: tuple[ProfileRule, ...]) -> Policy:
    """``policy`` merged with the profile files' rules; grants must name existing profiles."""
    by_slug = {r.slug: r for r in rules}
    if len(by_slug) != len(rules):
        dupes = sorted({r.slug for r in rules if sum(x.slug == r.slug for x in rules) > 1})
        raise Invalid(f"duplicate profile slugs {dupes}", ("profiles",))
    if rules:
        for grant in policy.grants:
            for i, pg in enumerate(grant.profiles):
                problem = _grant_problem(pg, by_slug)
                if problem:
                    raise Invalid(problem, ("groups", grant.group, "profiles", i))
        check_profile_sections(policy, rules)
    return replace(policy, profile_rules=rules)


def _grant_problem(grant: ProfileGrant, rules: Mapping[str, ProfileRule]) -> str | None:
    if grant.slug == ALL:
        return None
    rule = rules.get(grant.slug)
    if rule is None:
        return f"no profile {grant.slug!r} (profiles: {', '.join(sorted(rules)) or 'none'})"
    if grant.option is None:
        return None
    choices = rule.choices.get(grant.option)
    if choices is None:
        return f"profile {grant.slug!r} has no option {grant.option!r}"
    if grant.choice != ALL and grant.choice not in choices:
        return f"option {grant.slug}/{grant.option} has no choice {grant.choice!r}"
    return None


def _at(at: FieldPath, check, value: Any, *args):
    """``check(value, *args)`` with its problems seen from the policy's top level."""
    try:
        return check(value, *args)
    except Invalid as e:
        raise e.within(at) from None


def _mapping(value: object, at: FieldPath, keys: tuple[str, ...]) -> Mapping:
    return _at(at, v.mapping, value, keys)


def _optional_str(value: object, at: FieldPath) -> str | None:
    return None if value is None else _at(at, v.string, value)


def _bool(value: object, default: bool, at: FieldPath) -> bool:
    return default if value is None else _at(at, v.boolean, value)


def _str_list(value: object, at: FieldPath) -> tuple[str, ...]:
    return () if value is None else _at(at, v.strings, value)


def _normaliser(value: object) -> GroupNormaliser:
    if value is None:
        return GroupNormaliser()
    at: FieldPath = ("group_names",)
    spec = _mapping(value, at, ("strip_prefix", "case_fold", "map"))
    strip = spec.get("strip_prefix") or ""
    if not isinstance(strip, str):
        raise Invalid(f"must be a string, got {v.kind(strip)}", at + ("strip_prefix",))
    case_fold = _bool(spec.get("case_fold"), False, at + ("case_fold",))
    key = GroupNormaliser(case_fold=case_fold).key
    raw_map = spec.get("map") or []
    if not isinstance(raw_map, list):
        raise Invalid(f"must be a list, got {v.kind(raw_map)}", at + ("map",))
    mappings = []
    for i, entry in enumerate(raw_map):
        here = at + ("map", i)
        entry = _mapping(entry, here, ("match", "replace", "allow_privileged"))
        pattern, repl = entry.get("match"), entry.get("replace", "")
        if not isinstance(pattern, str) or not isinstance(repl, str):
            raise Invalid("'match' and 'replace' must be strings", here)
        try:
            # ASCII: \w, \s, \d and (?i) must not match look-alikes such as U+017F for "s"
            compiled = re.compile(pattern, re.ASCII)
        except re.error as exc:
            raise Invalid(f"bad regex {pattern!r}: {exc}", here + ("match",)) from None
        _check_template(compiled, repl, here + ("replace",))
        privileged = _str_list(entry.get("allow_privileged"), here + ("allow_privileged",))
        mappings.append(GroupMapping(compiled, repl, frozenset(map(key, privileged))))
    return GroupNormaliser(strip_prefix=strip, case_fold=case_fold, mappings=tuple(mappings))


def _with_privileged(
    normaliser: GroupNormaliser, grants: tuple[GroupGrant, ...]
) -> GroupNormaliser:
    """The normaliser told which groups grant admin or roles; ``allow_privileged`` must name them."""
    privileged = frozenset(normaliser.key(g.group) for g in grants if g.admin or g.roles)
    for i, mapping in enumerate(normaliser.mappings):
        unknown = sorted(mapping.allow_privileged - privileged)
        if unknown:
            raise Invalid(
                f"{unknown} are not groups of this policy that grant admin or roles",
                ("group_names", "map", i, "allow_privileged"),
            )
    return replace(normaliser, privileged=privileged)


def _check_template(pattern: re.Pattern[str], repl: str, at: FieldPath) -> None:
    """Reject replacements that refer to groups the regex does not have."""
    for number, name in re.findall(r"\\(\d+)|\\g<(\w+)>", repl):
        if number and int(number) > pattern.groups:
            raise Invalid(f"refers to group \\{number} of {pattern.pattern!r}", at)
        if (
            name
            and not (name.isdigit() and int(name) <= pattern.groups)
            and name not in pattern.groupindex
        ):
            raise Invalid(f"refers to unknown group <{name}>", at)


def _roles(value: object) -> dict[str, RoleSpec]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise Invalid(f"must be a mapping of role name -> role, got {v.kind(value)}", ("roles",))
    roles = {}
    for name, spec in value.items():
        at: FieldPath = ("roles", name)
        if not ROLE_NAME.match(name):
            raise Invalid("role names are 3-255 of a-z 0-9 - . ~ _, start with a letter", at)
        if name in DEFAULT_ROLES:
            raise Invalid(f"{name!r} is a JupyterHub default role", at)
        spec = _mapping(spec, at, ("description", "scopes"))
        scopes = _str_list(spec.get("scopes"), at + ("scopes",))
        if not scopes:
            raise Invalid("a role needs at least one scope", at + ("scopes",))
        for i, scope in enumerate(scopes):
            problem = scope_problem(scope)
            if problem:
                raise Invalid(problem, at + ("scopes", i))
        description = spec.get("description") or ""
        if not isinstance(description, str):
            raise Invalid(f"must be a string, got {v.kind(description)}", at + ("description",))
        roles[name] = RoleSpec(name=name, scopes=scopes, description=description)
    return roles


def _grants(
    value: object, normaliser: GroupNormaliser, roles: Mapping[str, RoleSpec]
) -> tuple[GroupGrant, ...]:
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise Invalid(
            f"must be a mapping of group name -> grants, got {v.kind(value)}", ("groups",)
        )
    grants, seen = [], {}
    for group, spec in value.items():
        at: FieldPath = ("groups", group)
        if not group:
            raise Invalid("group names must be non-empty strings", at)
        key = normaliser.key(group)
        if key in seen:
            raise Invalid(f"same group as {seen[key]!r} after case folding", at)
        seen[key] = group
        spec = _mapping(spec or {}, at, GROUP_KEYS)
        role_names = _str_list(spec.get("roles"), at + ("roles",))
        for i, role in enumerate(role_names):
            if role not in roles:
                defined = ", ".join(sorted(roles)) or "none"
                raise Invalid(
                    f"unknown role {role!r} (defined under roles: {defined})", at + ("roles", i)
                )
        profiles = []
        for i, text in enumerate(_str_list(spec.get("profiles"), at + ("profiles",))):
            try:
                profiles.append(ProfileGrant.parse(text))
            except ValueError as exc:
                raise Invalid(str(exc), at + ("profiles", i)) from None
        grants.append(
            GroupGrant(
                group=group,
                login=_bool(spec.get("login"), True, at + ("login",)),
                admin=_bool(spec.get("admin"), False, at + ("admin",)),
                roles=role_names,
                profiles=tuple(profiles),
                credential_sets=_str_list(spec.get("credential_sets"), at + ("credential_sets",)),
                culling_policy=_optional_str(spec.get("culling_policy"), at + ("culling_policy",)),
            )
        )
    return tuple(grants)
