"""The ``jupyterhub-platform`` command: one subcommand per area, each in its own module."""

from __future__ import annotations

import importlib
import sys

SUBCOMMANDS = {
    "dev": (
        "jupyterhub_platform.devcluster.cli",
        "Start the whole platform locally, no cluster needed.",
    ),
    "devcluster": (
        "jupyterhub_platform.devcluster.__main__",
        "Run only the Kubernetes API emulator and the process kubelet.",
    ),
    "policy": ("jupyterhub_platform.policy.cli", "Explain what the group policy gives a user."),
    "check": (
        "jupyterhub_platform.chart.check_cli",
        "Check chart values (or profile and policy files) before deploying.",
    ),
}


def usage() -> str:
    lines = ["usage: jupyterhub-platform <command> [options]", "", "commands:"]
    lines += [f"  {name:<11} {text}" for name, (_, text) in SUBCOMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in SUBCOMMANDS:
        print(f"jupyterhub-platform: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(SUBCOMMANDS[name][0])
    return module.main(rest) or 0


if __name__ == "__main__":
    sys.exit(main())
