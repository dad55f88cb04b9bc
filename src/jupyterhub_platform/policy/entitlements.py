"""The contract between the group policy and its consumers (spawner, services, CLI).

The group policy is the one source of truth for what a user gets. Profile files still say who may
use a profile or a choice (``allowed_groups``), but they say it *to the policy*: the catalogue
hands its rules to the policy as :class:`ProfileRule` values, the policy merges them with the
policy file's own grants, and everything downstream only ever reads :class:`Entitlements`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

OPEN = None
"""``allowed_groups`` value meaning: anyone allowed to log in."""


@dataclass(frozen=True)
class ProfileRule:
    """Who may use one profile and each of its choices, as a profile file declares it."""

    slug: str
    allowed_groups: frozenset[str] | None = OPEN
    # option name -> choice key -> allowed groups (OPEN: anyone entitled to the profile)
    choices: Mapping[str, Mapping[str, frozenset[str] | None]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    kind: str | None = None
    culling_policy: str | None = None
    credential_sets: tuple[str, ...] = ()


@dataclass(frozen=True)
class Entitlements:
    """What a user with a given set of groups gets. Built only by the policy."""

    groups: frozenset[str] = frozenset()
    login_allowed: bool = False
    admin: bool = False
    roles: frozenset[str] = frozenset()
    # profile slug -> option name -> choice keys the user may pick
    profiles: Mapping[str, Mapping[str, frozenset[str]]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    credential_sets: frozenset[str] = frozenset()
    culling_policy: str | None = None

    def may_use_profile(self, slug: str) -> bool:
        return slug in self.profiles

    def may_use_choice(self, slug: str, option: str, choice: str) -> bool:
        return choice in self.profiles.get(slug, {}).get(option, frozenset())
