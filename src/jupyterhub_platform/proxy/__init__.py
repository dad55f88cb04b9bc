"""The hub's proxy: configurable-http-proxy without its traffic-based activity (docs/activity.md)."""

from .chp import PlatformProxy, without_traffic_activity

__all__ = ["PlatformProxy", "without_traffic_activity"]
