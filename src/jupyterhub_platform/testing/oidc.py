"""A real OIDC provider process for tests: the local platform's development provider
(:mod:`jupyterhub_platform.devcluster.idp`) with the test users, plus the flows tests drive.

Restarting it rotates its signing key (its state is memory).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from jupyterhub_platform.devcluster import idp
from jupyterhub_platform.devcluster.procs import ProcessGroupSet, free_port

CLIENT_ID = "jupyterhub"
CLIENT_SECRET = "test-client-secret"
LOOPBACK = "127.0.0.1"

USERS = (
    idp.DemoUser("alice", ("researchers",), "researcher"),
    # Keycloak-style paths, normalised by the policy
    idp.DemoUser("bob", ("/platform-admins", "/researchers"), "platform admin, as paths"),
    idp.DemoUser("carol", ("visitors",), "in no allowed group"),
)


def claims(sub: str, groups: list[str]) -> dict:
    """The claims the provider issues for a test user ``sub`` in ``groups``."""
    return idp.DemoUser(sub, tuple(groups), "").claims()


@dataclass
class Provider:
    """oidc-provider-mock on a fixed free port; restarting it rotates its signing key.

    ``require_registration``: only clients registered with :meth:`register_client` may log in,
    and each must authenticate with the method it was registered with. Otherwise the provider
    takes any client id and secret.
    """

    log_dir: Path
    port: int = field(default_factory=free_port)
    starts: int = 0
    require_registration: bool = False
    _processes: ProcessGroupSet = field(default_factory=ProcessGroupSet, repr=False)

    @property
    def endpoints(self) -> idp.IdPEndpoints:
        return idp.IdPEndpoints(f"http://{LOOPBACK}:{self.port}")

    @property
    def issuer(self) -> str:
        return self.endpoints.base_url

    async def start(self, users: tuple[idp.DemoUser, ...] = USERS) -> None:
        self.starts += 1
        proc, endpoints = idp.start_idp(
            self._processes,
            host=LOOPBACK,
            port=self.port,
            log_path=self.log_dir / f"provider-{self.starts}.log",
            require_registration=self.require_registration,
        )
        await idp.seed_users(proc, endpoints, users)

    async def stop(self) -> None:
        running, self._processes = list(self._processes), ProcessGroupSet()
        for proc in running:
            await proc.astop(grace=2)

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    async def set_groups(self, sub: str, groups: list[str]) -> None:
        await self.set_claims(sub, claims(sub, groups))

    async def set_claims(self, sub: str, user_claims: dict) -> None:
        """The claims the provider issues for subject ``sub`` from now on."""
        await idp.put_claims(self.endpoints, sub, user_claims)

    async def register_client(self, redirect_uri: str, auth_method: str) -> tuple[str, str]:
        """Register a client (OAuth dynamic registration); its (client_id, client_secret)."""
        body = {"redirect_uris": [redirect_uri], "token_endpoint_auth_method": auth_method}
        async with aiohttp.ClientSession() as s:
            async with s.post(f"{self.issuer}/oauth2/clients", json=body) as r:
                assert r.status == 201, await r.text()
                client = await r.json()
        return client["client_id"], client["client_secret"]

    async def revoke_tokens(self, sub: str) -> None:
        async with aiohttp.ClientSession() as s:
            async with s.post(f"{self.issuer}/users/{sub}/revoke-tokens") as r:
                assert r.status == 204, await r.text()

    async def code_flow(
        self, sub: str, *, nonce: str | None = "n-0", client_id: str = CLIENT_ID
    ) -> dict:
        """The token response for ``sub``, straight from the provider (no hub involved)."""
        redirect = "http://127.0.0.1:1/cb"
        query = {
            "client_id": client_id,
            "redirect_uri": redirect,
            "response_type": "code",
            "scope": "openid profile email",
            "state": "s",
        }
        if nonce:
            query["nonce"] = nonce
        async with aiohttp.ClientSession() as s:
            async with s.post(
                self.endpoints.authorize_url,
                params=query,
                data={"sub": sub},
                allow_redirects=False,
            ) as r:
                location = r.headers["Location"]
            code = dict(p.split("=", 1) for p in location.split("?", 1)[1].split("&"))["code"]
            form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect}
            basic = base64.b64encode(f"{client_id}:{CLIENT_SECRET}".encode()).decode()
            headers = {"Authorization": f"Basic {basic}"}
            async with s.post(self.endpoints.token_url, data=form, headers=headers) as r:
                assert r.status == 200, await r.text()
                return await r.json()
