"""Skipping for want of something installable: a skip on a contributor's machine, a failure in CI.

CI installs everything the tests use, so there a skip would hide a broken install step. Each
reason starts with :data:`MISSING_MARK`, which the terminal summary (tests/conftest.py) and
``./run tests`` collect into one list of what to install.
"""

from __future__ import annotations

import os

import pytest

MISSING_MARK = "missing"


def missing(message: str) -> None:
    """Skip (fail under ``CI``) because ``message`` names something not installed here."""
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(f"{MISSING_MARK}: {message}")
