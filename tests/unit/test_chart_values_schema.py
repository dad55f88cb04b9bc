"""chart-values/values.yaml validates against the stock z2jh 4.4.0 chart's values schema."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from jupyterhub_platform.devcluster import chart

ROOT = Path(__file__).resolve().parents[2]
VALUES = ROOT / "chart-values" / "values.yaml"
@pytest.fixture
def validator(z2jh_values_validator):
    return z2jh_values_validator


def test_shipped_values_match_the_chart_schema(validator):
    errors = [
        f"{list(e.absolute_path)}: {e.message}"
        for e in validator.iter_errors(chart.load_install_values(VALUES))
    ]
    assert errors == []


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("singleuser", "storage", "type"), "nfs"),
        (("singleuser", "cpu", "limit"), "two"),
        (("hub", "config", "lowercase"), {}),
        (("singleuser", "notAKey"), 1),
    ],
)
def test_schema_check_catches_mistakes(validator, path, value):
    values = copy.deepcopy(chart.load_install_values(VALUES))
    node = values
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    assert list(validator.iter_errors(values))
