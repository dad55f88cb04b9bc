"""Each hub user belongs to one identity at the provider: (issuer, ``sub``), fixed at first login.

The hub user name comes from a claim such as ``preferred_username`` that the provider may let
people choose or change; ``sub`` is the provider's stable, never-reassigned identifier (OIDC Core
§5.7). Binding the name to (issuer, ``sub``) the first time it logs in means a second identity that
presents the same name is refused instead of taking over the user, its server and its home.
The binding lives in the user's auth_state, which outlives logout; an admin re-binds a user by
clearing it (docs/oidc.md).
"""

from __future__ import annotations

from dataclasses import dataclass

BINDING_KEY = "oidc_identity"
"""The auth_state key holding the bound identity."""


@dataclass(frozen=True)
class Identity:
    """An identity at an OpenID provider."""

    issuer: str
    subject: str

    def as_state(self) -> dict[str, str]:
        return {"iss": self.issuer, "sub": self.subject}

    @classmethod
    def from_state(cls, auth_state: dict | None) -> Identity | None:
        """The identity bound in ``auth_state``; None when the user is not bound yet."""
        bound = (auth_state or {}).get(BINDING_KEY)
        if not isinstance(bound, dict) or not bound.get("sub"):
            return None
        return cls(str(bound.get("iss", "")), str(bound["sub"]))


def may_log_in(bound: Identity | None, presented: Identity) -> bool:
    """Whether ``presented`` may log into a hub user bound to ``bound`` (unbound: anyone, once)."""
    return bound is None or bound == presented
