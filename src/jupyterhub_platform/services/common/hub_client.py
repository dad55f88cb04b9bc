"""An async client for the hub's REST API: paged listings, retries with backoff, a concurrency
limit, and a count of the requests it made (for metrics and the benchmark)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import quote, urlencode

from tornado.httpclient import AsyncHTTPClient, HTTPRequest

PAGINATION = "application/jupyterhub-pagination+json"
RETRY_STATUS = frozenset({429, 500, 502, 503, 504, 599})  # 599: tornado's connection error


class HubAPIError(RuntimeError):
    """The hub answered with an error (after retries where a retry could help)."""

    def __init__(self, method: str, path: str, status: int, message: str):
        self.status = status
        super().__init__(f"hub API {method} {path}: {status} {message}")


class HubClient:
    """``await client.request("GET", "/users/bob")``; ``async for u in client.paged("/users")``."""

    def __init__(
        self,
        api_url: str,
        token: str,
        *,
        concurrency: int = 10,
        retries: int = 4,
        backoff: float = 0.5,
        page_size: int | None = None,
        timeout: float = 30.0,
        log: logging.Logger | None = None,
    ):
        self.api_url = api_url.rstrip("/")
        self._token = token
        self._limit = asyncio.Semaphore(concurrency)
        self.retries, self.backoff, self.page_size, self.timeout = (
            retries,
            backoff,
            page_size,
            timeout,
        )
        self.log = log or logging.getLogger(__name__)
        self.requests = 0
        """Requests sent (retries included)."""
        self.errors = 0
        """Requests that failed (each retry that failed counts)."""

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        params: Mapping | None = None,
        accept: str = "application/json",
    ) -> tuple[int, Any]:
        """``(status, decoded JSON or None)``; 4xx other than 429 raise at once, others retry."""
        url = self.api_url + path + (f"?{urlencode(params)}" if params else "")
        return await self._send(method, path, url, body, accept=accept)

    async def paged(self, path: str, params: Mapping | None = None) -> AsyncIterator[dict]:
        """Every item of a listing, following JupyterHub's ``_pagination.next`` links; the next
        page is requested before this one's items are handed out, so the hub builds it while the
        caller works through them."""
        query = dict(params or {})
        if self.page_size:
            query["limit"] = str(self.page_size)
        url = self.api_url + path + (f"?{urlencode(query)}" if query else "")
        pending = asyncio.ensure_future(self._send("GET", path, url, None, accept=PAGINATION))
        try:
            while pending is not None:
                _, page = await pending
                pending = None
                if isinstance(page, list):  # a hub that does not paginate
                    items = page
                else:
                    items = page.get("items", [])
                    following = (page.get("_pagination") or {}).get("next")
                    if following:
                        pending = asyncio.ensure_future(
                            self._send("GET", path, following["url"], None, accept=PAGINATION)
                        )
                for item in items:
                    yield item
        finally:
            if pending is not None:  # the caller stopped early or failed: drop the prefetch
                _discard(pending)

    async def _send(self, method, path, url, body, *, accept) -> tuple[int, Any]:
        headers = {"Authorization": f"token {self._token}", "Accept": accept}
        payload = None if body is None else json.dumps(body)
        attempt = 0
        while True:
            req = HTTPRequest(
                url,
                method=method,
                headers=headers,
                body=payload,
                allow_nonstandard_methods=True,
                request_timeout=self.timeout,
            )
            async with self._limit:
                self.requests += 1
                try:
                    resp = await AsyncHTTPClient().fetch(req, raise_error=False)
                except OSError as exc:  # refused, reset: the hub restarting
                    status, text = 599, str(exc)
                else:
                    status, text = (
                        resp.code,
                        resp.body.decode("utf8", "replace") if resp.body else "",
                    )
            if status < 400:
                return status, json.loads(text) if text else None
            self.errors += 1
            if status not in RETRY_STATUS or attempt == self.retries:
                raise HubAPIError(method, path, status, _message(text))
            delay = self.backoff * 2**attempt
            self.log.warning("hub API %s %s: %s; retry in %.1fs", method, path, status, delay)
            await asyncio.sleep(delay)
            attempt += 1


def _discard(task: asyncio.Future) -> None:
    """Cancel ``task``; if it already ended, retrieve its outcome (no "never retrieved" noise)."""
    if not task.cancel() and not task.cancelled():
        task.exception()


def _message(text: str) -> str:
    try:
        return str(json.loads(text).get("message", text))[:300]
    except (ValueError, AttributeError):
        return text[:300]


def user_url(user: str) -> str:
    """``/users/<user>``, quoted."""
    return f"/users/{quote(user, safe='')}"


def server_url(user: str, server: str = "") -> str:
    """``/users/<user>/server`` or ``/users/<user>/servers/<server>``, quoted."""
    base = user_url(user)
    return f"{base}/servers/{quote(server, safe='')}" if server else f"{base}/server"
