"""What the platform tells its operators: Prometheus metrics with bounded labels and one audit
trail of security-relevant actions (docs/observability.md).

``audit`` is the trail's schema and writer, used by the hub and every service; ``hub_metrics``
and ``requests`` run in the hub process (installed by the platform's authenticators).
"""
