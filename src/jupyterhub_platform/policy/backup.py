"""Home-volume backups in the group policy: the ``backup:`` section and its decision (pure).

Every user's home volume is backed up unless the policy opts it out (docs/backup.md):

- ``opt_out_groups``: a member of any of these groups is not backed up (an opt-out group is a
  statement about its members, as culling's ``exempt_groups`` are: a group of guests, or of
  users who asked for no copies of their home);
- ``opt_out_profiles``: a user's home is one volume that every profile mounts, so a profile
  cannot opt out "its" part of it; a user is not backed up when *every* profile they may use
  opts out (one profile that does not means the home may hold what it made). A user with no
  profile at all is backed up.

The backup service and ``policy explain`` both ask :func:`backup_decision`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from jupyterhub_platform.validate import FieldPath, Invalid, Problems, checks

from .entitlements import ProfileRule

SECTION_KEYS = ("opt_out_groups", "opt_out_profiles")


@dataclass(frozen=True)
class Backup:
    """The ``backup:`` section (absent: every home is backed up)."""

    opt_out_groups: tuple[str, ...] = ()
    opt_out_profiles: tuple[str, ...] = ()


@dataclass(frozen=True)
class BackupDecision:
    """Whether a user's home is backed up, and why (one sentence for logs and ``explain``)."""

    backed_up: bool
    reason: str


def parse_backup(value: object) -> Backup:
    """The validated ``backup:`` section."""
    if value is None:
        return Backup()
    at: FieldPath = ("backup",)
    problems = Problems()
    section = problems.take(at, checks.mapping, value, SECTION_KEYS, default={})
    found = {}
    for key in SECTION_KEYS:
        raw = section.get(key)
        found[key] = (
            () if raw is None else problems.take((*at, key), checks.strings, raw, default=())
        )
    problems.raise_any()
    return Backup(**found)


def check_backup_groups(backup: Backup, known: Iterable[str], key: Callable[[str], str]) -> None:
    """Every opted-out group must be a group of the policy (a typo fails the load)."""
    known = list(known)
    keys = {key(g) for g in known}
    seen = set()
    for i, group in enumerate(backup.opt_out_groups):
        if key(group) in seen:
            raise Invalid(f"{group!r} is listed twice", ("backup", "opt_out_groups", i))
        seen.add(key(group))
        if key(group) not in keys:
            listed = ", ".join(known) or "none"
            raise Invalid(
                f"{group!r} is not a group of this policy (groups: {listed})",
                ("backup", "opt_out_groups", i),
            )


def check_backup_profiles(backup: Backup, rules: Iterable[ProfileRule]) -> None:
    """Every opted-out profile must be one of the profile files' (checked when they are known)."""
    slugs = sorted(r.slug for r in rules)
    for i, slug in enumerate(backup.opt_out_profiles):
        if slug not in slugs:
            raise Invalid(
                f"no profile {slug!r} (profiles: {', '.join(slugs) or 'none'})",
                ("backup", "opt_out_profiles", i),
            )


def backup_decision(
    backup: Backup,
    groups: Iterable[str],
    profiles: Mapping[str, object] | Iterable[str],
    key: Callable[[str], str] = lambda name: name,
    *,
    profiles_known: bool = True,
) -> BackupDecision:
    """Whether a user in (normalised) ``groups`` who may use ``profiles`` is backed up.

    ``key`` compares group names as the policy does (case folding); ``profiles_known=False``
    when the profile files were not loaded, so profile opt-outs cannot be weighed.
    """
    keys = {key(g) for g in groups}
    out = [g for g in backup.opt_out_groups if key(g) in keys]
    if out:
        return BackupDecision(False, f"group {out[0]} opts out (backup.opt_out_groups)")
    usable = sorted(profiles)
    if not backup.opt_out_profiles:
        return BackupDecision(True, "no opt-out applies")
    if not profiles_known:
        return BackupDecision(
            True, "no group opts out; backup.opt_out_profiles is not weighed without the profiles"
        )
    kept = [p for p in usable if p not in backup.opt_out_profiles]
    if usable and not kept:
        shown = ", ".join(usable)
        return BackupDecision(
            False, f"every profile they may use opts out: {shown} (backup.opt_out_profiles)"
        )
    if not usable:
        return BackupDecision(True, "no opt-out applies; they may use no profile")
    return BackupDecision(
        True, f"profile {kept[0]} does not opt out, and every profile mounts the one home"
    )
