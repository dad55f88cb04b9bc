"""Credential sets: declared once in the policy file's ``credential_sets:``, referenced by name.

The credential service (a later part of the platform) gives them contents; today the
declaration is what lets a typo in a group's or a profile's ``credential_sets`` fail the load.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

from jupyterhub_platform.validate import FieldPath, Invalid

from .entitlements import ProfileRule

SET_KEYS = ("description",)


def parse_credential_sets(value: object) -> Mapping[str, str]:
    """Name -> description of the declared sets (absent: none)."""
    if value is None:
        return MappingProxyType({})
    if not isinstance(value, Mapping):
        raise Invalid(f"expected a mapping of name -> set, got {value!r}", ("credential_sets",))
    sets = {}
    for name, spec in value.items():
        at = ("credential_sets", str(name))
        if not isinstance(name, str) or not name:
            raise Invalid("credential set names must be non-empty strings", at)
        spec = spec or {}
        if not isinstance(spec, Mapping) or any(k not in SET_KEYS for k in spec):
            raise Invalid(f"expected a mapping with {list(SET_KEYS)}, got {spec!r}", at)
        description = spec.get("description") or ""
        if not isinstance(description, str):
            raise Invalid(f"expected a string, got {description!r}", (*at, "description"))
        sets[name] = description
    return MappingProxyType(sets)


def check_credential_references(
    declared: Mapping[str, str],
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
