"""The ``jupyterhub-platform`` command: one subcommand per area, each in its own module."""

from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Callable, Iterable
from importlib import metadata
from types import ModuleType

DISTRIBUTION = "jupyterhub-platform"
EXTRAS = {"dev": "dev", "devcluster": "dev"}
"""Subcommands that need an optional extra: running one without it says what to install."""

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


def extra_modules(requires: Iterable[str], extra: str) -> frozenset[str]:
    """Importable names of ``extra``'s requirements (``aiohttp>=3.9; extra == "dev"``)."""
    marker = re.compile(rf"""extra\s*==\s*["']{re.escape(extra)}["']""")
    names = (re.split(r"[\s<>=!~;\[(]", r, maxsplit=1)[0] for r in requires if marker.search(r))
    return frozenset(n.lower().replace("-", "_").replace(".", "_") for n in names if n)


def missing_extra(name: str, module: str | None, requires: Iterable[str]) -> str | None:
    """What to tell a user whose subcommand ``name`` failed importing ``module``, or None when
    that module is not one of the subcommand's extra (a real bug: let it raise)."""
    extra = EXTRAS.get(name)
    top = (module or "").partition(".")[0].lower()
    if extra is None or top not in extra_modules(requires, extra):
        return None
    return (
        f"jupyterhub-platform {name}: needs the '{extra}' extra, which is not installed "
        f"(no module {module!r}). Install it with:\n  pip install '{DISTRIBUTION}[{extra}]'"
    )


def _requires() -> list[str]:
    try:
        return metadata.requires(DISTRIBUTION) or []
    except metadata.PackageNotFoundError:
        return []


def main(
    argv: list[str] | None = None,
    import_module: Callable[[str], ModuleType] = importlib.import_module,
) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in SUBCOMMANDS:
        print(f"jupyterhub-platform: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    try:
        module = import_module(SUBCOMMANDS[name][0])
    except ModuleNotFoundError as exc:
        message = missing_extra(name, exc.name, _requires())
        if message is None:
            raise
        print(message, file=sys.stderr)
        return 1
    return module.main(rest) or 0


if __name__ == "__main__":
    sys.exit(main())
