"""The culler's pages: each user's servers with policy, idle time and countdown; the same as
JSON; admins see everyone and a dry-run preview; Prometheus metrics."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from tornado import web

from jupyterhub_platform.policy.culling import format_duration

from ..common.hub_client import user_url
from ..common.web import TEMPLATES, UserHandler
from .views import server_views, to_cull


class CullerHandler(UserHandler):
    def initialize(self, culler) -> None:
        self.culler = culler

    async def views(self, everyone: bool):
        """The current user's servers, or (admins, ``everyone``) every running server."""
        culler = self.culler
        now = culler.clock()
        if everyone:
            self.require_admin()
            users = [u async for u in culler.client.paged("/users", {"state": "ready"})]
        else:
            _, user = await culler.client.request("GET", user_url(self.user["name"]))
            users = [user]
        return now, [v for u in users for v in server_views(u, culler.policy, now)]


class PageHandler(CullerHandler):
    @web.authenticated
    async def get(self) -> None:
        everyone = self.get_argument("all", "") == "1"
        now, views = await self.views(everyone)
        self.finish(
            TEMPLATES.load("culler/templates/culler.html").generate(
                user=self.user["name"],
                admin=self.is_admin(),
                everyone=everyone,
                views=views,
                preview=to_cull(views) if everyone else [],
                dry_run=self.culler.cull_settings.dry_run,
                every=format_duration(self.culler.cull_every),
                now=now,
                duration=format_duration,
                prefix=self.culler.service_prefix,
            )
        )


class ServersAPIHandler(CullerHandler):
    @web.authenticated
    async def get(self) -> None:
        everyone = self.get_argument("all", "") == "1"
        now, views = await self.views(everyone)
        data = {
            "now": now.isoformat(),
            "warn_before": self.culler.warn_before,
            "servers": [v.as_json() for v in views],
        }
        if everyone:
            data["preview"] = [v.as_json() for v in to_cull(views)]
        self.write_json(data)


class MetricsHandler(UserHandler):
    """Prometheus text format, for tokens holding ``read:metrics`` (as the hub's own /metrics)."""

    hub_scopes = {"read:metrics"}

    def initialize(self, culler) -> None:
        self.culler = culler

    @web.authenticated
    def get(self) -> None:
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.finish(generate_latest(self.culler.metrics.registry))
