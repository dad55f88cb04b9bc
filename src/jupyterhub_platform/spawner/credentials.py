"""Credential injection at spawn, hub side: issue the server's sets, then say what the pod and
its Secret get (docs: the credentials design, "Injection at spawn").

Issuance happens in the hub before the pod is built, so the pod refers only to what was issued;
the Secret is created right after the pod, owned by it (``ProfileSpawner``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

import aiohttp
from kubernetes_asyncio.client import ApiException

from jupyterhub_platform.observability import hub_metrics
from jupyterhub_platform.services.credentials.audit import audit
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
from jupyterhub_platform.services.credentials.transport import http_fetch, secret_reader, unread

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
        audit_issuance(subject.username, cset, result)
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


def audit_issuance(user: str, cset: CredentialSet, result) -> None:
    """The ``credential.issue`` event of one set issued at spawn (``via: spawn``)."""
    outcome = "issued" if isinstance(result, Issued) else "failed"
    hub_metrics.CREDENTIALS_ISSUED.labels(cset.name, cset.provider.name, outcome).inc()
    if isinstance(result, Issued):
        audit(user=user, set_name=cset.name, provider=cset.provider.name, result="issued",
              expires_at=result.expires_at, via="spawn")  # fmt: skip
    else:
        audit(user=user, set_name=cset.name, provider=cset.provider.name, result="failed",
              reason=result.reason, via="spawn")  # fmt: skip


async def put_secret(api, namespace: str, manifest: dict, timeout: float) -> None:
    """Create the Secret (one request). One of that name left over (its pod gone, not yet
    collected) is deleted and the Secret created again: the stock chart's hub Role may get,
    list, watch, create and delete Secrets, not update them. Errors name the Secret and the
    status only: bodies hold the values."""
    name = manifest["metadata"]["name"]
    create = api.create_namespaced_secret
    try:
        status, _ = await unread(create, namespace, manifest, timeout=timeout)
        if status == 409:
            await unread(api.delete_namespaced_secret, name, namespace, timeout=timeout)
            status, _ = await unread(create, namespace, manifest, timeout=timeout)
    except (ApiException, aiohttp.ClientError, asyncio.TimeoutError) as exc:
        raise CredentialsRefused(
            f"could not create the credentials Secret {name} ({type(exc).__name__})"
        ) from None
    if not 200 <= status <= 299:
        raise CredentialsRefused(f"could not create the credentials Secret {name} (HTTP {status})")


def hub_verifier(authenticator) -> Callable[[str, str], Awaitable[Mapping]]:
    """The hub's token verifier: the authenticator's (``OIDCAuthenticator`` has one for its
    issuer and client id). Another authenticator gives no OIDC token: providers that forward one
    fail closed (``no_token``)."""
    make = getattr(authenticator, "credential_token_verifier", None)
    if callable(make):
        return make()

    async def refuse(kind: str, token: str) -> Mapping:
        raise IssueError("no_token", f"this hub's authenticator gives no OIDC {kind}")

    return refuse


def hub_issue_context(api, namespace: str, authenticator) -> IssueContext:
    """The hub's I/O for providers: HTTP with a timeout, Secrets in ``namespace`` read with the
    spawner's Kubernetes client ``api``, tokens verified for the hub's OIDC issuer."""
    return IssueContext(
        fetch=http_fetch(FETCH_TIMEOUT),
        read_secret=secret_reader(api, namespace, FETCH_TIMEOUT),
        verify_token=hub_verifier(authenticator),
        now=time.time,
    )
