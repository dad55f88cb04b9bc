"""Issuing several sets at once, for the hub at spawn and for the service's renewals.

Every failure becomes an :class:`~.model.IssueError` (an unexpected exception from a provider
is reported as ``provider_error`` with its type only: its message could hold a value)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping

from .model import CredentialSet, IssueContext, Issued, IssueError, Subject

log = logging.getLogger(__name__)


async def issue_one(cset: CredentialSet, subject: Subject, ctx: IssueContext) -> Issued:
    """Issue one set; the result's keys are exactly the provider's declared ``keys``."""
    try:
        issued = await cset.provider.issue(subject, ctx)
    except IssueError:
        raise
    except Exception as exc:  # a site's provider: never let its message reach a log or page
        log.error("credential set %s: provider %s failed (%s)", cset.name,
                  cset.provider.name, type(exc).__name__)  # fmt: skip
        raise IssueError("provider_error", f"the {cset.name} provider failed") from None
    missing = set(cset.provider.keys) - set(issued.values)
    if missing:
        raise IssueError(
            "provider_error", f"the {cset.name} provider returned no {', '.join(sorted(missing))}"
        )
    return Issued(
        {k: issued.values[k] for k in cset.provider.keys}, issued.issued_at, issued.expires_at
    )


async def issue_all(
    sets: Iterable[CredentialSet], subject: Subject, ctx: IssueContext
) -> Mapping[str, Issued | IssueError]:
    """Issue every set concurrently: name -> issued credential or the reason it was not."""
    sets = list(sets)

    async def one(cset: CredentialSet) -> Issued | IssueError:
        try:
            return await issue_one(cset, subject, ctx)
        except IssueError as exc:
            return exc

    results = await asyncio.gather(*(one(s) for s in sets))
    return {s.name: r for s, r in zip(sets, results, strict=True)}
