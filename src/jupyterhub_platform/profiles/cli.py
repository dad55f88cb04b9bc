"""Checking profile files (and a policy file against them), for ``jupyterhub-platform check``."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from jupyterhub_platform.policy.errors import PolicyError
from jupyterhub_platform.policy.loader import load_policy

from .catalogue import load_catalogue
from .errors import ProfileLoadError


def check_files(directories: Sequence[Path], policy: str | None) -> int:
    """Load the profiles in ``directories`` and, if given, the policy file; print file:line errors."""
    try:
        catalogue = load_catalogue(list(directories))
    except ProfileLoadError as e:
        for error in e.errors:
            print(f"error: {error}", file=sys.stderr)
        print(f"{len(e.errors)} error(s) in profile files", file=sys.stderr)
        return 1
    slugs = ", ".join(p.slug for p in catalogue.profiles)
    print(f"profiles OK: {len(catalogue.profiles)} ({slugs})")
    if policy:
        try:
            load_policy(policy, catalogue.rules())
        except PolicyError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        print(f"policy OK: {policy}")
    return 0
