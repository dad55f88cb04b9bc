"""The service's Prometheus metrics, in a registry of its own (served at ``<prefix>metrics``).
Labels are sets, providers, results and reasons: never users."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, ProcessCollector


class CredentialMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)  # process_*: the service's CPU and memory
        self.issuances = Counter(
            "credentials_issuances",
            "Issuance attempts, by set, provider and result (issued, refused, failed)",
            ["set", "provider", "result"],
            registry=self.registry,
        )
        self.refusals = Counter(
            "credentials_refusals",
            "Requests and renewals refused or failed, by reason",
            ["reason"],
            registry=self.registry,
        )
        self.renewals = Counter(
            "credentials_renewals",
            "Sets renewed in servers' Secrets, by set and result (renewed, revoked, failed)",
            ["set", "result"],
            registry=self.registry,
        )
        self.seconds_to_expiry = Gauge(
            "credentials_seconds_to_expiry",
            "Seconds until the soonest expiry of a set among the servers' Secrets (last round)",
            ["set"],
            registry=self.registry,
        )
        self.rounds = Counter(
            "credentials_renewal_rounds", "Renewal rounds, by result", ["result"],
            registry=self.registry,
        )  # fmt: skip
