"""``jupyterhub-platform check``: what an admin runs before ``helm upgrade``, offline.

``check VALUES [-f OVERLAY]...`` renders the stock chart with the values (its schema runs there),
then checks ``hub.config`` against the real classes, ``hub.services``, ``hub.loadRoles``, the
profile files and the group policy the values mount. ``check [--profiles DIR] [--policy FILE]``
checks profile and policy files alone. Exit code: 0 when nothing is wrong, 1 when something is,
2 when the check itself could not run (no chart, bad arguments).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from jupyterhub_platform.policy.config import ENV_VAR
from jupyterhub_platform.profiles.catalogue import bundled_profiles_dir, load_catalogue
from jupyterhub_platform.profiles.cli import check_files
from jupyterhub_platform.profiles.errors import ProfileLoadError

from .locate import ChartNotFound, find_chart
from .render import ChartRenderError, render, template_argv
from .values import ValuesError, extra_files, get_path, load_values_file, merge_all
from .values_check import (
    Finding,
    Layer,
    config_findings,
    defined_in,
    hub_classes,
    policy_findings,
    profile_list_findings,
    role_findings,
    service_findings,
    service_names,
)

PROFILE_DIRS_PATH = "hub.config.ProfileSpawner.profile_directories"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jupyterhub-platform check",
        description="Check chart values (or profile and policy files) before deploying; every "
        "error names the file, the dotted path or line, and a suggestion when one is close.",
    )
    parser.add_argument("values", nargs="?", type=Path, help="the chart values file")
    parser.add_argument(
        "-f",
        dest="overlays",
        action="append",
        type=Path,
        default=[],
        metavar="OVERLAY",
        help="a further values file, repeatable, in helm -f order",
    )
    parser.add_argument(
        "--chart",
        type=Path,
        help="the unpacked z2jh chart (default: $Z2JH_CHART, else ../shared/z2jh/chart)",
    )
    parser.add_argument(
        "--no-schema",
        action="store_true",
        help="skip rendering the chart (its schema check) when no chart is at hand",
    )
    parser.add_argument(
        "--profiles",
        action="append",
        type=Path,
        metavar="DIR",
        help="profile directory, repeatable (default: what the values configure, else the "
        "profiles shipped with the package)",
    )
    parser.add_argument(
        "--policy",
        default=os.environ.get(ENV_VAR) or None,
        help=f"without values: a group policy file to check against the profiles (default: ${ENV_VAR})",
    )
    return parser


def schema_findings(layers: Sequence[Layer], chart: Path) -> list[Finding]:
    """Render the chart with the values; on a refusal, name the first file that causes it."""
    from jupyterhub_platform.chart.binaries import ensure_helm

    helm = ensure_helm(say=lambda _msg: None)
    files = [Path(layer.source) for layer in layers]
    try:
        render(template_argv(helm, chart, files))
        return []
    except ChartRenderError as exc:
        message = str(exc)
    for count in range(1, len(files)):
        try:
            render(template_argv(helm, chart, files[:count]))
        except ChartRenderError as exc:
            return [Finding(layers[count - 1].source, "", str(exc))]
    return [Finding(layers[-1].source, "", message)]


def profile_directories(
    layers: Sequence[Layer], merged: dict, workdir: Path
) -> list[Path] | Finding:
    """The directories the hub reads profiles from, as local directories.

    A configured directory that is not on this machine is checked from the ``hub.extraFiles``
    mounted under it (how a chart install gives the hub its profile files).
    """
    configured = get_path(merged, PROFILE_DIRS_PATH)
    if not configured:
        return [bundled_profiles_dir()]
    directories = []
    for i, directory in enumerate(configured):
        if Path(directory).is_dir():
            directories.append(Path(directory))
            continue
        prefix = str(directory).rstrip("/") + "/"
        mounted = [f for f in extra_files(merged) if f.mount_path.startswith(prefix)]
        if not mounted:
            return Finding(
                defined_in(layers, PROFILE_DIRS_PATH),
                f"{PROFILE_DIRS_PATH}[{i}]",
                f"{directory} is not on this machine and no hub.extraFiles entry is mounted "
                "under it; pass --profiles DIR to check the profiles",
            )
        local = workdir / f"profiles-{i}"
        for entry in mounted:
            target = local / entry.mount_path[len(prefix) :]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(entry.content)
        directories.append(local)
    return directories


def values_findings(layers: Sequence[Layer], profiles: Sequence[Path] | None) -> list[Finding]:
    """Everything but the schema: hub config, services, roles, profiles and policy."""
    from jupyterhub_platform.auth.policy_bridge import PolicyBridge
    from jupyterhub_platform.spawner import ProfileSpawner

    merged = merge_all(layer.values for layer in layers)
    classes, findings = hub_classes(layers, merged)
    findings += config_findings(layers, classes)
    findings += service_findings(layers)
    findings += role_findings(layers, service_names(merged))
    findings += profile_list_findings(layers, classes)
    rules: tuple = ()
    if classes.spawner is not None and issubclass(classes.spawner, ProfileSpawner):
        with tempfile.TemporaryDirectory() as workdir:
            directories = profiles or profile_directories(layers, merged, Path(workdir))
            if isinstance(directories, Finding):
                findings.append(directories)
            else:
                try:
                    rules = load_catalogue(list(directories)).rules()
                except ProfileLoadError as exc:
                    findings += [Finding("profiles", "", str(e)) for e in exc.errors]
    uses_policy = classes.authenticator is not None and issubclass(
        classes.authenticator, PolicyBridge
    )
    if uses_policy or get_path(merged, "hub.config.PlatformPolicy"):
        findings += policy_findings(layers, merged, rules)
    return findings


def check_values(args: argparse.Namespace) -> int:
    try:
        layers = [
            Layer(str(path), load_values_file(path)) for path in [args.values, *args.overlays]
        ]
    except ValuesError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    findings: list[Finding] = []
    if args.no_schema:
        print("note: the chart's schema was not checked (--no-schema)")
    else:
        try:
            chart = find_chart(args.chart)
        except ChartNotFound as exc:
            print(f"jupyterhub-platform check: {exc}; or pass --no-schema", file=sys.stderr)
            return 2
        findings += schema_findings(layers, chart)
    findings += values_findings(layers, args.profiles)
    errors = [f for f in findings if not f.note]
    for finding in findings:
        print(
            f"{'note' if finding.note else 'error'}: {finding}",
            file=sys.stderr if not finding.note else sys.stdout,
        )
    files = ", ".join(layer.source for layer in layers)
    if errors:
        print(f"{len(errors)} error(s) in {files}", file=sys.stderr)
        return 1
    print(f"values OK: {files}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.values is None:
        if args.overlays:
            parser.error("-f OVERLAY needs the values file it goes over")
        return check_files(args.profiles or [bundled_profiles_dir()], args.policy)
    if args.policy:
        parser.error(
            "--policy checks a policy file on its own; with values, the values' policy is checked"
        )
    return check_values(args)
