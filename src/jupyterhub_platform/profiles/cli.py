"""``jupyterhub-platform check``: validate profile files (and the policy file) before deploying."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from jupyterhub_platform.policy.config import ENV_VAR
from jupyterhub_platform.policy.errors import PolicyError
from jupyterhub_platform.policy.loader import load_policy

from .catalogue import bundled_profiles_dir, load_catalogue
from .errors import ProfileLoadError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jupyterhub-platform check",
        description="Validate profile files and the group policy; errors are printed as file:line.",
    )
    parser.add_argument(
        "--profiles",
        action="append",
        metavar="DIR",
        help="profile directory (repeatable; default: the profiles shipped with the package)",
    )
    parser.add_argument(
        "--policy",
        default=os.environ.get(ENV_VAR) or None,
        help=f"group policy file, checked against the profiles (default: ${ENV_VAR}, if set)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    directories = [Path(d) for d in args.profiles] if args.profiles else [bundled_profiles_dir()]
    try:
        catalogue = load_catalogue(directories)
    except ProfileLoadError as e:
        for error in e.errors:
            print(f"error: {error}", file=sys.stderr)
        print(f"{len(e.errors)} error(s) in profile files", file=sys.stderr)
        return 1
    slugs = ", ".join(p.slug for p in catalogue.profiles)
    print(f"profiles OK: {len(catalogue.profiles)} ({slugs})")
    if args.policy:
        try:
            load_policy(args.policy, catalogue.rules())
        except PolicyError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        print(f"policy OK: {args.policy}")
    return 0
