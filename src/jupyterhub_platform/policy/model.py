"""The group policy and its one decision: which :class:`Entitlements` a set of groups earns.

Everything here is pure: no I/O, no JupyterHub objects. :mod:`.loader` builds a :class:`Policy`
from a file; authenticators, the spawner and the CLI only call :meth:`Policy.resolve`.

Merge rules (documented in ``docs/policy.md``): grants are additive. A profile or a choice is
available when its profile file leaves it open, names one of the user's groups, or the policy
grants it to one of the user's groups. Single-valued settings (the culling policy) come from the
first of the user's groups in policy-file order that sets one, else from ``defaults``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from jupyterhub_platform.services.credentials.model import CredentialSet

from .backup import Backup, BackupDecision, backup_decision
from .culling import Culling
from .entitlements import OPEN, Entitlements, ProfileRule
from .normalise import GroupNormaliser
from .quotas import Quotas, UserQuota

ALL = "*"
DEFAULT_ROLES = frozenset({"user", "admin", "server", "token"})
ROLE_NAME = re.compile(r"^[a-z][a-z0-9\-_~\.]{1,253}[a-z0-9]$")


@dataclass(frozen=True)
class RoleSpec:
    """A custom JupyterHub role the policy hands out."""

    name: str
    scopes: tuple[str, ...]
    description: str = ""

    def as_jupyterhub_role(self) -> dict:
        """The role dict ``load_managed_roles`` and ``authenticate()['roles']`` use."""
        role = {"name": self.name, "scopes": list(self.scopes)}
        if self.description:
            role["description"] = self.description
        return role


@dataclass(frozen=True)
class ProfileGrant:
    """``*`` (every profile and choice), ``slug``, ``slug/option/choice`` or ``slug/option/*``."""

    slug: str
    option: str | None = None
    choice: str | None = None

    @classmethod
    def parse(cls, text: str) -> ProfileGrant:
        parts = text.split("/")
        if len(parts) == 1 and parts[0]:
            return cls(parts[0])
        if len(parts) == 3 and all(parts) and parts[0] != ALL:
            return cls(*parts)
        raise ValueError(f"{text!r} is not '*', '<slug>' or '<slug>/<option>/<choice or *>'")

    def __str__(self) -> str:
        return "/".join(p for p in (self.slug, self.option, self.choice) if p)

    def grants_profile(self, slug: str) -> bool:
        return self.slug in (ALL, slug)

    def grants_choice(self, slug: str, option: str, choice: str) -> bool:
        if self.slug == ALL:
            return True
        return self.slug == slug and self.option == option and self.choice in (ALL, choice)


@dataclass(frozen=True)
class GroupGrant:
    """What membership of one group gives."""

    group: str
    login: bool = True
    admin: bool = False
    roles: tuple[str, ...] = ()
    profiles: tuple[ProfileGrant, ...] = ()
    credential_sets: tuple[str, ...] = ()
    culling_policy: str | None = None


@dataclass(frozen=True)
class Policy:
    """A validated policy file, merged with the profile files' rules."""

    source: str = "<empty policy>"
    normaliser: GroupNormaliser = GroupNormaliser()
    roles: Mapping[str, RoleSpec] = field(default_factory=lambda: MappingProxyType({}))
    grants: tuple[GroupGrant, ...] = ()
    default_culling_policy: str | None = None
    profile_rules: tuple[ProfileRule, ...] = ()
    culling: Culling = Culling()
    credential_sets: Mapping[str, CredentialSet] = field(
        default_factory=lambda: MappingProxyType({})
    )
    quotas: Quotas = Quotas()
    backup: Backup = Backup()

    @property
    def login_groups(self) -> frozenset[str]:
        """Groups whose members may log in (the authenticator's ``allowed_groups``)."""
        return frozenset(g.group for g in self.grants if g.login)

    @property
    def admin_groups(self) -> frozenset[str]:
        return frozenset(g.group for g in self.grants if g.admin and g.login)

    def role_dicts(self, names: Iterable[str]) -> list[dict]:
        return [self.roles[n].as_jupyterhub_role() for n in sorted(names)]

    def grants_for(self, names: Iterable[str]) -> list[GroupGrant]:
        """The grants of already-normalised group ``names``, in policy-file order."""
        keys = {self.normaliser.key(n) for n in names}
        return [g for g in self.grants if self.normaliser.key(g.group) in keys]

    def resolve(self, groups: Iterable[str], *, normalised: bool = False) -> Entitlements:
        """Compute what ``groups`` earn.

        ``groups`` are the identity provider's names, normalised here first; pass
        ``normalised=True`` for names that already were, such as JupyterHub's groups when the
        authenticator manages them (normalising twice is not always a no-op).
        """
        names = frozenset(g for g in groups if g) if normalised else self.normaliser(groups)
        keys = {self.normaliser.key(n) for n in names}
        mine = self.grants_for(names)
        if not any(g.login for g in mine):
            return Entitlements(groups=names)
        culling = next((g.culling_policy for g in mine if g.culling_policy), None)
        grants = [p for g in mine for p in g.profiles]
        return Entitlements(
            groups=names,
            login_allowed=True,
            admin=any(g.admin for g in mine),
            roles=frozenset(r for g in mine for r in g.roles),
            profiles=self.profiles_for(keys, grants),
            credential_sets=frozenset(c for g in mine for c in g.credential_sets),
            culling_policy=culling or self.default_culling_policy,
        )

    def quota_for(self, groups: Iterable[str]) -> UserQuota:
        """The quota of a user in the (normalised) ``groups`` (docs/quotas.md)."""
        return self.quotas.for_groups(groups, self.normaliser.key)

    def backup_for(self, groups: Iterable[str], *, normalised: bool = False) -> BackupDecision:
        """Whether the home of a user in ``groups`` is backed up, and why (docs/backup.md)."""
        entitlements = self.resolve(groups, normalised=normalised)
        return backup_decision(
            self.backup,
            entitlements.groups,
            entitlements.profiles,
            self.normaliser.key,
            profiles_known=bool(self.profile_rules),
        )

    def _member(self, keys: set[str], allowed: frozenset[str] | None) -> bool:
        return allowed is OPEN or any(self.normaliser.key(a) in keys for a in allowed)

    def profiles_for(
        self, keys: Iterable[str], grants: Iterable[ProfileGrant] = ()
    ) -> Mapping[str, Mapping[str, frozenset[str]]]:
        """The profiles and choices open to groups with normalised ``keys`` given ``grants``.

        A profile or choice is open when its rule leaves it open (OPEN), names one of the
        groups, or a grant gives it; a profile with an option that has nothing left to pick is
        not offered. With no grants this is the profile files' ``allowed_groups`` alone.
        """
        keys, grants = set(keys), list(grants)
        result: dict[str, Mapping[str, frozenset[str]]] = {}
        for rule in self.profile_rules:
            slug = rule.slug
            choice_granted = any(g.slug == slug and g.option for g in grants)
            if not (
                self._member(keys, rule.allowed_groups)
                or choice_granted
                or any(g.grants_profile(slug) for g in grants)
            ):
                continue
            options = {}
            for option, choices in rule.choices.items():
                allowed = frozenset(
                    key
                    for key, groups in choices.items()
                    if self._member(keys, groups)
                    or any(g.grants_choice(slug, option, key) for g in grants)
                )
                if not allowed:  # an option with nothing to pick makes the profile unusable
                    break
                options[option] = allowed
            else:
                result[slug] = MappingProxyType(options)
        return MappingProxyType(result)
