"""Who a verified Cloudflare Access token names, and which groups its identity carries.

Pure functions, so the rules the hub applies to every request can be tested without a hub:
users are named by their ``email`` (the whole address or its local part); service-token JWTs
(``common_name``, no ``email``) name nobody unless the hub explicitly maps them. Groups come as
strings or, from most identity providers behind Access, as ``{"id", "name", "email"}`` objects.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from .policy_bridge import claim_at

USERNAME_RULES = ("email", "local-part")


class IdentityRefused(Exception):
    """The token is genuine but names no hub user; ``reason`` is safe to log and show."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class Identity:
    """The hub user a token stands for; ``groups`` is set only for mapped service tokens."""

    name: str
    service_token: bool = False
    groups: tuple[str, ...] | None = None


def username_from_email(email: object, rule: str) -> str:
    """The hub username for ``email`` under ``rule`` (``email`` or ``local-part``)."""
    if not isinstance(email, str) or email.count("@") != 1:
        raise IdentityRefused("the token's email claim is not an email address")
    local, _, domain = email.partition("@")
    if not local or not domain:
        raise IdentityRefused("the token's email claim is not an email address")
    if rule == "local-part":
        return local
    if rule == "email":
        return email
    raise ValueError(f"username rule must be one of {USERNAME_RULES}, got {rule!r}")


def identity_from_claims(
    claims: Mapping,
    *,
    username_rule: str,
    allow_service_tokens: bool,
    service_tokens: Mapping[str, Mapping],
) -> Identity:
    """The identity behind verified ``claims``; raises :class:`IdentityRefused` when there is none."""
    if "email" in claims:
        return Identity(username_from_email(claims["email"], username_rule))
    common_name = claims.get("common_name")
    if not isinstance(common_name, str) or not common_name:
        raise IdentityRefused("the token carries no email claim")
    if not allow_service_tokens:
        raise IdentityRefused("service tokens may not log in to this hub")
    mapping = service_tokens.get(common_name)
    if not mapping:
        raise IdentityRefused(f"service token {common_name!r} is not mapped to a hub user")
    return Identity(mapping["name"], service_token=True, groups=tuple(mapping.get("groups", ())))


def check_service_tokens(service_tokens: Mapping[str, object]) -> None:
    """Refuse a malformed ``service_tokens`` mapping at start-up, naming the bad entry."""
    for common_name, entry in service_tokens.items():
        where = f"CloudflareAccessAuthenticator.service_tokens[{common_name!r}]"
        if (
            not isinstance(entry, Mapping)
            or not isinstance(entry.get("name"), str)
            or not entry["name"]
        ):
            raise ValueError(
                f"{where} must be {{'name': <hub username>, 'groups': [...]}}, got {entry!r}"
            )
        groups = entry.get("groups", [])
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            raise ValueError(f"{where}['groups'] must be a list of group names, got {groups!r}")
        unknown = sorted(set(entry) - {"name", "groups"})
        if unknown:
            raise ValueError(f"{where} has unknown key(s) {unknown}; allowed: name, groups")


def group_names(value: object, name_key: str) -> list[str]:
    """Group names in ``value``: a name, a list of names, or a list of group objects."""
    if isinstance(value, str | Mapping):
        value = [value]
    if not isinstance(value, list):
        return []
    names = []
    for item in value:
        if isinstance(item, Mapping):
            item = item.get(name_key)
        if isinstance(item, str) and item:
            names.append(item)
    return names


def groups_at(document: Mapping, paths: Iterable[Sequence[str]], name_key: str) -> list[str] | None:
    """Every group at any of ``paths`` in ``document``; None when no path is present at all."""
    values = [v for v in (claim_at(document, p) for p in paths) if v is not None]
    if not values:
        return None
    return sorted({name for v in values for name in group_names(v, name_key)})
