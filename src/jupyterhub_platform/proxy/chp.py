"""``proxy_class: platform-chp``: CHP for routing, the workspaces for activity.

JupyterHub's ``update_last_activity`` (5.5 and 6.x) takes each user route's ``last_activity``
from :meth:`get_all_routes` and moves the server's activity to it; CHP sets that on every
proxied byte, so an open but untouched tab keeps a server "active" forever. Routes without
``last_activity`` are skipped by the hub ("possibly proxy other than CHP"), so dropping the key
leaves the workspace's own reports (``/hub/api/users/<name>/activity``, sent by
jupyterhub-singleuser from the platform's workspace extension) as the only source.
"""

from __future__ import annotations

from typing import Any

from jupyterhub.proxy import ConfigurableHTTPProxy

TRAFFIC_ACTIVITY_KEY = "last_activity"


def without_traffic_activity(routes: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``routes`` (JupyterHub's proxy route format) with CHP's ``last_activity`` removed."""
    return {
        spec: {
            **route,
            "data": {k: v for k, v in route["data"].items() if k != TRAFFIC_ACTIVITY_KEY},
        }
        for spec, route in routes.items()
    }


class PlatformProxy(ConfigurableHTTPProxy):
    """ConfigurableHTTPProxy whose routes carry no traffic-based ``last_activity``.

    Configured as ``ConfigurableHTTPProxy`` is (the chart's settings apply unchanged: traitlets
    config of a parent class reaches the subclass).
    """

    async def get_all_routes(self, *args: Any, **kwargs: Any) -> dict[str, dict[str, Any]]:
        return without_traffic_activity(await super().get_all_routes(*args, **kwargs))
