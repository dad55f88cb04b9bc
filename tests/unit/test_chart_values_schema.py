"""chart-values/values.yaml validates against the stock z2jh 4.4.0 chart's values schema."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import jsonschema
import pytest

from jupyterhub_platform.devcluster import chart

ROOT = Path(__file__).resolve().parents[2]
VALUES = ROOT / "chart-values" / "values.yaml"
# The stock chart's schema lives beside the project (shared/), or where Z2JH_VALUES_SCHEMA says.
SCHEMA = Path(
    os.environ.get("Z2JH_VALUES_SCHEMA") or ROOT.parent / "shared" / "z2jh" / "values.schema.json"
)


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


@pytest.fixture(scope="module")
def validator():
    if not SCHEMA.exists():
        message = f"z2jh values schema not found at {SCHEMA} (set Z2JH_VALUES_SCHEMA)"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI always has it: a skip there would hide a broken check
        pytest.skip(message)
    schema = _without_required(json.loads(SCHEMA.read_text()))
    return jsonschema.Draft7Validator(schema)


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
