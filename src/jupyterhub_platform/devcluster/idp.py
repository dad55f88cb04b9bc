"""The development OIDC provider (``oidc-provider-mock``) and its demo users.

The local hub logs users in through a real OpenID Connect flow, with the same authenticator
config as production; only the issuer differs. Users and their ``groups`` claim are seeded with
the provider's ``PUT /users/<sub>`` API, which both the 0.3 series (the newest on Python 3.11)
and 0.4 offer, so no version-specific command-line options are needed.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from .procs import ManagedProcess, ProcessExited, ProcessGroupSet, wait_serving


class IdPError(RuntimeError):
    """The provider died or refused the demo users; the message carries its log or reply."""


@dataclass(frozen=True)
class DemoUser:
    username: str
    groups: tuple[str, ...]
    note: str

    def claims(self) -> dict[str, object]:
        """ID-token / userinfo claims; ``preferred_username`` becomes the hub username."""
        return {
            "preferred_username": self.username,
            "name": self.username.capitalize(),
            "email": f"{self.username}@example.org",
            "email_verified": True,
            "groups": list(self.groups),
        }


DEMO_USERS = (
    DemoUser("alice", ("researchers",), "researcher"),
    DemoUser("bob", ("platform-admins", "researchers"), "platform admin and researcher"),
    DemoUser("carol", ("visitors",), "in no allowed group: login is refused"),
)


@dataclass(frozen=True)
class IdPEndpoints:
    """The provider's URLs, as its discovery document lists them."""

    base_url: str

    @property
    def authorize_url(self) -> str:
        return f"{self.base_url}/oauth2/authorize"

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/oauth2/token"

    @property
    def userinfo_url(self) -> str:
        return f"{self.base_url}/userinfo"

    @property
    def end_session_url(self) -> str:
        return f"{self.base_url}/oauth2/end_session"

    @property
    def discovery_url(self) -> str:
        return f"{self.base_url}/.well-known/openid-configuration"


def start_idp(
    group: ProcessGroupSet,
    *,
    host: str,
    port: int,
    log_path: Path,
    require_registration: bool = False,
) -> tuple[ManagedProcess, IdPEndpoints]:
    """Start the provider in its own process group; it is not ready until :func:`seed_users`.

    ``require_registration``: only clients registered through its dynamic registration API may
    log in, each with the client authentication method it registered.
    """
    argv = [sys.executable, "-m", "oidc_provider_mock", "--host", host, "--port", str(port)]
    if require_registration:
        argv += ["--require-registration", "true"]
    proc = group.start(argv, name="idp", log_path=log_path)
    return proc, IdPEndpoints(f"http://{host}:{port}")


async def put_claims(idp: IdPEndpoints, sub: str, claims: dict[str, object]) -> None:
    """The claims the provider issues for subject ``sub`` from now on."""
    async with (
        aiohttp.ClientSession() as session,
        session.put(f"{idp.base_url}/users/{sub}", json=claims) as resp,
    ):
        if resp.status >= 300:
            raise IdPError(
                f"setting OIDC user {sub} failed: HTTP {resp.status} {await resp.text()}"
            )


async def seed_users(
    proc: ManagedProcess,
    idp: IdPEndpoints,
    users: tuple[DemoUser, ...] = DEMO_USERS,
    *,
    timeout: float = 30,
) -> None:
    """Wait until the provider serves discovery, then store each user's claims."""
    try:
        await wait_serving(
            proc, idp.discovery_url, timeout=timeout, what=f"OIDC provider at {idp.base_url}"
        )
    except ProcessExited as exc:
        raise IdPError(str(exc)) from None
    for user in users:
        await put_claims(idp, user.username, user.claims())
