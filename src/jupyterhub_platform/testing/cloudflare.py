"""The Cloudflare Access stand-in for tests: the managed process plus a client of its control API."""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp

from jupyterhub_platform.devcluster.cloudflare.process import StandInProcess
from jupyterhub_platform.devcluster.cloudflare.routes import CONTROL_PREFIX


@dataclass
class CloudflareStandIn(StandInProcess):
    """Start with ``await standin.start()``; mint tokens, rotate keys, set users, cause outages."""

    async def _call(self, method: str, path: str, body: dict | None = None) -> dict | None:
        headers = {"Authorization": f"Bearer {self.control_token}"}
        url = f"{self.url}{CONTROL_PREFIX}{path.lstrip('/')}"
        async with (
            aiohttp.ClientSession() as s,
            s.request(method, url, json=body, headers=headers) as r,
        ):
            if r.status >= 400:
                raise RuntimeError(f"stand-in {method} {path}: {r.status} {await r.text()}")
            return await r.json() if r.status != 204 else None

    async def mint(self, **spec) -> str:
        """A token: ``email=``/``common_name=``, ``ttl=``, ``nbf_offset=``, ``iat_offset=``,
        ``aud=``, ``iss=``, ``key="current"|"previous"|"unpublished"``, ``claims=``, ``drop=``."""
        return (await self._call("POST", "/tokens", spec))["token"]

    async def rotate(self, keep_previous: bool = True) -> dict:
        return await self._call("POST", "/rotate", {"keep_previous": keep_previous})

    async def retire_previous(self) -> dict:
        return await self._call("POST", "/retire-previous", {})

    async def set_user(self, email: str, groups: list[str], identity: dict | None = None) -> None:
        await self._call("PUT", f"/users/{email}", {"groups": groups, "identity": identity})

    async def outage(self, **down: bool) -> None:
        await self._call("PUT", "/outage", down)

    async def stats(self) -> dict:
        return await self._call("GET", "/stats")
