"""The service's :class:`~.model.IssueContext`: :mod:`.transport`'s HTTP and Secret reader and
the OIDC token verifier, on the service's Kubernetes source."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping

from jupyterhub_platform.auth.token_verifier import token_verifier

from ..common.kube import KubeConfigError, KubeSource, kube_client
from .model import IssueContext, IssueError
from .transport import http_fetch, secret_reader


def kube_secret_reader(kube: KubeSource) -> Callable[[str], Awaitable[Mapping[str, str]]]:
    """:func:`.transport.secret_reader` on an API client made at the first read (the service
    starts without waiting for Kubernetes) and kept for the process's life."""
    reader = None

    async def read_secret(name: str) -> Mapping[str, str]:
        nonlocal reader
        if reader is None:
            try:
                api = await kube.api_client()
            except KubeConfigError as exc:
                raise IssueError("source_missing", f"Secret {name}: {exc}") from None
            reader = secret_reader(kube_client().CoreV1Api(api), kube.namespace)
        return await reader(name)

    return read_secret


def issue_context(kube: KubeSource, issuer: str, audience: str, timeout: float) -> IssueContext:
    fetch = http_fetch(timeout)
    return IssueContext(
        fetch=fetch,
        read_secret=kube_secret_reader(kube),
        verify_token=token_verifier(issuer, audience, fetch),
        now=time.time,
    )
