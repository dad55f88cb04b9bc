"""What the handlers and the renewal loop do: find who a hub token belongs to, read their groups
and auth state, re-check the policy and issue (through the cache), with an audit line and
metrics for every issuance and refusal.

There is no user parameter anywhere: a request's identity is its token's, as the hub says."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from jupyterhub_platform.policy.model import Policy

from ..common.hub_client import HubAPIError, HubClient, user_url
from .audit import audit
from .cache import IssueCache
from .entitlement import entitled_set, entitled_sets, issuable_sets
from .issuance import issue_one
from .metrics import CredentialMetrics
from .model import IssueContext, Issued, IssueError, Subject

UNAUTHENTICATED = "unauthenticated"
"""Reason of a refused hub token (the hub said 401/403, or it is not a user's)."""


@dataclass
class CredentialService:
    hub: HubClient
    """The service's own hub client (list:users, read:users:groups, admin:auth_state)."""
    policy: Policy
    ctx: IssueContext
    cache: IssueCache
    metrics: CredentialMetrics
    token_client: Callable[[str], HubClient]
    """A hub client with a presented token (for ``/user``)."""
    log: logging.Logger = logging.getLogger(__name__)

    async def whoami(self, token: str) -> dict:
        """The hub's model of the token's owner (``/user`` with that token): 403 unless the hub
        accepts it."""
        if not token:
            raise self._refused(
                IssueError(UNAUTHENTICATED, "no hub token (Authorization: token …)")
            )
        try:
            _, model = await self.token_client(token).request("GET", "/user")
        except HubAPIError as exc:
            if exc.status in (401, 403):
                raise self._refused(
                    IssueError(UNAUTHENTICATED, "the hub does not accept this token")
                ) from None
            raise self._refused(
                IssueError("upstream_unavailable", "the hub did not answer; retry later")
            ) from None
        if not isinstance(model, dict) or not model.get("name"):
            raise self._refused(IssueError(UNAUTHENTICATED, "the hub does not accept this token"))
        return model

    async def identify(self, token: str) -> str:
        """The name of the user whose token this is (a server's token is its owner's)."""
        model = await self.whoami(token)
        if model.get("kind", "user") != "user":
            raise self._refused(IssueError(UNAUTHENTICATED, "not a user's token"))
        return model["name"]

    async def identify_scope(self, token: str, scope: str) -> None:
        """The token (a user's or a service's) holds ``scope``."""
        if scope not in (await self.whoami(token)).get("scopes", []):
            raise self._refused(IssueError(UNAUTHENTICATED, f"this token lacks {scope}"))

    async def subject(self, name: str) -> Subject:
        """The user's current groups and auth state, read with the service's token (a deleted
        user has no groups: nothing is granted)."""
        try:
            _, model = await self.hub.request("GET", user_url(name))
        except HubAPIError as exc:
            if exc.status == 404:
                return Subject(name, frozenset())
            self.log.error("reading user %s from the hub: %s", name, exc)  # e.g. scopes missing
            raise IssueError(
                "upstream_unavailable", "the hub did not answer; retry later"
            ) from None
        return Subject(name, frozenset(model.get("groups") or ()), model.get("auth_state") or {})

    def available(self, subject: Subject) -> list[dict]:
        """The sets ``subject`` may have, with their descriptions (no values)."""
        sets = issuable_sets(self.policy)
        return [
            {"name": n, "description": sets[n].description, "provider": sets[n].provider.name}
            for n in sorted(entitled_sets(self.policy, subject.groups))
        ]

    async def issue(self, subject: Subject, set_name: str, *, via: str = "api") -> Issued:
        """``set_name`` for ``subject``: entitlement first, then the cache, then the provider."""
        try:
            cset = entitled_set(self.policy, subject.groups, set_name)
        except IssueError as exc:
            self.cache.drop(subject.username, set_name)
            audit(user=subject.username, set_name=set_name, provider="", result="refused",
                  reason=exc.reason, via=via)  # fmt: skip
            self.metrics.issuances.labels(set_name, "", "refused").inc()
            raise self._refused(exc) from None
        provider = cset.provider.name
        async with self.cache.lock(subject.username, set_name):
            cached = self.cache.get(subject.username, set_name)
            if cached is not None:
                return cached
            try:
                issued = await issue_one(cset, subject, self.ctx)
            except IssueError as exc:
                audit(user=subject.username, set_name=set_name, provider=provider,
                      result="failed", reason=exc.reason, via=via)  # fmt: skip
                self.metrics.issuances.labels(set_name, provider, "failed").inc()
                raise self._refused(exc) from None
            self.cache.put(subject.username, set_name, issued)
        audit(user=subject.username, set_name=set_name, provider=provider, result="issued",
              expires_at=issued.expires_at, via=via)  # fmt: skip
        self.metrics.issuances.labels(set_name, provider, "issued").inc()
        return issued

    async def for_token(self, token: str, set_name: str) -> Issued:
        """``set_name`` for whoever ``token`` belongs to (a refused token is audited too)."""
        try:
            subject = await self.subject(await self.identify(token))
        except IssueError as exc:
            audit(user="", set_name=set_name, provider="", result="refused", reason=exc.reason)
            raise
        return await self.issue(subject, set_name)

    def _refused(self, exc: IssueError) -> IssueError:
        self.metrics.refusals.labels(exc.reason).inc()
        return exc


def answer(set_name: str, issued: Issued) -> dict:
    """The API's reply for one set."""
    return {
        "set": set_name,
        "values": dict(issued.values),
        "issued_at": issued.issued_at,
        "expires_at": issued.expires_at,
    }
