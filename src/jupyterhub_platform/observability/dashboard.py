"""The Grafana dashboard of the platform's metrics, generated from the rows and panels below.

``python -m jupyterhub_platform.observability.dashboard [FILE]`` writes it (the shipped one is
``chart-values/grafana/jupyterhub-platform-dashboard.json``; without FILE it goes to standard
output; ``--check FILE`` fails when FILE differs). Every query names metrics the hub or a
service exports (docs/observability.md); the Prometheus data source is the ``datasource``
variable, chosen when the dashboard is imported or opened.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

UID = "jupyterhub-platform"
TITLE = "JupyterHub platform"
SCHEMA_VERSION = 39
"""Grafana's dashboard schema version of Grafana 10.x and 11.x (its ``schemaVersion``)."""
DATASOURCE_VARIABLE = "datasource"
DATASOURCE = {"type": "prometheus", "uid": f"${{{DATASOURCE_VARIABLE}}}"}
RATE_INTERVAL = "$__rate_interval"
"""Grafana's window for ``rate()``: at least four scrape intervals of the data source."""
REFRESH_INTERVALS = ("5s", "10s", "30s", "1m", "5m", "15m", "30m", "1h", "2h", "1d")
ROW_HEIGHT = 1
PANEL_HEIGHT = 8
GRID_WIDTH = 24


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""


@dataclass(frozen=True)
class Panel:
    title: str
    description: str
    queries: tuple[Query, ...]
    unit: str = "short"
    kind: str = "timeseries"  # or "stat"
    width: int = 12


@dataclass(frozen=True)
class Row:
    title: str
    panels: tuple[Panel, ...]


def rate(metric: str, by: str, matchers: str = "") -> str:
    """Per-second rate of a counter's samples ``metric`` summed by the labels ``by``."""
    return f"sum by ({by}) (rate({metric}{matchers}[{RATE_INTERVAL}]))"


def quantile(q: float, histogram: str, by: str) -> str:
    """The ``q`` quantile of a histogram's observations in the window, by labels ``by``."""
    group = f"{by}, le" if by else "le"
    return f"histogram_quantile({q}, sum by ({group}) (rate({histogram}_bucket[{RATE_INTERVAL}])))"


def legend(by: str) -> str:
    """Grafana's series name from the labels ``by`` (``"a, b"`` → ``{{a}} {{b}}``)."""
    return " ".join(f"{{{{{label.strip()}}}}}" for label in by.split(","))


def rates(title: str, description: str, metric: str, by: str, width: int, matchers: str = ""):
    """A panel of one counter's rate per second, summed by the labels ``by``."""
    query = Query(rate(metric, by, matchers), legend(by))
    return Panel(title, description, (query,), unit="ops", width=width)


P = "jupyterhub_platform"
ROWS: tuple[Row, ...] = (
    Row("Users and servers", (
        Panel("Running servers by profile and size",
              "Ready servers, by the profile and size their user chose (hub).",
              (Query(f"sum by (profile, size) ({P}_servers_running)", "{{profile}} {{size}}"),),
              width=8),
        Panel("Running servers by group",
              "Ready servers, once in each group of their user that the policy names (hub).",
              (Query(f"sum by (group) ({P}_servers_running_by_group)", "{{group}}"),), width=8),
        Panel("Active users",
              "JupyterHub's users active in the last 24 hours, 7 and 30 days; all users.",
              (Query("max by (period) (jupyterhub_active_users)", "active {{period}}"),
               Query("max(jupyterhub_total_users)", "all users")), width=8),
    )),
    Row("Spawns", (
        rates("Spawns by profile and result",
              "Spawns that began, per second, by profile and result (started, failed).",
              f"{P}_spawns_total", "profile, result", width=8),
        rates("Spawn refusals by reason",
              "Spawns refused before they began: invalid_options, not_entitled, quota.",
              f"{P}_spawn_refusals_total", "reason, profile", width=8),
        Panel("Spawn duration by profile",
              "Seconds from the spawner's start to a running server: median and 95th "
              "percentile of the spawns in the window.",
              (Query(quantile(0.5, f"{P}_spawn_duration_seconds", "profile"), "p50 {{profile}}"),
               Query(quantile(0.95, f"{P}_spawn_duration_seconds", "profile"),
                     "p95 {{profile}}")), unit="s", width=8),
    )),
    Row("Logins and access", (
        rates("Logins by result and reason",
              "Logins per second by result (ok, refused, failed) and reason.",
              f"{P}_logins_total", "result, reason", width=6),
        rates("Token verification failures",
              "ID tokens and Cloudflare Access tokens the hub refused, by verifier and reason.",
              f"{P}_token_verification_failures_total", "verifier, reason", width=6),
        rates("Policy changes",
              "Rights the group policy changed at login or refresh: admin granted or revoked, "
              "roles changed.", f"{P}_policy_changes_total", "change", width=6),
        rates("Requests on other users' things",
              "Requests by a user on another user's server, tokens or account, by result.",
              f"{P}_other_user_actions_total", "action, result", width=6),
    )),
    Row("Culling", (
        rates("Servers culled by policy and reason",
              "Servers the culler stopped (dry runs excluded), by culling policy and reason.",
              "culler_servers_culled_total", "policy, reason", 8, '{dry_run="false"}'),
        Panel("Servers by culling decision",
              "Servers the culler saw in its last cycle, by decision.",
              (Query("sum by (action) (culler_servers)", "{{action}}"),), width=8),
        Panel("Culler cycles and hub errors",
              "95th percentile of a culling cycle's duration; failed hub API requests per "
              "second.",
              (Query(quantile(0.95, "culler_cycle_duration_seconds", ""), "cycle p95 (s)"),
               Query(f"sum(rate(culler_hub_errors_total[{RATE_INTERVAL}]))",
                     "hub errors per second")), width=8),
    )),
    Row("Backups", (
        Panel("Homes by backup state",
              "Home volumes whose last backup succeeded (ok), failed, or that were never backed "
              "up.",
              (Query("sum by (state) (backup_homes)", "{{state}}"),), width=8),
        Panel("Oldest last success and longest backup",
              "Age of the oldest last successful backup among the homes; the longest last "
              "backup's duration.",
              (Query("max(backup_oldest_success_age_seconds)", "oldest success age"),
               Query("max(backup_longest_duration_seconds)", "longest duration")), unit="s",
              width=8),
        Panel("Failed backup Jobs",
              "Failed backup Jobs on record.",
              (Query("sum(backup_failed_jobs)", "failed Jobs"),), kind="stat", width=8),
        Panel("Bytes of the last backups",
              "Bytes the last successful backups added to the repositories and read from the "
              "homes.",
              (Query("sum(backup_last_bytes_added)", "added"),
               Query("sum(backup_last_bytes_processed)", "processed")), unit="bytes", width=24),
    )),
    Row("Credentials", (
        rates("Issued at spawn by set and result",
              "Credential sets the hub issued into servers' Secrets at spawn, per second, by "
              "set, provider and result (issued, failed).", f"{P}_credentials_issued_total",
              "set, provider, result", width=6),
        rates("Service issuances by set, provider and result",
              "The credentials service's issuance attempts per second (workspaces' requests), "
              "by set, provider and result (issued, refused, failed).",
              "credentials_issuances_total", "set, provider, result", width=6),
        rates("Renewals by set and result",
              "Sets renewed in servers' Secrets per second, by result (renewed, revoked, "
              "failed).", "credentials_renewals_total", "set, result", width=6),
        Panel("Seconds to the soonest expiry",
              "Per set, seconds until the soonest expiry among the servers' Secrets.",
              (Query("min by (set) (credentials_seconds_to_expiry)", "{{set}}"),), unit="s",
              width=6),
    )),
    Row("Hub and services", (
        Panel("CPU by job",
              "CPU seconds per second of the hub and of each service, by Prometheus job.",
              (Query(rate("process_cpu_seconds_total", "job"), "{{job}}"),), unit="percentunit"),
        Panel("Resident memory by job",
              "Resident memory of the hub and of each service, by Prometheus job.",
              (Query("sum by (job) (process_resident_memory_bytes)", "{{job}}"),),
              unit="bytes"),
    )),
)  # fmt: skip


def _target(query: Query, ref: str) -> dict:
    return {
        "datasource": dict(DATASOURCE),
        "expr": query.expr,
        "legendFormat": query.legend or "__auto",
        "range": True,
        "refId": ref,
    }


def _options(kind: str) -> dict:
    if kind == "stat":
        return {
            "colorMode": "value",
            "graphMode": "area",
            "justifyMode": "auto",
            "orientation": "auto",
            "percentChangeColorMode": "standard",
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "showPercentChange": False,
            "textMode": "auto",
            "wideLayout": True,
        }
    return {
        "legend": {"calcs": [], "displayMode": "list", "placement": "bottom", "showLegend": True},
        "tooltip": {"mode": "multi", "sort": "none"},
    }


def _panel(panel: Panel, panel_id: int, x: int, y: int) -> dict:
    return {
        "datasource": dict(DATASOURCE),
        "description": panel.description,
        "fieldConfig": {"defaults": {"custom": {}, "unit": panel.unit}, "overrides": []},
        "gridPos": {"h": PANEL_HEIGHT, "w": panel.width, "x": x, "y": y},
        "id": panel_id,
        "options": _options(panel.kind),
        "repeatDirection": "h",
        "targets": [_target(q, chr(ord("A") + i)) for i, q in enumerate(panel.queries)],
        "title": panel.title,
        "transparent": False,
        "type": panel.kind,
    }


def layout(rows: tuple[Row, ...]) -> list[dict]:
    """Grafana's flat panel list: each row panel, then its panels left to right, wrapping at the
    grid's width; ids count from 1 in that order."""
    panels: list[dict] = []
    y = 0
    for row in rows:
        panels.append({
            "collapsed": False,
            "gridPos": {"h": ROW_HEIGHT, "w": GRID_WIDTH, "x": 0, "y": y},
            "id": len(panels) + 1,
            "panels": [],
            "title": row.title,
            "type": "row",
        })  # fmt: skip
        y += ROW_HEIGHT
        x = 0
        for panel in row.panels:
            if x + panel.width > GRID_WIDTH:
                x, y = 0, y + PANEL_HEIGHT
            panels.append(_panel(panel, len(panels) + 1, x, y))
            x += panel.width
        y += PANEL_HEIGHT
    return panels


def datasource_variable() -> dict:
    return {
        "allowCustomValue": True,
        "auto": False,
        "auto_count": 30,
        "auto_min": "10s",
        "current": {"text": "", "value": ""},
        "hide": 0,
        "includeAll": False,
        "label": "Prometheus",
        "multi": False,
        "name": DATASOURCE_VARIABLE,
        "options": [],
        "query": "prometheus",
        "refresh": 1,
        "regex": "",
        "skipUrlSync": False,
        "type": "datasource",
    }


def dashboard(rows: tuple[Row, ...] = ROWS) -> dict:
    """The dashboard's JSON model."""
    return {
        "annotations": {"list": []},
        "description": "Users, servers, spawns, logins, culling, backups and credentials of a "
        "jupyterhub-platform hub; CPU and memory of the hub and its services.",
        "editable": True,
        "fiscalYearStartMonth": 0,
        "graphTooltip": 1,
        "links": [],
        "panels": layout(rows),
        "refresh": "1m",
        "schemaVersion": SCHEMA_VERSION,
        "tags": ["jupyterhub", "jupyterhub-platform"],
        "templating": {"list": [datasource_variable()]},
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {"hidden": False, "refresh_intervals": list(REFRESH_INTERVALS)},
        "timezone": "browser",
        "title": TITLE,
        "uid": UID,
        "version": 1,
    }


def render(model: dict) -> str:
    """The file's text: sorted keys, two-space indents, a final newline."""
    return json.dumps(model, indent=2, sort_keys=True) + "\n"


def queries(model: dict) -> Iterator[tuple[str, str]]:
    """(panel title, PromQL expression) of every target of ``model``'s panels."""
    for panel in model.get("panels", []):
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]


def expand(expr: str, rate_interval: str) -> str:
    """``expr`` as Grafana sends it to Prometheus, with ``$__rate_interval`` = ``rate_interval``
    (e.g. ``"5m"``): the only Grafana variable the queries use."""
    return expr.replace(RATE_INTERVAL, rate_interval)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m jupyterhub_platform.observability.dashboard",
        description="Write the platform's Grafana dashboard (JSON).",
    )
    parser.add_argument("file", nargs="?", type=Path, help="where to write it (default: stdout)")
    parser.add_argument("--check", action="store_true", help="fail if FILE differs")
    args = parser.parse_args(argv)
    text = render(dashboard())
    if args.check:
        if args.file is None:
            parser.error("--check needs FILE")
        current = args.file.read_text() if args.file.is_file() else ""
        if current != text:
            print(f"{args.file}: differs from the generated dashboard; regenerate it with "
                  f"`{parser.prog} {args.file}`", file=sys.stderr)  # fmt: skip
            return 1
        return 0
    if args.file is None:
        sys.stdout.write(text)
    else:
        args.file.parent.mkdir(parents=True, exist_ok=True)
        args.file.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
