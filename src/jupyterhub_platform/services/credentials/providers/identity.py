"""The user's OIDC token from their login state, verified before any provider uses or forwards
it: a token the hub did not verify itself is never sent to an STS or handed to a server."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jupyterhub_platform.auth.subject_binding import Identity

from ..model import IssueContext, IssueError, Subject

TOKEN_KINDS = ("id_token", "access_token")


async def verified_token(
    subject: Subject, kind: str, ctx: IssueContext
) -> tuple[str, Mapping[str, Any]]:
    """``(token, claims)`` of the ``kind`` token in ``subject``'s auth state, verified by
    ``ctx.verify_token``; its ``sub`` must be the identity the hub user is bound to."""
    token = subject.auth_state.get(kind)
    if not isinstance(token, str) or not token:
        raise IssueError(
            "no_token", f"no {kind} in {subject.username}'s login state (log in again)"
        )
    claims = await ctx.verify_token(kind, token)
    bound = Identity.from_state(dict(subject.auth_state))
    if bound is not None and str(claims.get("sub")) != bound.subject:
        raise IssueError("token_invalid", f"the {kind} is not {subject.username}'s (another sub)")
    return token, claims
