"""Metric names on both sides of the dashboard: those its PromQL selects (parsed with
promql-parser, a real PromQL parser) and those a registry or an endpoint's text exports."""

from __future__ import annotations

from collections.abc import Iterable

import promql_parser
from prometheus_client.parser import text_string_to_metric_families

from jupyterhub_platform.observability.dashboard import expand

SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "gaugehistogram": ("_bucket", "_gsum", "_gcount"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
}
"""The sample names of a metric family by its type (a family without samples yet, such as a
labelled counter never incremented, still has its name and type)."""


def sample_names(name: str, kind: str) -> set[str]:
    return {name + suffix for suffix in SUFFIXES.get(kind, ("",))}


def family_names(families: Iterable) -> set[str]:
    """Every sample name of ``families`` (prometheus_client Metric objects)."""
    names: set[str] = set()
    for family in families:
        names |= sample_names(family.name, family.type)
        names |= {sample.name for sample in family.samples}
    return names


def exposition_names(text: str) -> set[str]:
    """The sample names a Prometheus text exposition declares or carries."""
    return family_names(text_string_to_metric_families(text))


def selected_names(expr: str) -> set[str]:
    """The metric names ``expr`` (a dashboard query, Grafana's variables and all) selects.

    Raises ValueError for a selector without a plain name (``{__name__=~"..."}``): the
    dashboard's queries name each metric, so every name can be checked."""
    parsed = promql_parser.parse(expand(expr, "5m"))
    names: set[str] = set()
    unnamed: list[str] = []

    def visit(node) -> bool:
        if isinstance(node, promql_parser.VectorSelector):
            equal = [
                m.value
                for m in node.matchers.matchers
                if m.name == "__name__" and m.op == promql_parser.MatchOp.Equal
            ]
            name = node.name or (equal[0] if equal else None)
            if name is None:
                unnamed.append(str(node))
            else:
                names.add(name)
        return True

    promql_parser.walk(parsed, visit)
    if unnamed:
        raise ValueError(f"{expr!r}: selectors without a metric name: {', '.join(unnamed)}")
    return names
