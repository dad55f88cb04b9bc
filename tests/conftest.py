"""Fixtures shared by every test directory."""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import pytest
from skips import MISSING_MARK, missing

ROOT = Path(__file__).resolve().parents[1]
# The stock chart's values schema lives beside the project (shared/), or where Z2JH_VALUES_SCHEMA says.
Z2JH_SCHEMA = Path(
    os.environ.get("Z2JH_VALUES_SCHEMA") or ROOT.parent / "shared" / "z2jh" / "values.schema.json"
)


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


def _without_required(schema):
    """The schema minus ``required``: Helm validates values merged over the chart's defaults,
    which supply every required key, so a partial values file must be checked without them.
    ``oneOf`` branches keep theirs: there ``required`` picks the branch, it is not a default."""
    if isinstance(schema, dict):
        return {
            k: (v if k == "oneOf" else _without_required(v))
            for k, v in schema.items()
            if k != "required"
        }
    if isinstance(schema, list):
        return [_without_required(v) for v in schema]
    return schema


@pytest.fixture(scope="session")
def z2jh_values_validator() -> jsonschema.Draft7Validator:
    """A validator for values files given to the stock z2jh 4.4 chart."""
    if not Z2JH_SCHEMA.exists():
        message = f"z2jh values schema not found at {Z2JH_SCHEMA} (set Z2JH_VALUES_SCHEMA)"
        missing(message)
    return jsonschema.Draft7Validator(_without_required(json.loads(Z2JH_SCHEMA.read_text())))
