"""``oidc-token``: the user's own OIDC token, for services that accept the identity provider's
tokens (an API behind the same issuer). Verified by the hub before it is handed out."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from jupyterhub_platform.validate import FieldPath, Problems
from jupyterhub_platform.validate import checks as v

from ..model import Issued, Provider, Subject
from . import under
from .identity import TOKEN_KINDS, verified_token


def iso(epoch: float) -> str:
    """``2026-01-02T03:04:05Z``: how the sets' ``expiration`` keys say when a value expires."""
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class OIDCTokenProvider(Provider):
    """Config: ``token``, ``access_token`` (default) or ``id_token``. Keys ``token`` and
    ``expiration`` (ISO 8601; empty when the issuer does not say)."""

    name = "oidc-token"

    def __init__(self, config: Mapping[str, Any], at: FieldPath):
        super().__init__(config, at)
        with under(at):
            problems = Problems()
            v.fields(config, problems, ("token",))
            self.kind = problems.field(config, "token", v.one_of, TOKEN_KINDS) or "access_token"
            problems.raise_any()

    @property
    def keys(self) -> tuple[str, ...]:
        return ("token", "expiration")

    async def issue(self, subject: Subject, ctx) -> Issued:
        token, claims = await verified_token(subject, self.kind, ctx)
        exp = claims.get("exp")
        expires = float(exp) if isinstance(exp, (int, float)) else None
        values = {"token": token, "expiration": iso(expires) if expires else ""}
        return Issued(values, ctx.now(), expires)
