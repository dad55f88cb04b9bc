"""Credential sets: declared once in the policy file's ``credential_sets:``, referenced by name.

Each declaration names a provider (an entry point of the
``jupyterhub_platform.credential_providers`` group) and its ``config``, which the provider
checks here: a bad endpoint, an unknown key or a typo in a group's or a profile's
``credential_sets`` fails the load, never a user's spawn (docs/credentials.md).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from types import MappingProxyType

from jupyterhub_platform.services.credentials.model import SET_NAME_RE, CredentialSet
from jupyterhub_platform.services.credentials.providers import ProviderClasses, load_provider
from jupyterhub_platform.validate import FieldPath, Invalid, Problems
from jupyterhub_platform.validate import checks as v

from .entitlements import ProfileRule

SET_KEYS = ("description", "provider", "config", "env", "files", "required")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
RESERVED_ENV = ("JUPYTERHUB_", "JPY_")
"""Prefixes of the variables the hub sets in every server (its API token among them)."""


def parse_credential_sets(
    value: object, providers: ProviderClasses | None = None
) -> Mapping[str, CredentialSet]:
    """Name -> declared set (absent: none); ``providers`` replaces the installed entry points."""
    if value is None:
        return MappingProxyType({})
    if not isinstance(value, Mapping):
        raise Invalid(f"must be a mapping of set name -> set, got {v.kind(value)}",
                      ("credential_sets",))  # fmt: skip
    sets: dict[str, CredentialSet] = {}
    env_owner: dict[str, str] = {}
    for name, spec in value.items():
        at: FieldPath = ("credential_sets", name)
        if not SET_NAME_RE.fullmatch(name):
            raise Invalid(
                f"{name!r} is not a valid set name (a DNS label: lowercase letters, digits and "
                "'-', at most 63)",
                at,
            )
        sets[name] = cset = parse_set(name, spec, at, providers)
        for var in cset.env:
            if var in env_owner:
                raise Invalid(f"{var} is already set by credential set {env_owner[var]!r}",
                              (*at, "env", var))  # fmt: skip
            env_owner[var] = name
    return MappingProxyType(sets)


def parse_set(
    name: str, spec: object, at: FieldPath, providers: ProviderClasses | None = None
) -> CredentialSet:
    """One declaration: its fields checked, then its provider built from ``config``."""
    problems = Problems()
    try:
        spec = v.fields(spec, problems, SET_KEYS, ("provider",))
    except Invalid as e:
        raise e.within(at) from None
    description = problems.field(spec, "description", v.text, default="")
    provider_name = problems.field(spec, "provider", v.string)
    config = problems.field(spec, "config", _config, default={})
    files = problems.field(spec, "files", v.boolean, default=True)
    required = problems.field(spec, "required", v.boolean, default=False)
    env = problems.field(spec, "env", v.string_map, ENV_NAME, default={})
    if problems:
        raise Invalid.of(problems.items).within(at)
    provider = load_provider(provider_name, config, at, providers)
    for var, key in env.items():
        if var.startswith(RESERVED_ENV):
            raise Invalid(f"{var} is set by the hub (names starting {' or '.join(RESERVED_ENV)} "
                          "are reserved)", (*at, "env", var))  # fmt: skip
        if key not in provider.keys:
            raise Invalid(
                f"{key!r} is not a key of the {provider_name} provider "
                f"(keys: {', '.join(provider.keys)})",
                (*at, "env", var),
            )
    return CredentialSet(
        name=name, provider=provider, description=description,
        env=MappingProxyType(dict(env)), files=files, required=required,
    )  # fmt: skip


def _config(value: object) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Invalid(f"must be a mapping (the provider's settings), got {v.kind(value)}")
    return value


def check_credential_references(
    declared: Mapping[str, object],
    references: Iterable[tuple[FieldPath, Iterable[str]]],
) -> None:
    """Every ``(field path, names)`` reference must name declared sets."""
    for at, names in references:
        for i, name in enumerate(names):
            if name not in declared:
                known = ", ".join(sorted(declared)) or "none"
                raise Invalid(
                    f"unknown credential set {name!r} (declared under credential_sets: {known})",
                    (*at, i),
                )


def profile_credential_references(rules: Iterable[ProfileRule]):
    """The profile files' ``credential_sets`` as references for :func:`check_credential_references`."""
    return [((f"profile {r.slug!r} credential_sets",), r.credential_sets) for r in rules]


def server_sets(
    entitled: Iterable[str], profile_sets: Iterable[str], declared: Mapping[str, object]
) -> tuple[str, ...]:
    """The sets a server gets: those the user's groups grant, narrowed to the profile's
    ``credential_sets`` when the profile lists any (sorted; only declared names)."""
    names = set(entitled)
    wanted = set(profile_sets)
    if wanted:
        names &= wanted
    return tuple(sorted(n for n in names if n in declared))
