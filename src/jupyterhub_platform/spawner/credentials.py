"""Credential injection at spawn, hub side: issue the server's sets, then say what the pod and
its Secret get (docs: the credentials design, "Injection at spawn").

Issuance happens in the hub before the pod is built, so the pod refers only to what was issued;
the Secret is created right after the pod, owned by it (``ProfileSpawner``).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import aiohttp
from kubernetes_asyncio.client import ApiException
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from jupyterhub_platform.services.credentials.issuance import issue_all
from jupyterhub_platform.services.credentials.model import (
    CredentialSet,
    IssueContext,
    Issued,
    IssueError,
    Subject,
)
from jupyterhub_platform.services.credentials.secret_manifest import (
    secret_env,
    secret_mount,
    secret_volume,
)

FETCH_TIMEOUT = 10.0


class CredentialsRefused(Exception):
    """A required set could not be issued: the start fails with this (safe) message."""


@dataclass(frozen=True)
class ServerCredentials:
    """What one start injects: the sets tried, those issued, and the notes on the others."""

    pod_name: str
    sets: tuple[CredentialSet, ...]
    issued: Mapping[str, Issued] = field(repr=False)
    notes: tuple[str, ...] = ()
    credentials_url: str = ""

    def volume(self) -> dict:
        return secret_volume(self.pod_name, self.sets, self.issued)

    def mount(self) -> dict:
        return secret_mount()

    def env(self) -> dict:
        return secret_env(self.pod_name, self.sets, self.issued, self.credentials_url)


async def issue_server_sets(
    pod_name: str,
    sets: Sequence[CredentialSet],
    subject: Subject,
    ctx: IssueContext,
    log: logging.Logger | logging.LoggerAdapter,
    credentials_url: str = "",
) -> ServerCredentials:
    """Issue ``sets``; raise :class:`CredentialsRefused` when a required one fails, else note
    (and log) each one left out: ``<set>: not issued (<reason>)``, never a value."""
    results = await issue_all(sets, subject, ctx) if sets else {}
    issued, notes = {}, []
    for cset in sets:
        result = results[cset.name]
        if isinstance(result, Issued):
            issued[cset.name] = result
            continue
        if cset.required:
            raise CredentialsRefused(
                f"the required credential set {cset.name!r} could not be issued "
                f"({result.reason}): {result.message}"
            )
        note = f"{cset.name}: not issued ({result.reason}): {result.message}"
        log.warning("Credentials for %s: %s", subject.username, note)
        notes.append(note)
    return ServerCredentials(pod_name, tuple(sets), issued, tuple(notes), credentials_url)


async def _unread(call, *args, timeout: float) -> tuple[int, bytes]:
    """Status and body of a Kubernetes call made with ``_preload_content=False``: the client
    then neither builds a model nor logs the response body (debug level), which for a Secret
    holds its values."""
    response = await asyncio.wait_for(call(*args, _preload_content=False), timeout)
    try:
        return response.status, await response.read()
    finally:
        response.release()


async def put_secret(api, namespace: str, manifest: dict, timeout: float) -> None:
    """Create the Secret (one request). One of that name left over (its pod gone, not yet
    collected) is deleted and the Secret created again: the stock chart's hub Role may get,
    list, watch, create and delete Secrets, not update them. Errors name the Secret and the
    status only: bodies hold the values."""
    name = manifest["metadata"]["name"]
    create = api.create_namespaced_secret
    try:
        status, _ = await _unread(create, namespace, manifest, timeout=timeout)
        if status == 409:
            await _unread(api.delete_namespaced_secret, name, namespace, timeout=timeout)
            status, _ = await _unread(create, namespace, manifest, timeout=timeout)
    except (ApiException, aiohttp.ClientError, asyncio.TimeoutError) as exc:
        raise CredentialsRefused(
            f"could not create the credentials Secret {name} ({type(exc).__name__})"
        ) from None
    if not 200 <= status <= 299:
        raise CredentialsRefused(f"could not create the credentials Secret {name} (HTTP {status})")


def hub_issue_context(api, namespace: str) -> IssueContext:
    """The hub's I/O for providers: HTTP with a timeout, Secrets in ``namespace`` read with the
    spawner's Kubernetes client ``api``. Tokens cannot be verified in the hub yet, so providers
    that forward one fail closed (``token_invalid``) until the verifier is wired in here."""

    async def fetch(method, url, headers=None, body=None):
        request = HTTPRequest(
            url,
            method=method,
            headers=dict(headers or {}),
            body=body,
            request_timeout=FETCH_TIMEOUT,
            allow_nonstandard_methods=True,
            follow_redirects=False,
        )
        try:  # HTTP error statuses are returned; no answer at all raises
            response = await AsyncHTTPClient().fetch(request, raise_error=False)
        except (OSError, HTTPClientError) as exc:
            host = urlsplit(url).netloc
            raise IssueError(
                "upstream_unavailable", f"{host} did not answer ({type(exc).__name__})"
            ) from None
        return response.code, dict(response.headers), response.body or b""

    async def read_secret(name: str) -> Mapping[str, str]:
        try:
            status, body = await _unread(api.read_namespaced_secret, name, namespace,
                                         timeout=FETCH_TIMEOUT)  # fmt: skip
        except (ApiException, aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise IssueError("source_missing", f"cannot read Secret {name} ({type(exc).__name__})"
                             ) from None  # fmt: skip
        if status != 200:
            raise IssueError("source_missing", f"cannot read Secret {name} (HTTP {status})")
        data = json.loads(body).get("data") or {}
        return {k: base64.b64decode(v).decode() for k, v in data.items()}

    async def verify_token(kind: str, token: str) -> Mapping:
        raise IssueError("token_invalid", f"the hub has no verifier for {kind}s configured")

    return IssueContext(fetch=fetch, read_secret=read_secret, verify_token=verify_token,
                        now=time.time)  # fmt: skip
