"""The shipped Grafana dashboard: generated, valid for Grafana, and querying only metrics the
platform exports.

Validity is checked against Grafana's own schema as grafana-foundation-sdk generates it into
Python models (the 11.6 types; pinned in pyproject's ``test`` extra): with every panel and query
plugin registered, parsing the JSON and encoding it back gives the same JSON (a key the schema
does not know would be dropped, a required one missing would be added), and every value has the
type, enum member or literal the models' annotations name. On top: unique panel ids, panels on
the 24-column grid without overlaps, each panel type one Grafana ships, each query on the
``datasource`` variable. Queries are parsed with promql-parser; their metric names are checked
against the registries the code defines (the hub's, JupyterHub's, the culler's, the credentials
service's) and the backup service's names (its handler builds them per request).
"""

from __future__ import annotations

import enum
import json
import types
import typing
from pathlib import Path

import pytest
from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models import prometheus
from grafana_foundation_sdk.models.dashboard import Dashboard
from grafana_foundation_sdk.models.dashboard import Panel as DashboardPanel
from metric_names import family_names, selected_names
from prometheus_client import REGISTRY

from jupyterhub_platform.observability import dashboard as generator
from jupyterhub_platform.observability.hub_metrics import RunningServers
from jupyterhub_platform.services.credentials.metrics import CredentialMetrics
from jupyterhub_platform.services.culler.metrics import CullerMetrics

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "chart-values" / "grafana" / "jupyterhub-platform-dashboard.json"
BACKUP_NAMES = {
    "backup_homes",
    "backup_oldest_success_age_seconds",
    "backup_failed_jobs",
    "backup_last_bytes_added",
    "backup_last_bytes_processed",
    "backup_longest_duration_seconds",
}
"""The backup service's gauges (services/backup/pages.py MetricsHandler builds them at each
request, so there is no registry to read; the e2e checks them on the running service)."""


@pytest.fixture(scope="module")
def model() -> dict:
    return json.loads(SHIPPED.read_text())


def test_the_shipped_dashboard_is_the_generated_one(tmp_path, capsys):
    assert SHIPPED.read_text() == generator.render(generator.dashboard())
    assert generator.main(["--check", str(SHIPPED)]) == 0
    stale = tmp_path / "dashboard.json"
    stale.write_text(SHIPPED.read_text().replace('"Culling"', '"Cull"'))
    assert generator.main(["--check", str(stale)]) == 1
    assert f"{stale}: differs from the generated dashboard" in capsys.readouterr().err
    generator.main([str(stale)])
    assert stale.read_text() == SHIPPED.read_text()


def _hints(cls: type) -> dict[str, object]:
    return typing.get_type_hints(cls)


def type_errors(value: object, hint: object, path: str) -> list[str]:
    """Where ``value`` (from the SDK's ``from_json``) is not of the annotated ``hint``."""
    if hint is typing.Any or hint is object:
        return [] if not _is_model(value) else model_errors(value, path)
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [o for o in typing.get_args(hint) if o is not type(None)]
        if value is None:
            return [] if len(options) < len(typing.get_args(hint)) else [f"{path}: null"]
        classes = [o for o in options if isinstance(o, type) and isinstance(value, o)]
        if len(options) == 1 or classes:  # Optional[X], or the model class it is: in detail
            return type_errors(value, (classes or options)[0], path)
        attempts = [type_errors(value, option, path) for option in options]
        if any(not errors for errors in attempts):
            return []
        return [f"{path}: {value!r:.60} is none of {hint}"]
    if origin is typing.Literal:
        return [] if value in typing.get_args(hint) else [f"{path}: {value!r} not in {hint}"]
    if origin is list:
        if not isinstance(value, list):
            return [f"{path}: {value!r:.60} is not a list"]
        (item,) = typing.get_args(hint) or (object,)
        return [e for i, v in enumerate(value) for e in type_errors(v, item, f"{path}[{i}]")]
    if origin is dict:
        if not isinstance(value, dict):
            return [f"{path}: {value!r:.60} is not an object"]
        item = (typing.get_args(hint) or (str, object))[1]
        return [e for k, v in value.items() for e in type_errors(v, item, f"{path}.{k}")]
    if hint is type(None):
        return [] if value is None else [f"{path}: {value!r:.60} is not null"]
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        members = {m.value for m in hint}
        raw = value.value if isinstance(value, enum.Enum) else value
        return [] if raw in members else [f"{path}: {value!r} is not one of {sorted(members)}"]
    if hint is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return [] if ok else [f"{path}: {value!r:.60} is not a number"]
    if hint in (int, str, bool):
        ok = isinstance(value, hint) and (hint is bool or not isinstance(value, bool))
        return [] if ok else [f"{path}: {value!r:.60} is not {hint.__name__}"]
    if isinstance(hint, type):
        if not isinstance(value, hint):
            return [f"{path}: {value!r:.60} is not a {hint.__name__}"]
        return model_errors(value, path) if _is_model(value) else []
    return []


def _is_model(value: object) -> bool:
    return hasattr(type(value), "to_json") and hasattr(type(value), "__annotations__")


def model_errors(value: object, path: str) -> list[str]:
    """Every attribute of an SDK model against its class's annotations."""
    errors = []
    for name, hint in _hints(type(value)).items():
        errors += type_errors(getattr(value, name, None), hint, f"{path}.{name}")
    return errors


def _same(a: object, b: object, path: str = "$") -> list[str]:
    """Where the JSON ``a`` and ``b`` differ (keys one lacks, values)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [
            difference
            for key in sorted(set(a) | set(b))
            for difference in (
                [f"{path}.{key}: dropped by Grafana's model"] if key not in b
                else [f"{path}.{key}: required, added as {b[key]!r:.60}"] if key not in a
                else _same(a[key], b[key], f"{path}.{key}")
            )
        ]  # fmt: skip
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [
            d
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for d in _same(x, y, f"{path}[{i}]")
        ]
    return [] if a == b and type(a) is type(b) else [f"{path}: {a!r:.60} became {b!r:.60}"]


def test_grafanas_dashboard_model_takes_the_json_as_it_is(model):
    register_default_plugins()
    parsed = Dashboard.from_json(model)
    encoded = json.loads(json.dumps(parsed, cls=JSONEncoder))
    assert _same(model, encoded) == []
    assert model_errors(parsed, "$") == []
    for panel in parsed.panels or []:  # typed by the plugins' models, not kept as bags
        if isinstance(panel, DashboardPanel):
            assert all(isinstance(t, prometheus.Dataquery) for t in panel.targets), panel.title
            assert not isinstance(panel.options, dict), panel.title


def test_grafanas_model_check_catches_unknown_keys_and_wrong_types(model):
    """The two checks above are not vacuous: a typo'd key and a string width are found."""
    register_default_plugins()
    broken = json.loads(json.dumps(model))
    broken["panels"][1]["gridPos"]["w"] = "8"
    broken["panels"][1]["fieldConfg"] = {}
    broken["templating"]["list"][0]["type"] = "datasauce"
    parsed = Dashboard.from_json(broken)
    encoded = json.loads(json.dumps(parsed, cls=JSONEncoder))
    assert _same(broken, encoded) == ["$.panels[1].fieldConfg: dropped by Grafana's model"]
    errors = model_errors(parsed, "$")
    assert any(e.startswith("$.panels[1].grid_pos.w: '8'") for e in errors), errors
    assert any(e.startswith("$.templating.list_val[0].type_val: 'datasauce'") for e in errors)


def _overlaps(a: dict, b: dict) -> bool:
    return (
        a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"]
        and a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"]
    )  # fmt: skip


def test_the_layout_ids_types_and_data_sources(model):
    register_default_plugins()
    panels = model["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    shipped_types = set(cogruntime.Runtime().panelcfg_variants) | {"row"}
    for panel in panels:
        assert panel["type"] in shipped_types, panel["title"]
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["y"] >= 0 and grid["w"] > 0 and grid["h"] > 0
        assert grid["x"] + grid["w"] <= generator.GRID_WIDTH, panel["title"]
        if panel["type"] == "row":
            assert grid == {"h": 1, "w": 24, "x": 0, "y": grid["y"]} and not panel["panels"]
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"], panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs))
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"]
    for i, a in enumerate(panels):
        for b in panels[i + 1 :]:
            assert not _overlaps(a["gridPos"], b["gridPos"]), (a["title"], b["title"])
    (variable,) = model["templating"]["list"]
    assert (variable["type"], variable["name"], variable["query"]) == (
        "datasource", "datasource", "prometheus")  # fmt: skip
    rows = [p["title"] for p in panels if p["type"] == "row"]
    assert rows == [
        "Users and servers", "Spawns", "Logins and access", "Culling", "Backups",
        "Credentials", "Hub and services",
    ]  # fmt: skip


def defined_names() -> set[str]:
    """The sample names the code defines: the hub's registry (JupyterHub's metrics, ours, the
    process collector) and the running-servers collector, the services' registries."""
    import jupyterhub.metrics  # noqa: F401 - registers JupyterHub's metrics in REGISTRY

    names = family_names(REGISTRY.collect())
    names |= family_names(RunningServers(list).collect())
    names |= family_names(CullerMetrics().registry.collect())
    names |= family_names(CredentialMetrics().registry.collect())
    return names | BACKUP_NAMES


def test_every_query_parses_and_selects_only_defined_metrics(model):
    defined = defined_names()
    used: set[str] = set()
    for title, expr in generator.queries(model):
        names = selected_names(expr)
        assert names, (title, expr)
        assert names <= defined, (title, sorted(names - defined))
        used |= names
    # the brief's metrics are all on the dashboard
    for name in (
        "jupyterhub_platform_logins_total", "jupyterhub_platform_spawns_total",
        "jupyterhub_platform_spawn_duration_seconds_bucket", "jupyterhub_active_users",
        "culler_servers_culled_total", "credentials_seconds_to_expiry", "backup_homes",
        "process_cpu_seconds_total", "process_resident_memory_bytes",
    ):  # fmt: skip
        assert name in used, name


def test_selected_names_refuses_a_nameless_selector_and_skips_functions_and_labels():
    expr = 'sum by (le) (rate(a_bucket{le="+Inf", job=~"h.*"}[$__rate_interval])) / on() b'
    assert selected_names(expr) == {"a_bucket", "b"}
    assert selected_names('{__name__="c"}') == {"c"}
    with pytest.raises(ValueError, match="without a metric name"):
        selected_names('count({__name__=~"jupyterhub_.*"})')
