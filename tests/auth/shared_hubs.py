"""A hub shared by a module's tests, handed to each test as if fresh.

Starting a hub (and its proxy) is most of a login test's time, so tests that need the same
configuration share one (module-scoped fixtures in their modules). Each test gets a
:class:`HubView` of it from :func:`fresh`: the hub has no users when the test starts (every user
the test made is deleted after it, tokens and auth state with them), and its ``log()`` holds only
what the hub wrote since the test began, so a test's log assertions are about its own requests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, fields

import aiohttp

from jupyterhub_platform.testing import USERS, Hub, Provider


@dataclass
class HubView(Hub):
    """A shared hub as one test sees it: its log from ``log_start`` (a byte offset) on."""

    log_start: int = 0

    def log(self) -> str:
        with open(self.proc.log_path, "rb") as f:
            f.seek(self.log_start)
            return f.read().decode(errors="replace")


async def user_names(hub: Hub) -> list[str]:
    return [u["name"] for u in await hub.api("/users")]


async def delete_users(hub: Hub) -> None:
    headers = {"Authorization": f"token {hub.admin_token}"}
    async with aiohttp.ClientSession() as s:
        for name in await user_names(hub):
            async with s.delete(f"{hub.url}/hub/api/users/{name}", headers=headers) as r:
                assert r.status == 204, f"deleting {name}: {r.status} {await r.text()}"


@asynccontextmanager
async def fresh(hub: Hub) -> AsyncIterator[HubView]:
    """``hub`` without users, its log from now on; the test's users are deleted afterwards."""
    assert await user_names(hub) == [], "a previous test's users are still on the shared hub"
    start = hub.proc.log_path.stat().st_size
    try:
        yield HubView(**{f.name: getattr(hub, f.name) for f in fields(Hub)}, log_start=start)
    finally:
        await delete_users(hub)


async def reset_claims(provider: Provider) -> None:
    """The provider's users with the claims they had when it started (tests change groups)."""
    for user in USERS:
        await provider.set_claims(user.username, user.claims())
