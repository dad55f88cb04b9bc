"""A real hub + proxy that log users in, for exercising authenticators end to end.

configurable-http-proxy and a ``jupyterhub`` process that never spawns, with the authenticator
config a test gives (``oidc_settings`` against :class:`~.oidc.Provider`, the upstream
``generic_settings`` baseline, or the Cloudflare stand-in's overrides). Used by ``tests/auth``
and ``benchmarks/``; needs the ``dev`` extra and configurable-http-proxy from npm.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sqlite3
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin

import aiohttp

from jupyterhub_platform.devcluster.procs import (
    ManagedProcess,
    free_port,
    port_is_open,
    wait_for,
    wait_serving,
)
from jupyterhub_platform.devcluster.proxy import chp_argv, ensure_chp

from .oidc import CLIENT_ID, CLIENT_SECRET, Provider
from .shipped import shipped_policy_file


@dataclass
class Hub:
    url: str
    proc: ManagedProcess
    proxy: ManagedProcess
    admin_token: str
    db_path: Path

    async def stop(self) -> None:
        await self.proc.astop()
        await self.proxy.astop()

    def roles_in_db(self) -> dict[str, list[str]]:
        """Role name -> scopes, read from the hub's database."""
        db = sqlite3.connect(self.db_path)
        try:
            return {
                name: json.loads(scopes)
                for name, scopes in db.execute("SELECT name, scopes FROM roles")
            }
        finally:
            db.close()

    def log(self) -> str:
        return self.proc.log_path.read_text(errors="replace")

    async def api(self, path: str, method: str = "GET", body: dict | None = None) -> dict:
        """The hub's REST API with the admin service's token; the reply must be 200."""
        headers = {"Authorization": f"token {self.admin_token}"}
        async with aiohttp.ClientSession() as s:
            url = f"{self.url}/hub/api{path}"
            async with s.request(method, url, headers=headers, json=body) as r:
                assert r.status == 200, await r.text()
                return await r.json()

    def browser(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))

    async def start_login(self, browser: aiohttp.ClientSession, sub: str) -> str:
        """Hub -> provider -> consent as ``sub``; return the callback URL (not yet followed)."""
        async with browser.get(f"{self.url}/hub/oauth_login", allow_redirects=False) as r:
            assert r.status == 302, await r.text()
            authorize = r.headers["Location"]
        async with browser.post(authorize, data={"sub": sub}, allow_redirects=False) as r:
            assert r.status == 302, await r.text()
            return r.headers["Location"]

    async def finish_login(self, browser: aiohttp.ClientSession, callback: str) -> tuple[int, str]:
        async with browser.get(callback, allow_redirects=False) as r:
            return r.status, await r.text()

    async def login(self, browser: aiohttp.ClientSession, sub: str) -> tuple[int, str]:
        """The real login flow through the proxy; (status, body) of the hub's callback answer."""
        return await self.finish_login(browser, await self.start_login(browser, sub))

    async def page(self, browser: aiohttp.ClientSession, path: str) -> aiohttp.ClientResponse:
        async with browser.get(urljoin(self.url, path), allow_redirects=False) as r:
            await r.read()
            return r


def oidc_settings(provider: Provider, hub_url: str, **traits) -> dict[str, dict]:
    """Hub config for ``platform-oidc`` against ``provider`` with the example policy."""
    return {
        "JupyterHub": {"authenticator_class": "platform-oidc"},
        "PlatformPolicy": {"policy_file": str(shipped_policy_file())},
        "OIDCAuthenticator": {
            "issuer": provider.issuer,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "oauth_callback_url": f"{hub_url}/hub/oauth_callback",
            "auth_refresh_age": 1,
            "reset_managed_roles_on_startup": True,
            "keys_min_refetch_interval": 0.5,
            **traits,
        },
    }


def generic_settings(provider: Provider, hub_url: str) -> dict[str, dict]:
    """The upstream baseline: GenericOAuthenticator against the same provider, comparable options."""
    return {
        "JupyterHub": {"authenticator_class": "generic-oauth"},
        "GenericOAuthenticator": {
            "authorize_url": f"{provider.issuer}/oauth2/authorize",
            "token_url": f"{provider.issuer}/oauth2/token",
            "userdata_url": f"{provider.issuer}/userinfo",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "oauth_callback_url": f"{hub_url}/hub/oauth_callback",
            "scope": ["openid", "profile", "email"],
            "username_claim": "preferred_username",
            "enable_auth_state": True,
            "manage_groups": True,
            "auth_state_groups_key": "oauth_user.groups",
            "allow_all": True,
        },
    }


async def start_hub(
    tmp: Path, settings_for: Callable[[str], dict[str, dict]], port: int | None = None
) -> Hub:
    """A hub + proxy in ``tmp``; ``settings_for(hub_url)`` gives the authenticator's config.

    ``port``: the public port, when a provider must know the callback URL in advance.
    """
    port, api_port, hub_port = port or free_port(), free_port(), free_port()
    url = f"http://127.0.0.1:{port}"
    token, proxy_token = secrets.token_hex(16), secrets.token_hex(16)
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(tmp),
        "JUPYTERHUB_CRYPT_KEY": secrets.token_hex(32),
        "CONFIGPROXY_AUTH_TOKEN": proxy_token,
    }
    # The proxy is ours, not the hub's child: the hub starts it in a session of its own,
    # which a process-group stop would miss.
    chp = await asyncio.to_thread(ensure_chp, tmp, say=lambda _msg: None)
    proxy = ManagedProcess(
        chp_argv(
            chp,
            ip="127.0.0.1",
            port=port,
            api_ip="127.0.0.1",
            api_port=api_port,
            hub_url=f"http://127.0.0.1:{hub_port}",
        ),
        name="configurable-http-proxy",
        log_path=tmp / "proxy.log",
        env=env,
    )
    settings = {
        "JupyterHub": {
            "bind_url": url,
            "hub_bind_url": f"http://127.0.0.1:{hub_port}",
            "db_url": f"sqlite:///{tmp / 'jupyterhub.sqlite'}",
            "cookie_secret_file": str(tmp / "cookie_secret"),
            "pid_file": str(tmp / "jupyterhub.pid"),
            "services": [{"name": "test-admin", "api_token": token}],
            "load_roles": [{"name": "admin", "services": ["test-admin"]}],
        },
        "ConfigurableHTTPProxy": {
            "api_url": f"http://127.0.0.1:{api_port}",
            "should_start": False,
            "auth_token": proxy_token,
        },
    }
    for cls, traits in settings_for(url).items():
        settings.setdefault(cls, {}).update(traits)
    await wait_for(
        lambda: proxy.running() and port_is_open("127.0.0.1", api_port),
        timeout=30,
        what="configurable-http-proxy's API",
    )
    config = tmp / "jupyterhub_config.py"
    config.write_text(
        "import json\n"
        f"for cls, traits in json.loads({json.dumps(json.dumps(settings))}).items():\n"
        "    for name, value in traits.items():\n"
        "        setattr(getattr(c, cls), name, value)\n"
    )
    proc = ManagedProcess(
        [sys.executable, "-m", "jupyterhub", "-f", str(config)],
        name="jupyterhub",
        log_path=tmp / "jupyterhub.log",
        env=env,
        cwd=tmp,
    )
    hub = Hub(url=url, proc=proc, proxy=proxy, admin_token=token, db_path=tmp / "jupyterhub.sqlite")

    try:
        await wait_serving(proc, f"{url}/hub/api/", timeout=60, what="jupyterhub behind the proxy")
    except BaseException:
        await hub.stop()
        raise
    return hub
