"""The shipped chart values and the group policy inline in them, for tests and benchmarks."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

from jupyterhub_platform.chart.values import load_values_file, policy_in_values
from jupyterhub_platform.devcluster.platform import shipped_values_dir


def shipped_values() -> Path:
    """``chart-values/values.yaml``: the wheel's bundled copy, or the source tree's."""
    return shipped_values_dir() / "values.yaml"


@functools.cache
def shipped_policy_file() -> Path:
    """The group policy the shipped values mount (``hub.extraFiles``), as a file of its own.

    For hubs and authenticators built outside the chart: ``c.PlatformPolicy.policy_file``.
    """
    policy = policy_in_values(load_values_file(shipped_values()))
    directory = tempfile.mkdtemp(prefix="shipped-policy-")
    atexit.register(shutil.rmtree, directory, True)
    path = Path(directory) / "policy.yaml"
    path.write_text(policy.text)
    return path
