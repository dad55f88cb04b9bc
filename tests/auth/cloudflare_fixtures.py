"""Fixtures for the Cloudflare Access authenticator: the stand-in process, authenticators, hubs.

Imported by the ``test_cloudflare*`` modules (``from cloudflare_fixtures import ...``), so the
OIDC suite's conftest stays untouched.
"""

from __future__ import annotations

import base64
import json

import aiohttp
import pytest
import pytest_asyncio
from traitlets.config import Config

from jupyterhub_platform.auth.cloudflare import TOKEN_HEADER, CloudflareAccessAuthenticator
from jupyterhub_platform.devcluster.idp import DEMO_USERS
from jupyterhub_platform.testing import CloudflareStandIn, Hub, shipped_policy_file


def cloudflare_settings(standin: CloudflareStandIn, **traits) -> dict[str, dict]:
    """Hub config for ``cloudflare-access`` against ``standin`` with the example policy."""
    policy = {"policy_file": str(shipped_policy_file())}
    settings = {**standin.hub_config_overrides(), "PlatformPolicy": policy}
    settings["CloudflareAccessAuthenticator"].update({"keys_min_refetch_interval": 0.5, **traits})
    return settings


def make_authenticator(standin: CloudflareStandIn, **traits) -> CloudflareAccessAuthenticator:
    """An authenticator in this process, configured like the hub's."""
    c = Config()
    for cls, values in cloudflare_settings(standin, **traits).items():
        if cls != "JupyterHub":
            for name, value in values.items():
                setattr(getattr(c, cls), name, value)
    return CloudflareAccessAuthenticator(config=c)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def reassemble(token: str, *, header: dict | None = None, payload: dict | None = None) -> str:
    """``token`` with its header/payload replaced, keeping the original signature."""
    h, p, sig = token.split(".")
    h = b64(json.dumps(header).encode()) if header is not None else h
    p = b64(json.dumps(payload).encode()) if payload is not None else p
    return f"{h}.{p}.{sig}"


def payload_of(token: str) -> dict:
    return json.loads(unb64(token.split(".")[1]))


@pytest.fixture
async def cloudflare(tmp_path):
    standin = CloudflareStandIn(tmp_path / "cloudflare")
    await standin.start()
    yield standin
    await standin.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def shared_cloudflare(tmp_path_factory):
    """One stand-in for a module's tests that neither rotate its keys nor restart it;
    :func:`reset_standin` gives each test the stand-in as it started."""
    standin = CloudflareStandIn(tmp_path_factory.mktemp("cloudflare"))
    await standin.start()
    yield standin
    await standin.stop()


async def reset_standin(standin: CloudflareStandIn) -> None:
    """No outage, and the demo users in their groups (tests change them)."""
    await standin.outage(certs=False, identity=False)
    for demo in DEMO_USERS:
        await standin.set_user(f"{demo.username}@example.org", list(demo.groups))


@pytest.fixture
def cf_hub_factory(hubs):
    """Hubs running ``cloudflare-access`` against ``standin`` (extra traits)."""

    async def make(standin: CloudflareStandIn, name: str = "hub", **traits) -> Hub:
        return await hubs(name, lambda url: cloudflare_settings(standin, **traits))

    return make


class Browser:
    """A cookie-keeping client that sends a Cloudflare token, as requests through Access do."""

    def __init__(self, hub: Hub, token: str | None = None):
        self.hub = hub
        self.token = token
        self.session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))

    async def __aenter__(self) -> Browser:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.session.close()

    async def get(
        self, path: str, *, follow: bool = True, **kwargs
    ) -> tuple[int, str, aiohttp.ClientResponse]:
        headers = {TOKEN_HEADER: self.token} if self.token else {}
        headers.update(kwargs.pop("headers", {}))
        async with self.session.get(
            self.hub.url + path, headers=headers, allow_redirects=follow, **kwargs
        ) as r:
            return r.status, await r.text(), r
