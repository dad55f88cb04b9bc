"""The set of profiles from one or more directories, checked as a whole."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType

from jupyterhub_platform.policy.entitlements import ProfileRule
from jupyterhub_platform.validate import load_located

from .errors import ProfileError, ProfileLoadError
from .model import CUSTOM_CHOICE, IMAGE_OPTION, SIZE_OPTION, Profile
from .schema import parse_profile

SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class Catalogue:
    """Profiles in display order (``order``, then slug)."""

    profiles: tuple[Profile, ...]
    _rules: tuple[ProfileRule, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # computed once: every spawn and every spawn-page view asks for them
        object.__setattr__(self, "_rules", tuple(profile_rule(p) for p in self.profiles))

    def get(self, slug: str) -> Profile | None:
        return next((p for p in self.profiles if p.slug == slug), None)

    def rules(self) -> tuple[ProfileRule, ...]:
        """What the profile files say about who may use what, for the group policy."""
        return self._rules


def profile_rule(profile: Profile) -> ProfileRule:
    images = {c.key: c.allowed_groups for c in profile.images}
    if profile.custom_image is not None:
        images[CUSTOM_CHOICE] = profile.custom_image.allowed_groups
    sizes = {s.key: s.allowed_groups for s in profile.sizes}
    return ProfileRule(
        slug=profile.slug,
        allowed_groups=profile.allowed_groups,
        choices=MappingProxyType(
            {IMAGE_OPTION: MappingProxyType(images), SIZE_OPTION: MappingProxyType(sizes)}
        ),
        kind=profile.kind,
        culling_policy=profile.culling_policy,
        credential_sets=profile.credential_sets,
    )


@functools.cache
def bundled_profiles_dir() -> Path:
    """The profiles shipped in the wheel, or the repository's ``profiles/`` in an editable install."""
    shipped = resources.files("jupyterhub_platform") / "_bundled" / "profiles"
    if shipped.is_dir():
        return Path(str(shipped))
    return Path(__file__).resolve().parents[3] / "profiles"


def profile_files(directories: Iterable[Path]) -> list[Path]:
    """YAML files directly in ``directories``; hidden entries (ConfigMap ``..data``) skipped."""
    files: list[Path] = []
    for directory in directories:
        if directory.is_dir():
            files += sorted(
                p
                for p in directory.iterdir()
                if p.suffix in SUFFIXES and not p.name.startswith(".") and p.is_file()
            )
    return files


def load_catalogue(directories: Sequence[Path]) -> Catalogue:
    """Load and check every profile file; :class:`ProfileLoadError` lists all problems."""
    errors: list[ProfileError] = []
    missing = [d for d in directories if not d.is_dir()]
    errors += [ProfileError(str(d), None, "", "profile directory does not exist") for d in missing]
    profiles: list[Profile] = []
    for path in profile_files(directories):
        try:
            profiles.append(parse_profile(load_located(path, ProfileError)))
        except ProfileError as e:
            errors.append(e)
        except ProfileLoadError as e:
            errors += e.errors
    errors += _cross_file_problems(profiles)
    if not profiles and not errors:
        dirs = ", ".join(str(d) for d in directories) or "(none configured)"
        errors.append(ProfileError(dirs, None, "", "no profile files (*.yaml) found"))
    if errors:
        raise ProfileLoadError(errors)
    return Catalogue(tuple(sorted(profiles, key=lambda p: (p.order, p.slug))))


def _cross_file_problems(profiles: list[Profile]) -> list[ProfileError]:
    problems, seen = [], {}
    for p in profiles:
        if p.slug in seen:
            problems.append(
                ProfileError(
                    p.source,
                    p.lines.get("slug"),
                    "slug",
                    f"{p.slug!r} is also used by {seen[p.slug]}",
                )
            )
        seen.setdefault(p.slug, p.source)
    defaults = [p for p in profiles if p.default]
    if len(defaults) > 1:
        names = ", ".join(f"{p.slug} ({p.source})" for p in defaults)
        problems.append(
            ProfileError(
                defaults[1].source,
                defaults[1].lines.get("default"),
                "default",
                f"more than one default profile: {names}",
            )
        )
    return problems
