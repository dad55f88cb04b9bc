"""Profile files: schema, loading with line numbers, reloading, entitlements and option checks."""

from __future__ import annotations

from pathlib import Path

from jupyterhub_platform.policy.entitlements import ProfileRule
from jupyterhub_platform.validate import load_located

from .catalogue import Catalogue, bundled_profiles_dir, load_catalogue
from .errors import ProfileError, ProfileLoadError
from .model import Profile
from .schema import parse_profile


def load_profile_rules(path: str | Path) -> tuple[ProfileRule, ...]:
    """The rules of the profile file or directory ``path`` (for the policy's tools)."""
    path = Path(path)
    if path.is_dir():
        return load_catalogue([path]).rules()
    return Catalogue((parse_profile(load_located(path, ProfileError)),)).rules()


__all__ = [
    "Catalogue",
    "Profile",
    "ProfileError",
    "ProfileLoadError",
    "bundled_profiles_dir",
    "load_catalogue",
    "load_profile_rules",
]
