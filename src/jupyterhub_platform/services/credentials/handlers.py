"""The service's HTTP API: thin handlers over :class:`~.service.CredentialService`.

Every answer is JSON, errors too (``{"error": ...}``), never a traceback; a value is only ever in
the body of a 200 to the token's own user."""

from __future__ import annotations

import json

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from tornado import httputil, web

from .model import IssueError
from .service import UNAUTHENTICATED, CredentialService, answer

STATUS = {
    UNAUTHENTICATED: 403,
    "not_entitled": 403,
    "upstream_unavailable": 503,
}
"""HTTP status by refusal reason; a provider's failure (no or expired token in the auth state,
the upstream refused) is 502: the request was fine, the credential could not be had."""


def presented_token(handler: web.RequestHandler) -> str:
    kind, _, token = handler.request.headers.get("Authorization", "").partition(" ")
    return token.strip() if kind.lower() in ("token", "bearer") else ""


class APIHandler(web.RequestHandler):
    def initialize(self, service: CredentialService) -> None:
        self.service = service

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")

    def refuse(self, exc: IssueError) -> None:
        self.set_status(STATUS.get(exc.reason, 502))
        self.finish(json.dumps({"error": exc.message, "reason": exc.reason}))

    def write_error(self, status_code: int, **kwargs) -> None:
        """An unexpected failure: its status and name only (never a traceback or message)."""
        self.finish(json.dumps({"error": httputil.responses.get(status_code, "error")}))


class SetsHandler(APIHandler):
    """``GET api/v1/sets``: the sets the token's user may have (names and descriptions)."""

    async def get(self) -> None:
        try:
            subject = await self.service.subject(await self.service.identify(presented_token(self)))
        except IssueError as exc:
            return self.refuse(exc)
        self.finish(json.dumps({"user": subject.username, "sets": self.service.available(subject)}))


class CredentialHandler(APIHandler):
    """``GET api/v1/credentials/<set>``: the set's values for the token's user."""

    async def get(self, set_name: str) -> None:
        try:
            issued = await self.service.for_token(presented_token(self), set_name)
        except IssueError as exc:
            return self.refuse(exc)
        self.finish(json.dumps(answer(set_name, issued)))


class MetricsHandler(APIHandler):
    """Prometheus text format, for hub tokens holding ``read:metrics`` (as the hub's own)."""

    async def get(self) -> None:
        token = presented_token(self)
        try:
            await self.service.identify_scope(token, "read:metrics")
        except IssueError as exc:
            return self.refuse(exc)
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.finish(generate_latest(self.service.metrics.registry))


def routes(service: CredentialService) -> list[tuple]:
    args = {"service": service}
    return [
        ("api/v1/sets", SetsHandler, args),
        ("api/v1/credentials/([^/]+)", CredentialHandler, args),
        ("metrics", MetricsHandler, args),
    ]
