"""What the Cloudflare Access stand-in knows: its signing keys, its users, simulated outages.

One :class:`AccessState` per stand-in process; :mod:`.routes` serves it, :mod:`.edge` signs users
in with it.
"""

from __future__ import annotations

import secrets
import time
import uuid
from dataclasses import dataclass, field

import jwt
from aiohttp import web

from ..idp import DEMO_USERS
from .keys import SigningKey

DEFAULT_AUD = "standin-application-aud"
HUB_APP_PATH = "/hub"  # the hub's Access application covers this path only (docs/security.md)


@dataclass
class AccessState:
    """Everything the stand-in knows; one instance per process."""

    issuer: str
    audience: str
    token_ttl: float = 8 * 3600
    current: SigningKey = field(default_factory=SigningKey)
    previous: SigningKey | None = None
    unpublished: SigningKey = field(default_factory=SigningKey)  # signs "unknown kid" tokens
    users: dict[str, dict] = field(default_factory=dict)
    down: dict[str, bool] = field(default_factory=lambda: {"certs": False, "identity": False})
    calls: dict[str, int] = field(default_factory=lambda: {"certs": 0, "identity": 0})

    def __post_init__(self) -> None:
        for demo in DEMO_USERS:
            self.set_user(f"{demo.username}@example.org", list(demo.groups))

    def set_user(self, email: str, groups: list[str], identity: dict | None = None) -> None:
        self.users[email] = {
            "groups": groups,
            "identity": identity or {},
            "uuid": str(uuid.uuid4()),
        }

    @property
    def published(self) -> list[SigningKey]:
        return [k for k in (self.current, self.previous) if k is not None]

    def rotate(self, keep_previous: bool) -> None:
        """Scheduled rotation keeps the old key published; a manual one revokes it at once."""
        self.previous = self.current if keep_previous else None
        self.current = SigningKey()

    def mint(self, spec: dict) -> str:
        """A token for ``spec``: ``email`` or ``common_name``, offsets, overrides, key choice."""
        now = int(time.time())
        iat = now + int(spec.get("iat_offset", 0))
        claims: dict = {
            "aud": [spec.get("aud", self.audience)],
            "iss": spec.get("iss", self.issuer),
            "iat": iat,
            "nbf": now + int(spec.get("nbf_offset", 0)),
            "exp": iat + int(spec.get("ttl", self.token_ttl)),
            "type": "app",
            "identity_nonce": spec.get("identity_nonce") or secrets.token_urlsafe(12),
            "country": "XX",
        }
        if "common_name" in spec:  # a service token: no email, empty sub
            claims.update(common_name=spec["common_name"], sub="")
        else:
            email = spec.get("email", "alice@example.org")
            user = self.users.get(email, {})
            claims.update(
                email=email, sub=user.get("uuid", str(uuid.uuid5(uuid.NAMESPACE_DNS, email)))
            )
        claims.update(spec.get("claims", {}))
        for name in spec.get("drop", []):
            claims.pop(name, None)
        key = {"current": self.current, "previous": self.previous, "unpublished": self.unpublished}[
            spec.get("key", "current")
        ]
        if key is None:
            raise web.HTTPConflict(text="no previous key to sign with")
        return key.sign(claims)

    def verify(self, token: str) -> dict | None:
        """The claims of a token this stand-in issued and still publishes the key of, else None."""
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            key = next(k for k in self.published if k.kid == kid)
            return jwt.decode(
                token,
                key.private.public_key(),
                algorithms=["RS256"],
                audience=self.audience,
                issuer=self.issuer,
            )
        except (jwt.PyJWTError, StopIteration):
            return None

    def identity(self, claims: dict) -> dict:
        """What get-identity answers: groups as Cloudflare's ``{id, name, email}`` objects."""
        email = claims.get("email", "")
        user = self.users.get(email, {"groups": [], "identity": {}, "uuid": claims.get("sub", "")})
        groups = [
            {"id": f"group-{g}", "name": g, "email": f"{g}@example.org"} for g in user["groups"]
        ]
        return {
            "email": email,
            "name": email.partition("@")[0].capitalize(),
            "user_uuid": user["uuid"],
            "identity_nonce": claims.get("identity_nonce"),
            "idp": {"id": "standin", "type": "standin"},
            "groups": groups,
            **user["identity"],
        }


def kids(state: AccessState) -> dict:
    return {
        "current": state.current.kid,
        "previous": state.previous.kid if state.previous else None,
        "unpublished": state.unpublished.kid,
    }
