"""The culler's Prometheus metrics, in a registry of its own (served at ``<prefix>metrics``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector


class CullerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)  # process_*: the service's CPU and memory
        self.culled = Counter(
            "culler_servers_culled",
            "Servers stopped (or, in dry-run, that would have been), by policy and reason",
            ["policy", "reason", "dry_run"],
            registry=self.registry,
        )
        self.users_culled = Counter(
            "culler_users_culled", "Users without servers deleted", registry=self.registry
        )
        self.cycle_duration = Histogram(
            "culler_cycle_duration_seconds",
            "Duration of one culling cycle",
            buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
            registry=self.registry,
        )
        self.hub_errors = Counter(
            "culler_hub_errors",
            "Failed hub API requests (retries included)",
            registry=self.registry,
        )
        self.hub_requests = Counter(
            "culler_hub_requests", "Hub API requests sent", registry=self.registry
        )
        self.servers = Gauge(
            "culler_servers",
            "Servers seen in the last cycle, by decision",
            ["action"],
            registry=self.registry,
        )
