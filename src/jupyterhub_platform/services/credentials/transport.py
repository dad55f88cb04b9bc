"""The plain I/O an :class:`~.model.IssueContext` gives providers, shared by the hub and the
service: HTTP with a timeout (:func:`http_fetch`) and Secrets of the hub's namespace
(:func:`secret_reader`), read so that no Secret body reaches the Kubernetes client's debug log."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .model import IssueError

if TYPE_CHECKING:
    from kubernetes_asyncio.client import CoreV1Api

log = logging.getLogger(__name__)

Fetch = Callable[..., Awaitable[tuple[int, Mapping[str, str], bytes]]]


def http_fetch(timeout: float = 10.0) -> Fetch:
    """``fetch(method, url, headers, body) -> (status, headers, body)`` on tornado's client;
    any HTTP status is an answer, an unreachable or silent server ``upstream_unavailable``."""

    async def fetch(
        method: str, url: str, headers: Mapping[str, str] | None = None, body: Any = None
    ) -> tuple[int, Mapping[str, str], bytes]:
        from tornado.httpclient import AsyncHTTPClient

        try:
            response = await AsyncHTTPClient().fetch(
                url, method=method, headers=dict(headers or {}), body=body,
                request_timeout=timeout, connect_timeout=timeout,
                follow_redirects=False, raise_error=False,
            )  # fmt: skip
        except Exception as exc:  # refused, reset, timed out, TLS: the message names no secret
            where = urlsplit(url)
            raise IssueError(
                "upstream_unavailable",
                f"cannot reach {where.scheme}://{where.netloc} ({type(exc).__name__})",
            ) from None
        return response.code, dict(response.headers.get_all()), response.body or b""

    return fetch


async def unread(
    call: Callable[..., Awaitable[Any]], *args: Any, timeout: float
) -> tuple[int, bytes]:
    """Status and body of a Kubernetes client call made with ``_preload_content=False``: the
    client then neither builds a model nor logs the response body (at debug level), which for a
    Secret holds its values. Error statuses are returned, not raised."""
    from kubernetes_asyncio.client.exceptions import ApiException

    try:
        response = await asyncio.wait_for(call(*args, _preload_content=False), timeout)
    except ApiException as exc:
        return exc.status or 0, b""
    try:
        return response.status, await response.read()
    finally:
        response.release()


def secret_reader(
    core: CoreV1Api, namespace: str, timeout: float = 10.0
) -> Callable[[str], Awaitable[dict[str, str]]]:
    """``read_secret(name) -> {key: text}`` for Secrets in ``namespace``."""

    async def read_secret(name: str) -> dict[str, str]:
        try:
            status, body = await unread(core.read_namespaced_secret, name, namespace,
                                        timeout=timeout)  # fmt: skip
        except Exception as exc:  # the API server is unreachable or silent
            raise IssueError(
                "upstream_unavailable", f"reading Secret {name}: {type(exc).__name__}"
            ) from None
        if status in (403, 404):
            missing = "no" if status == 404 else "not allowed to read"
            raise IssueError("source_missing", f"{missing} Secret {name} in namespace {namespace}")
        if status != 200:
            raise IssueError("upstream_unavailable", f"reading Secret {name}: HTTP {status}")
        try:
            data = json.loads(body).get("data") or {}
            return {k: base64.b64decode(v).decode("utf-8") for k, v in data.items()}
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise IssueError(
                "source_missing", f"Secret {name} holds a value that is not text"
            ) from None

    return read_secret
