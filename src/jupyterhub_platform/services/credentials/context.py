"""The service's :class:`~.model.IssueContext`: HTTP with a timeout, Secrets in the hub's
namespace, and the OIDC token verifier (:mod:`.tokens`)."""

from __future__ import annotations

import base64
import time
from collections.abc import Awaitable, Callable, Mapping

from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from ..common.kube import KubeSource, kube_client
from .model import IssueContext, IssueError


def http_fetch(timeout: float) -> Callable[..., Awaitable[tuple[int, Mapping[str, str], bytes]]]:
    async def fetch(method: str, url: str, headers=None, body=None):
        request = HTTPRequest(url, method=method, headers=dict(headers or {}), body=body,
                              request_timeout=timeout, connect_timeout=timeout,
                              allow_nonstandard_methods=True)  # fmt: skip
        try:
            resp = await AsyncHTTPClient().fetch(request, raise_error=False)
        except OSError:
            resp = None
        if resp is None or resp.code == 599:
            host = url.split("/")[2] if "//" in url else url
            raise IssueError("upstream_unavailable", f"{host} did not answer")
        return resp.code, dict(resp.headers.get_all()), resp.body or b""

    return fetch


def secret_reader(kube: KubeSource) -> Callable[[str], Awaitable[Mapping[str, str]]]:
    async def read_secret(name: str) -> Mapping[str, str]:
        api = await kube.api_client()
        try:
            secret = await kube_client().CoreV1Api(api).read_namespaced_secret(name, kube.namespace)
        except kube_client().ApiException as exc:
            raise IssueError(
                "source_missing", f"Secret {name}: {exc.status} {exc.reason}"
            ) from None
        finally:
            await api.close()
        return {k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()}

    return read_secret


def token_verifier(issuer: str, audience: str, fetch) -> Callable[[str, str], Awaitable[Mapping]]:
    """``verify(kind, token) -> claims``; without an issuer every token is refused (nothing
    is forwarded unverified)."""
    if not issuer:

        async def refuse(kind: str, token: str) -> Mapping:
            raise IssueError(
                "token_invalid",
                f"the {kind} cannot be verified: no OIDC issuer (CredentialsApp.oidc_issuer)",
            )

        return refuse
    from .tokens import TokenVerifier  # the verifier of the OIDC tokens (auth/discovery, jwks)

    return TokenVerifier(issuer, audience, fetch)


def issue_context(kube: KubeSource, issuer: str, audience: str, timeout: float) -> IssueContext:
    fetch = http_fetch(timeout)
    return IssueContext(
        fetch=fetch,
        read_secret=secret_reader(kube),
        verify_token=token_verifier(issuer, audience, fetch),
        now=time.time,
    )
