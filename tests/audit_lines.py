"""The audit events in a process's output (docs/observability.md: one JSON object per line)."""

from __future__ import annotations

import json

from jupyterhub_platform.observability.audit import VERSION


def audit_events(text: str, action: str | None = None, **match) -> list[dict]:
    """Events of ``action`` (any) whose top-level fields or details equal ``match``."""
    found = []
    for line in text.splitlines():
        line = line.strip()
        if not (line.startswith("{") and '"audit":' in line):
            continue
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("audit") != VERSION or (action and event.get("action") != action):
            continue
        fields = {**event.get("details", {}), **event}
        if all(fields.get(k) == v for k, v in match.items()):
            found.append(event)
    return found
