"""Read and validate a policy file; every error names the file, the field and the value.

The policy decides who may log in and who is admin, so it fails closed: unknown keys, unknown
roles, bad scopes, bad regexes and grants of profiles that do not exist are all errors.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType

import yaml

from .entitlements import ProfileRule
from .errors import PolicyError
from .model import ALL, DEFAULT_ROLES, ROLE_NAME, GroupGrant, Policy, ProfileGrant, RoleSpec
from .normalise import GroupMapping, GroupNormaliser
from .references import check_profile_sections, parse_sections
from .scopes import scope_problem

TOP_KEYS = ("group_names", "roles", "groups", "defaults", "culling", "credential_sets")
GROUP_KEYS = ("login", "admin", "roles", "profiles", "credential_sets", "culling_policy")


def load_policy(path: Path | str | None, profile_rules: Iterable[ProfileRule] = ()) -> Policy:
    """The policy in ``path`` (None: the empty policy, which lets nobody in)."""
    if path is None:
        return with_profile_rules(Policy(), profile_rules)
    path = Path(path)
    source = str(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise PolicyError(source, "", f"cannot read the policy file ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise PolicyError(source, "", f"not valid YAML: {exc}") from None
    return with_profile_rules(parse_policy(data, source), profile_rules)


def parse_policy(data: object, source: str) -> Policy:
    """Validate the already-parsed YAML ``data`` of a policy file."""
    if data is None:
        data = {}
    top = _mapping(data, source, "", TOP_KEYS)
    normaliser = _normaliser(top.get("group_names"), source)
    roles = _roles(top.get("roles"), source)
    grants = _grants(top.get("groups"), source, normaliser, roles)
    normaliser = _with_privileged(normaliser, grants, source)
    defaults = _mapping(top.get("defaults") or {}, source, "defaults", ("culling_policy",))
    culling = _optional_str(defaults.get("culling_policy"), source, "defaults.culling_policy")
    return Policy(
        source=source,
        normaliser=normaliser,
        roles=MappingProxyType(roles),
        grants=grants,
        default_culling_policy=culling,
        **parse_sections(top, source, grants, culling, normaliser),
    )


def with_profile_rules(policy: Policy, rules: Iterable[ProfileRule]) -> Policy:
    """``policy`` merged with the profile files' rules; grants must name existing profiles."""
    rules = tuple(rules)
    by_slug = {r.slug: r for r in rules}
    if len(by_slug) != len(rules):
        dupes = sorted({r.slug for r in rules if sum(x.slug == r.slug for x in rules) > 1})
        raise PolicyError(policy.source, "profiles", f"duplicate profile slugs {dupes}")
    if rules:
        for grant in policy.grants:
            for i, pg in enumerate(grant.profiles):
                problem = _grant_problem(pg, by_slug)
                if problem:
                    raise PolicyError(policy.source, f"groups.{grant.group}.profiles[{i}]", problem)
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


def _mapping(value: object, source: str, field: str, keys: tuple[str, ...]) -> Mapping:
    if not isinstance(value, Mapping):
        raise PolicyError(source, field or "<top level>", f"expected a mapping, got {value!r}")
    unknown = sorted(str(k) for k in value if k not in keys)
    if unknown:
        raise PolicyError(
            source, field or "<top level>", f"unknown key(s) {unknown}; allowed: {list(keys)}"
        )
    return value


def _optional_str(value: object, source: str, field: str) -> str | None:
    if value is None or (isinstance(value, str) and value):
        return value
    raise PolicyError(source, field, f"expected a non-empty string, got {value!r}")


def _bool(value: object, default: bool, source: str, field: str) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    raise PolicyError(source, field, f"expected true or false, got {value!r}")


def _str_list(value: object, source: str, field: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise PolicyError(source, field, f"expected a list of non-empty strings, got {value!r}")
    return tuple(value)


def _normaliser(value: object, source: str) -> GroupNormaliser:
    if value is None:
        return GroupNormaliser()
    spec = _mapping(value, source, "group_names", ("strip_prefix", "case_fold", "map"))
    strip = spec.get("strip_prefix") or ""
    if not isinstance(strip, str):
        raise PolicyError(source, "group_names.strip_prefix", f"expected a string, got {strip!r}")
    case_fold = _bool(spec.get("case_fold"), False, source, "group_names.case_fold")
    key = GroupNormaliser(case_fold=case_fold).key
    mappings = []
    raw_map = spec.get("map") or []
    if not isinstance(raw_map, list):
        raise PolicyError(source, "group_names.map", f"expected a list, got {raw_map!r}")
    for i, entry in enumerate(raw_map):
        field = f"group_names.map[{i}]"
        entry = _mapping(entry, source, field, ("match", "replace", "allow_privileged"))
        pattern, repl = entry.get("match"), entry.get("replace", "")
        if not isinstance(pattern, str) or not isinstance(repl, str):
            raise PolicyError(source, field, "'match' and 'replace' must be strings")
        try:
            # ASCII: \w, \s, \d and (?i) must not match look-alikes such as U+017F for "s"
            compiled = re.compile(pattern, re.ASCII)
        except re.error as exc:
            raise PolicyError(source, field, f"bad regex {pattern!r}: {exc}") from None
        _check_template(compiled, repl, source, field)
        privileged = _str_list(entry.get("allow_privileged"), source, f"{field}.allow_privileged")
        mappings.append(GroupMapping(compiled, repl, frozenset(map(key, privileged))))
    return GroupNormaliser(strip_prefix=strip, case_fold=case_fold, mappings=tuple(mappings))


def _with_privileged(
    normaliser: GroupNormaliser, grants: tuple[GroupGrant, ...], source: str
) -> GroupNormaliser:
    """The normaliser told which groups grant admin or roles; ``allow_privileged`` must name them."""
    privileged = frozenset(normaliser.key(g.group) for g in grants if g.admin or g.roles)
    for i, mapping in enumerate(normaliser.mappings):
        unknown = sorted(mapping.allow_privileged - privileged)
        if unknown:
            raise PolicyError(
                source,
                f"group_names.map[{i}].allow_privileged",
                f"{unknown} are not groups of this policy that grant admin or roles",
            )
    return replace(normaliser, privileged=privileged)


def _check_template(pattern: re.Pattern[str], repl: str, source: str, field: str) -> None:
    """Reject replacements that refer to groups the regex does not have."""
    for ref in re.findall(r"\\(\d+)|\\g<(\w+)>", repl):
        number, name = ref
        if number and int(number) > pattern.groups:
            raise PolicyError(
                source, field, f"replace refers to group \\{number} of {pattern.pattern!r}"
            )
        if (
            name
            and not (name.isdigit() and int(name) <= pattern.groups)
            and name not in pattern.groupindex
        ):
            raise PolicyError(source, field, f"replace refers to unknown group <{name}>")


def _roles(value: object, source: str) -> dict[str, RoleSpec]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise PolicyError(
            source, "roles", f"expected a mapping of role name -> role, got {value!r}"
        )
    roles = {}
    for name, spec in value.items():
        field = f"roles.{name}"
        if not isinstance(name, str) or not ROLE_NAME.match(name):
            raise PolicyError(
                source, field, "role names are 3-255 of a-z 0-9 - . ~ _, start with a letter"
            )
        if name in DEFAULT_ROLES:
            raise PolicyError(source, field, f"{name!r} is a JupyterHub default role")
        spec = _mapping(spec, source, field, ("description", "scopes"))
        scopes = _str_list(spec.get("scopes"), source, f"{field}.scopes")
        if not scopes:
            raise PolicyError(source, f"{field}.scopes", "a role needs at least one scope")
        for i, scope in enumerate(scopes):
            problem = scope_problem(scope)
            if problem:
                raise PolicyError(source, f"{field}.scopes[{i}]", problem)
        description = spec.get("description") or ""
        if not isinstance(description, str):
            raise PolicyError(
                source, f"{field}.description", f"expected a string, got {description!r}"
            )
        roles[name] = RoleSpec(name=name, scopes=scopes, description=description)
    return roles


def _grants(
    value: object, source: str, normaliser: GroupNormaliser, roles: Mapping[str, RoleSpec]
) -> tuple[GroupGrant, ...]:
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise PolicyError(
            source, "groups", f"expected a mapping of group name -> grants, got {value!r}"
        )
    grants, seen = [], {}
    for group, spec in value.items():
        field = f"groups.{group}"
        if not isinstance(group, str) or not group:
            raise PolicyError(source, field, "group names must be non-empty strings")
        key = normaliser.key(group)
        if key in seen:
            raise PolicyError(source, field, f"same group as {seen[key]!r} after case folding")
        seen[key] = group
        spec = _mapping(spec or {}, source, field, GROUP_KEYS)
        role_names = _str_list(spec.get("roles"), source, f"{field}.roles")
        for i, role in enumerate(role_names):
            if role not in roles:
                raise PolicyError(
                    source,
                    f"{field}.roles[{i}]",
                    f"unknown role {role!r} (defined under roles: {', '.join(sorted(roles)) or 'none'})",
                )
        profiles = []
        for i, text in enumerate(_str_list(spec.get("profiles"), source, f"{field}.profiles")):
            try:
                profiles.append(ProfileGrant.parse(text))
            except ValueError as exc:
                raise PolicyError(source, f"{field}.profiles[{i}]", str(exc)) from None
        grants.append(
            GroupGrant(
                group=group,
                login=_bool(spec.get("login"), True, source, f"{field}.login"),
                admin=_bool(spec.get("admin"), False, source, f"{field}.admin"),
                roles=role_names,
                profiles=tuple(profiles),
                credential_sets=_str_list(
                    spec.get("credential_sets"), source, f"{field}.credential_sets"
                ),
                culling_policy=_optional_str(
                    spec.get("culling_policy"), source, f"{field}.culling_policy"
                ),
            )
        )
    return tuple(grants)
