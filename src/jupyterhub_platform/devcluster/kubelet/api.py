"""A minimal Kubernetes REST client: JSON requests and watch streams over aiohttp.

The kubelet talks raw Kubernetes REST (standard paths, merge patches, newline-delimited watch
events), so it works against any API server, not only the project's emulator.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Mapping
from ssl import SSLContext

import aiohttp

_WATCH_TIMEOUT = aiohttp.ClientTimeout(total=None, connect=10, sock_read=None)
_REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=30)


class ApiError(Exception):
    """A failed API call; ``status`` is the HTTP status, 0 when the server was unreachable."""

    def __init__(self, status: int, message: str):
        super().__init__(f"HTTP {status}: {message}" if status else message)
        self.status = status


class ApiClient:
    """``token``: the bearer token the API server requires; ``ssl``: how to verify its TLS
    certificate (both from the kubeconfig)."""

    def __init__(self, base_url: str, token: str | None = None, *, ssl: SSLContext | None = None):
        self.base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._ssl = ssl
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        """The HTTP session. The token goes on API requests only: readiness probes share the
        session and must never hand it to a pod."""
        if self._session is None:
            connector = aiohttp.TCPConnector(ssl=self._ssl if self._ssl is not None else True)
            self._session = aiohttp.ClientSession(timeout=_REQUEST_TIMEOUT, connector=connector)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: object = None,
        params: Mapping[str, str] | None = None,
        content_type: str = "application/json",
    ) -> dict:
        """Send one request; the decoded JSON answer, or :class:`ApiError`."""
        data = None if json is None else _dumps(json)
        headers = {"Content-Type": content_type, "Accept": "application/json", **self._headers}
        try:
            async with self.session.request(
                method, self.base_url + path, data=data, params=params, headers=headers
            ) as resp:
                body = await resp.text()
                if resp.status >= 400:
                    raise ApiError(resp.status, _error_message(body))
                return _loads(body)
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise ApiError(0, f"{method} {path}: {exc!r}") from exc

    async def get_or_none(self, path: str) -> dict | None:
        try:
            return await self.request("GET", path)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    async def watch(
        self, path: str, params: Mapping[str, str], on_open: Callable[[], None]
    ) -> AsyncIterator[dict]:
        """The watch events of ``path`` (each a dict with ``type`` and ``object``).

        ``on_open`` is called once the server accepted the watch. Ends when the server closes
        the stream; connection failures raise :class:`ApiError`.
        """
        try:
            async with self.session.get(
                self.base_url + path, params=params, headers=self._headers, timeout=_WATCH_TIMEOUT
            ) as resp:
                if resp.status >= 400:
                    raise ApiError(resp.status, _error_message(await resp.text()))
                on_open()
                buffer = b""
                async for chunk in resp.content.iter_any():
                    buffer += chunk
                    *lines, buffer = buffer.split(b"\n")
                    for line in lines:
                        if line.strip():
                            yield json.loads(line)
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise ApiError(0, f"watch {path}: {exc!r}") from exc


def _dumps(value: object) -> bytes:
    return json.dumps(value).encode()


def _loads(body: str) -> dict:
    if not body.strip():
        return {}
    try:
        return json.loads(body)
    except json.JSONDecodeError:
        return {}


def _error_message(body: str) -> str:
    decoded = _loads(body)
    return str(decoded.get("message") or body[:200]) if isinstance(decoded, dict) else body[:200]
