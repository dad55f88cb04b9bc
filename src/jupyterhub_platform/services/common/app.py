"""The application base of every hub-managed service.

Reads what the hub passes a managed service (``JUPYTERHUB_API_URL``, ``JUPYTERHUB_API_TOKEN``,
``JUPYTERHUB_SERVICE_PREFIX``, ``JUPYTERHUB_SERVICE_URL``, ``JUPYTERHUB_BASE_URL``), takes
traitlets options on the command line and from ``--config`` files, logs in one format, and
serves ``/health`` under its prefix next to the service's own handlers.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from urllib.parse import urlparse

from tornado import web
from traitlets import Integer, List, Unicode, default
from traitlets.config import Application

from .hub_client import HubClient

LOG_FORMAT = "[%(levelname)1.1s %(asctime)s %(name)s] %(message)s"
BIND_URL_ENV = "JUPYTERHUB_SERVICE_BIND_URL"
"""Where a hub-managed service listens when that differs from its ``url`` (a pod: 0.0.0.0)."""


class HealthHandler(web.RequestHandler):
    """200 ``{"status": "ok"}``: the process is up and serving."""

    def get(self) -> None:
        self.finish({"status": "ok"})


class ServiceApp(Application):
    """Subclasses set ``name`` and implement :meth:`handlers` and :meth:`run`."""

    config_file = List(
        Unicode(),
        help="traitlets config files (Python or JSON) to load, in order; later ones win.",
    ).tag(config=True)

    api_url = Unicode(
        help="The hub's REST API URL (default: $JUPYTERHUB_API_URL, set by the hub)."
    ).tag(config=True)

    @default("api_url")
    def _api_url(self) -> str:
        return os.environ.get("JUPYTERHUB_API_URL", "http://127.0.0.1:8081/hub/api")

    api_token = Unicode(
        help="The service's hub API token (default: $JUPYTERHUB_API_TOKEN, set by the hub)."
    ).tag(config=True)

    @default("api_token")
    def _api_token(self) -> str:
        return os.environ.get("JUPYTERHUB_API_TOKEN", "")

    service_prefix = Unicode(
        help="URL prefix of the service's pages (default: $JUPYTERHUB_SERVICE_PREFIX)."
    ).tag(config=True)

    @default("service_prefix")
    def _service_prefix(self) -> str:
        return os.environ.get("JUPYTERHUB_SERVICE_PREFIX", f"/services/{self.name}/")

    service_url = Unicode(
        help="Where the service listens, http://IP:PORT (default: $JUPYTERHUB_SERVICE_URL). "
        "Empty: no web server (an API-only service)."
    ).tag(config=True)

    @default("service_url")
    def _service_url(self) -> str:
        return os.environ.get("JUPYTERHUB_SERVICE_URL", "")

    bind_url = Unicode(
        help="Where to listen when not at service_url, e.g. http://0.0.0.0:10101 in a pod "
        "whose service_url names the hub's Service (default: $" + BIND_URL_ENV + ")."
    ).tag(config=True)

    @default("bind_url")
    def _bind_url(self) -> str:
        return os.environ.get(BIND_URL_ENV, "") or self.service_url

    hub_concurrency = Integer(10, help="At most this many hub API requests at a time.").tag(
        config=True
    )

    @default("log_level")
    def _log_level(self) -> int:
        return logging.INFO

    @default("log_format")
    def _log_format(self) -> str:
        return LOG_FORMAT

    aliases = {"config": "ServiceApp.config_file", "log-level": "Application.log_level"}

    def initialize(self, argv: list[str] | None = None) -> None:
        self.parse_command_line(argv)
        for path in self.config_file:
            directory, name = os.path.split(os.path.abspath(path))
            self.load_config_file(name, path=directory)
        self.parse_command_line(argv)  # the command line wins over files
        logging.basicConfig(level=self.log_level, format=LOG_FORMAT, stream=sys.stderr)
        if not self.api_token:
            self.exit_error("no hub API token: set JUPYTERHUB_API_TOKEN or --ServiceApp.api_token")

    def exit_error(self, message: str) -> None:
        self.log.error("%s: %s", self.name, message)
        self.exit(1)

    def hub_client(self, **kwargs) -> HubClient:
        return HubClient(
            self.api_url, self.api_token, concurrency=self.hub_concurrency, log=self.log, **kwargs
        )

    def handlers(self) -> list[tuple]:
        """The service's own handlers, paths relative to the prefix (``""`` is the prefix)."""
        return []

    def web_settings(self) -> dict:
        """Extra tornado settings (HubOAuth services add theirs)."""
        return {}

    def make_web_app(self) -> web.Application:
        prefix = self.service_prefix.rstrip("/") + "/"
        routes = [(prefix + "health", HealthHandler)]
        routes += [(prefix + path, *rest) for path, *rest in self.handlers()]
        return web.Application(routes, **self.web_settings())

    async def run(self) -> None:
        """The service's work, until cancelled."""
        await asyncio.Event().wait()

    async def main(self) -> None:
        server = None
        if self.bind_url:
            address = urlparse(self.bind_url)
            server = self.make_web_app().listen(address.port or 80, address.hostname or "")
            self.log.info("%s listening on %s%s", self.name, self.bind_url, self.service_prefix)
        task = asyncio.ensure_future(self.run())
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        try:
            await task
        except asyncio.CancelledError:
            self.log.info("%s stopping", self.name)
        finally:
            if server is not None:
                server.stop()

    def start(self) -> None:
        asyncio.run(self.main())
