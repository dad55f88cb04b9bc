"""Where the stock z2jh chart is on this machine, and how to get it.

The platform targets the released Zero-to-JupyterHub chart, unpacked as ``helm pull --untar``
leaves it. Looked up in order: an explicit directory (``--chart``), ``$Z2JH_CHART``, then
``../shared/z2jh/chart`` beside a source checkout. There is no built-in fallback: a missing chart
is an error that says how to fetch one.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

import yaml

CHART_NAME = "jupyterhub"
CHART_VERSION = "4.4.0"
CHART_REPO = "https://hub.jupyter.org/helm-chart/"
ENV_VAR = "Z2JH_CHART"
SOURCE_TREE_CHART = Path(__file__).resolve().parents[3].parent / "shared" / "z2jh" / "chart"
"""``../shared/z2jh/chart`` beside a source checkout (meaningless, and absent, in a wheel install)."""


class ChartNotFound(RuntimeError):
    """No usable chart directory; the message says how to get one."""


def fetch_argv(helm: Path | str, dest: Path) -> list[str]:
    """The command that downloads and unpacks the chart into ``dest/jupyterhub``."""
    return [
        str(helm), "pull", CHART_NAME, "--repo", CHART_REPO, "--version", CHART_VERSION,
        "--untar", "-d", str(dest),
    ]  # fmt: skip


def how_to_fetch(dest: Path | str = "DIR") -> str:
    command = " ".join(fetch_argv("helm", Path(dest)))
    return (
        f"get the z2jh {CHART_VERSION} chart with `{command}` (or `jupyterhub-platform dev "
        f"--fetch-chart {dest}`), then pass --chart {dest}/{CHART_NAME} or set ${ENV_VAR}"
    )


def check_chart_dir(path: Path) -> Path:
    """``path`` if it is an unpacked z2jh chart with its hub configuration files."""
    path = Path(path).expanduser().resolve()
    meta_file = path / "Chart.yaml"
    try:
        meta = yaml.safe_load(meta_file.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ChartNotFound(
            f"{path} is not a chart directory ({meta_file}: {exc}); {how_to_fetch()}"
        ) from None
    if not isinstance(meta, dict) or meta.get("name") != CHART_NAME:
        raise ChartNotFound(
            f"{meta_file}: name is {meta.get('name')!r}, not the z2jh chart {CHART_NAME!r}"
        )
    for needed in ("files/hub/jupyterhub_config.py", "files/hub/z2jh.py", "values.schema.json"):
        if not (path / needed).is_file():
            raise ChartNotFound(f"{path}: {needed} is missing; not an unpacked z2jh release chart")
    return path


def find_chart(explicit: Path | None = None, env: Mapping[str, str] = os.environ) -> Path:
    """The chart directory to use: ``explicit``, else ``$Z2JH_CHART``, else the source tree's."""
    if explicit is not None:
        return check_chart_dir(explicit)
    if env.get(ENV_VAR):
        return check_chart_dir(Path(env[ENV_VAR]))
    if SOURCE_TREE_CHART.is_dir():
        return check_chart_dir(SOURCE_TREE_CHART)
    raise ChartNotFound(f"no z2jh chart found (no --chart, ${ENV_VAR} unset); {how_to_fetch()}")


def chart_version(chart: Path) -> str:
    return str((yaml.safe_load((chart / "Chart.yaml").read_text()) or {}).get("version"))


def fetch_chart(helm: Path, dest: Path) -> Path:
    """Download the chart into ``dest`` with ``helm pull``; the unpacked chart's directory."""
    dest = Path(dest).expanduser().resolve()
    target = dest / CHART_NAME
    if target.exists():
        raise ChartNotFound(f"{target} already exists; use it with --chart {target}")
    dest.mkdir(parents=True, exist_ok=True)
    argv = fetch_argv(helm, dest)
    result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=300)
    if result.returncode != 0:
        raise ChartNotFound(
            f"`{' '.join(argv)}` failed (exit {result.returncode}): {result.stderr.strip()[-800:]}\n"
            f"This machine may not reach {CHART_REPO}. Fetch the chart where it can (the same "
            f"command, or `helm pull jupyterhub/jupyterhub --version {CHART_VERSION} --untar` "
            f"after `helm repo add jupyterhub {CHART_REPO}`), copy the unpacked directory here "
            f"and pass --chart DIR or set ${ENV_VAR}"
        )
    return check_chart_dir(target)
