"""``jupyterhub-platform-culler``: the hub-managed culler service."""

from __future__ import annotations

import asyncio
import os
from datetime import datetime, timezone

from traitlets import Bool, Float, Integer

from ..common.app import ServiceApp
from ..common.hub_client import HubAPIError
from ..common.policy_source import PolicyLoadError, PolicySource
from ..common.web import oauth_routes, oauth_settings
from .cycle import CullSettings, run_cycle
from .metrics import CullerMetrics
from .pages import MetricsHandler, PageHandler, ServersAPIHandler


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class CullerApp(ServiceApp):
    name = "culler"
    description = "Stop idle servers by the group policy's culling policies (docs/culler.md)."
    classes = [PolicySource]

    cull_every = Float(60.0, help="Seconds between culling cycles.").tag(config=True)
    dry_run = Bool(
        False, help="Decide and log (and show) what would be stopped, but stop nothing."
    ).tag(config=True)
    remove_named_servers = Bool(
        False, help="Remove culled named servers (not only stop them)."
    ).tag(config=True)
    cull_users = Bool(
        False,
        help="Also delete users who have no servers and were inactive longer than "
        "user_idle_timeout (needs the admin:users and read:users:name scopes).",
    ).tag(config=True)
    user_idle_timeout = Integer(
        7 * 86400, help="Seconds of inactivity after which a user with no servers is deleted."
    ).tag(config=True)
    cull_admin_users = Bool(False, help="With cull_users, delete admin users too.").tag(config=True)
    once = Bool(
        False, help="Run one cycle and exit (with dry_run: what would be stopped now)."
    ).tag(config=True)
    page_size = Integer(
        200,
        help="Users per page of the hub's user listing (the hub caps it at its "
        "api_page_max_limit, 200 by default, and would otherwise send 50): fewer round trips.",
    ).tag(config=True)
    warn_before = Float(
        600.0,
        help="Seconds before a server's stop at which its JupyterLab warns the user (the "
        "platform's cull-warning extension reads it from api/servers); 0: no warning.",
    ).tag(config=True)
    max_backoff = Float(
        600.0, help="Longest wait (seconds) between cycles while the hub keeps failing."
    ).tag(config=True)

    aliases = {
        **ServiceApp.aliases,
        "cull-every": "CullerApp.cull_every",
        "policy": "PolicySource.policy_file",
    }
    flags = {
        "dry-run": ({"CullerApp": {"dry_run": True}}, "Stop nothing; log what would be stopped."),
        "once": ({"CullerApp": {"once": True}}, "Run one cycle and exit."),
    }

    def initialize(self, argv=None) -> None:
        super().initialize(argv)
        try:
            self.policy = PolicySource(parent=self).load()
        except PolicyLoadError as exc:
            self.exit_error(str(exc))
        self.client = self.hub_client(page_size=self.page_size)
        self.metrics = CullerMetrics()
        self.clock = utcnow
        self.cull_settings = CullSettings(
            dry_run=self.dry_run,
            remove_named_servers=self.remove_named_servers,
            cull_users=self.cull_users,
            user_idle_timeout=self.user_idle_timeout,
            cull_admin_users=self.cull_admin_users,
            actor=os.environ.get("JUPYTERHUB_SERVICE_NAME", "culler"),
        )

    def handlers(self) -> list[tuple]:
        args = {"culler": self}
        return [
            ("", PageHandler, args),
            ("api/servers", ServersAPIHandler, args),
            ("metrics", MetricsHandler, args),
            *oauth_routes(),
        ]

    def web_settings(self) -> dict:
        return oauth_settings(self.service_prefix, self.api_url, self.api_token)

    async def cycle(self):
        """One cycle, with the hub's request and error counts in the metrics."""
        requests, errors = self.client.requests, self.client.errors
        try:
            return await run_cycle(
                self.client, self.policy, self.cull_settings, self.metrics, self.log, self.clock
            )
        finally:
            self.metrics.hub_requests.inc(self.client.requests - requests)
            self.metrics.hub_errors.inc(self.client.errors - errors)

    async def run(self) -> None:
        if self.once:
            await self.cycle()
            return
        failures = 0
        while True:
            try:
                report = await self.cycle()
            except HubAPIError as exc:
                failures += 1
                wait = min(self.cull_every * 2**failures, max(self.max_backoff, self.cull_every))
                self.log.error("culling cycle failed (%s); next in %.0fs", exc, wait)
            else:
                failures, wait = 0, self.cull_every
                self.log.info(
                    "cycle: %s servers (%s), %d culled%s in %.2fs",
                    sum(report.seen.values()),
                    ", ".join(f"{n} {a}" for a, n in sorted(report.seen.items())) or "none",
                    len(report.culled),
                    " (dry run)" if self.dry_run else "",
                    report.duration,
                )
            await asyncio.sleep(wait)


main = CullerApp.launch_instance
