"""``helm template`` of the stock chart: the Kubernetes objects a release would create.

Helm merges the values files over the chart's ``values.yaml`` and validates them against the
chart's ``values.schema.json`` while rendering, so a render is also the schema check.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path

import yaml

DEFAULT_RELEASE = "jhub"
DEFAULT_NAMESPACE = "default"


class ChartRenderError(RuntimeError):
    """helm refused the values (schema or template failure); the message is helm's."""


def template_argv(
    helm: Path | str,
    chart: Path,
    values_files: Sequence[Path],
    *,
    release: str = DEFAULT_RELEASE,
    namespace: str = DEFAULT_NAMESPACE,
    sets: Sequence[str] = (),
) -> list[str]:
    argv = [str(helm), "template", release, str(chart), "--namespace", namespace]
    for path in values_files:
        argv += ["-f", str(path)]
    for assignment in sets:
        argv += ["--set", assignment]
    return argv


def render(argv: Sequence[str]) -> list[dict]:
    """Run ``helm template`` (from :func:`template_argv`); the rendered objects."""
    try:
        result = subprocess.run(
            list(argv), capture_output=True, text=True, check=False, timeout=120
        )
    except OSError as exc:
        raise ChartRenderError(f"cannot run {argv[0]}: {exc}") from None
    if result.returncode != 0:
        raise ChartRenderError(
            f"helm template rejected the values (exit {result.returncode}):\n{result.stderr.strip()}"
        )
    return [doc for doc in yaml.safe_load_all(result.stdout) if isinstance(doc, dict)]
