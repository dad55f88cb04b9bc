"""Chart values the e2e modules give the local platform: a test policy and a fast culler."""

from __future__ import annotations

import sys
from pathlib import Path

CULLER = str(Path(sys.executable).parent / "jupyterhub-platform-culler")
METRICS_ENDPOINTS = {
    "hub": "/hub/metrics",
    "culler": "/services/culler/metrics",
    "backup": "/services/backup/metrics",
    "credentials": "/services/credentials/metrics",
}
"""Where the hub and each service serve their metrics, under the proxy (``read:metrics``)."""


def fast_culler_values(policy_text: str, every: int, warn_before: int) -> dict:
    """Values with ``policy_text`` as the group policy and a culler checking every ``every``
    seconds (named servers allowed; servers report activity every 2 s)."""
    return {
        "hub": {
            "config": {"JupyterHub": {"allow_named_servers": True}},
            "extraFiles": {"platform-policy": {"stringData": policy_text}},
            "services": {
                "culler": {
                    "command": [
                        CULLER,
                        f"--cull-every={every}",
                        f"--CullerApp.warn_before={warn_before}",
                    ]
                }
            },
        },
        "singleuser": {"extraEnv": {"JUPYTERHUB_ACTIVITY_INTERVAL": "2"}},
    }


def metric_values(text: str) -> dict[str, float]:
    """Prometheus text format → sample (name and labels, as written) → value."""
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in text.splitlines() if line and not line.startswith("#")}  # fmt: skip
