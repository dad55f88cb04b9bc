"""``jupyterhub-platform policy explain --groups a,b``: what would such a user get?"""

from __future__ import annotations

import argparse
import json
import os
import sys

from .config import ENV_VAR
from .errors import PolicyError
from .explain import explain, render
from .loader import load_policy


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jupyterhub-platform policy")
    sub = parser.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("explain", help="print what a user with the given groups gets")
    ex.add_argument(
        "--groups",
        default="",
        help="comma-separated groups as the identity provider reports them (before normalisation)",
    )
    ex.add_argument(
        "--policy",
        default=os.environ.get(ENV_VAR),
        help=f"policy YAML file (default: ${ENV_VAR})",
    )
    ex.add_argument(
        "--profiles",
        default=None,
        help="profiles file or directory, so profile and choice rules are merged in",
    )
    ex.add_argument("--json", action="store_true", help="print JSON instead of text")
    return parser


def _profile_rules(path: str | None):
    if not path:
        return ()
    # The profile catalogue owns its file format; it hands the policy its rules.
    try:
        from jupyterhub_platform.profiles import load_profile_rules
    except ImportError:
        raise ValueError("--profiles: this installation has no profile catalogue") from None
    return load_profile_rules(path)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not args.policy:
        print(f"policy explain: give --policy or set ${ENV_VAR}", file=sys.stderr)
        return 2
    groups = [g.strip() for g in args.groups.split(",") if g.strip()]
    try:
        policy = load_policy(args.policy, _profile_rules(args.profiles))
    except (PolicyError, ValueError) as exc:
        print(f"policy explain: {exc}", file=sys.stderr)
        return 1
    report = explain(policy, groups)
    print(json.dumps(report, indent=2) if args.json else render(report))
    return 0
