"""``jupyterhub-platform policy explain --groups a,b``: what would such a user get?

The policy comes from a policy file (``--policy``) or from chart values (``--values``): the
``hub.extraFiles`` entry mounted where ``hub.config.PlatformPolicy.policy_file`` says.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

from .config import ENV_VAR
from .errors import PolicyError
from .explain import explain, render
from .loader import load_policy, policy_from_text
from .model import Policy


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="jupyterhub-platform policy")
    sub = parser.add_subparsers(dest="command", required=True)
    ex = sub.add_parser("explain", help="print what a user with the given groups gets")
    ex.add_argument(
        "--groups",
        default="",
        help="comma-separated groups as the identity provider reports them (before normalisation)",
    )
    source = ex.add_mutually_exclusive_group()
    source.add_argument(
        "--policy",
        default=os.environ.get(ENV_VAR),
        help=f"policy YAML file (default: ${ENV_VAR})",
    )
    source.add_argument(
        "--values",
        action="append",
        metavar="FILE",
        help="chart values file(s), in helm -f order: the policy they mount for the hub",
    )
    ex.add_argument(
        "--profiles",
        default=None,
        help="profiles file or directory, so profile and choice rules are merged in",
    )
    ex.add_argument(
        "--spawn",
        action="append",
        metavar="SLUG[,OPTION=CHOICE...]",
        default=[],
        help="show the culling policy of a server spawned with this profile and choices, e.g. "
        "jupyterlab,size=ml-gpu (repeatable; default: each profile the user may use)",
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


def _policy_from_values(files: list[str], rules) -> Policy:
    from jupyterhub_platform.chart import values

    found = values.policy_in_values(
        values.merge_all(values.load_values_file(Path(f)) for f in files)
    )
    file, start = values.policy_text_start(files, found)
    label = f"{file}: {found.path}"  # errors name the file's lines when the text has them
    policy = policy_from_text(found.text, file if start else label, rules, start)
    return dataclasses.replace(policy, source=label)


def _spawn(text: str) -> dict[str, str]:
    slug, *pairs = text.split(",")
    options = {"profile": slug.strip()}
    for pair in pairs:
        option, sep, choice = pair.partition("=")
        if not (sep and option.strip() and choice.strip() and slug.strip()):
            raise ValueError(f"--spawn {text!r}: expected SLUG[,OPTION=CHOICE...]")
        options[option.strip()] = choice.strip()
    return options


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not (args.policy or args.values):
        print(f"policy explain: give --policy or --values, or set ${ENV_VAR}", file=sys.stderr)
        return 2
    groups = [g.strip() for g in args.groups.split(",") if g.strip()]
    try:
        rules = _profile_rules(args.profiles)
        if args.values:
            policy = _policy_from_values(args.values, rules)
        else:
            policy = load_policy(args.policy, rules)
    except (PolicyError, ValueError) as exc:
        print(f"policy explain: {exc}", file=sys.stderr)
        return 1
    try:
        spawns = [_spawn(text) for text in args.spawn]
    except ValueError as exc:
        print(f"policy explain: {exc}", file=sys.stderr)
        return 2
    report = explain(policy, groups, spawns)
    print(json.dumps(report, indent=2) if args.json else render(report))
    return 0
