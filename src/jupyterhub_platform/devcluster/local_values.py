"""The one values file the local platform adds after the shipped ones (pure).

Everything the local platform changes that chart values can say is said here, so the local hub
runs the chart's own configuration with the same values a cluster gets plus this overlay:
addresses on 127.0.0.1 instead of the chart's Service names and port 8081, the local identity
provider or Cloudflare stand-in, the chart Secret's generated values (kept stable across restarts,
so sessions survive one), a token-only admin service for tests and scripts, the command of
process "pods", the hub-managed services' addresses and programs (and the user servers' settings
that name them), and no user-scheduler (the emulator has one node and its own scheduler).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jupyterhub_platform.chart.values import get_path
from jupyterhub_platform.services.common.app import BIND_URL_ENV

ADMIN_SERVICE = "platform-dev-admin"
"""A token-only service holding the admin role, for tests and scripts against the local hub."""
ADMIN_TOKEN_KEY = f"hub.services.{ADMIN_SERVICE}.apiToken"
PROXY_TOKEN_KEY = "hub.config.ConfigurableHTTPProxy.auth_token"
SPAWNER_CREDENTIALS_URL = "hub.config.ProfileSpawner.credentials_url"


@dataclass(frozen=True)
class LocalEndpoints:
    """Where the local components listen."""

    ip: str
    hub_port: int
    proxy_api_port: int
    public_port: int

    @property
    def hub_url(self) -> str:
        return f"http://{self.ip}:{self.hub_port}"

    @property
    def proxy_api_url(self) -> str:
        return f"http://{self.ip}:{self.proxy_api_port}"


@dataclass(frozen=True)
class OIDCLogin:
    """Log in through the development OIDC provider at ``issuer``."""

    issuer: str

    def authenticator_config(self, secret: Callable[[str], str]) -> dict[str, dict[str, Any]]:
        return {
            "OIDCAuthenticator": {
                "issuer": self.issuer,
                "client_secret": secret("hub.config.OIDCAuthenticator.client_secret"),
                # empty: derived from the request, so 127.0.0.1 and localhost both work
                "oauth_callback_url": "",
            }
        }


@dataclass(frozen=True)
class CloudflareLogin:
    """Log in through the Cloudflare Access stand-in at ``team_domain``."""

    team_domain: str
    audience: str

    def authenticator_config(self, secret: Callable[[str], str]) -> dict[str, dict[str, Any]]:
        return {
            "CloudflareAccessAuthenticator": {
                "team_domain": self.team_domain,
                "audience": [self.audience],
                # the demo users are <name>@example.org: their hub names match the IdP's
                "username_from_email": "local-part",
            }
        }


def local_values(
    shipped: Mapping[str, Any],
    endpoints: LocalEndpoints,
    login: OIDCLogin | CloudflareLogin,
    secret: Callable[[str], str],
    *,
    singleuser_cmd: list[str],
    service_port: Callable[[str], int] = lambda _name: 0,
    bin_dir: Path | None = None,
) -> dict[str, Any]:
    """The overlay for ``shipped`` (the merged values files it goes after).

    ``secret(key)`` gives a stable generated secret; ``singleuser_cmd`` is how the process
    kubelet starts a user server from this virtualenv; ``service_port(name)`` a free local port
    for a hub-managed service with a ``url``, and ``bin_dir`` where its program is installed.
    """
    admin_role_services = get_path(shipped, "hub.loadRoles.admin.services") or []
    services = local_services(shipped, endpoints.ip, service_port, bin_dir)
    return {
        "singleuser": {"extraEnv": moved_service_urls(shipped, services)},
        "hub": {
            "config": {
                "JupyterHub": {
                    "hub_bind_url": endpoints.hub_url,
                    "hub_connect_url": endpoints.hub_url,
                    "cookie_secret": secret("hub.config.JupyterHub.cookie_secret"),
                },
                "ConfigurableHTTPProxy": {
                    "api_url": endpoints.proxy_api_url,
                    "auth_token": secret(PROXY_TOKEN_KEY),
                },
                "CryptKeeper": {"keys": [secret("hub.config.CryptKeeper.keys")]},
                "KubeSpawner": {"cmd": list(singleuser_cmd)},
                **moved_spawner_urls(shipped, services),
                **login.authenticator_config(secret),
            },
            "services": {
                **services,
                ADMIN_SERVICE: {"apiToken": secret(ADMIN_TOKEN_KEY)},
            },
            "loadRoles": {"admin": {"services": [*admin_role_services, ADMIN_SERVICE]}},
        },
        "scheduling": {"userScheduler": {"enabled": False}},
    }


def local_services(
    shipped: Mapping[str, Any],
    ip: str,
    service_port: Callable[[str], int],
    bin_dir: Path | None,
) -> dict[str, Any]:
    """Hub-managed services (``command``) run as the local hub's children: each ``url`` moves to
    a local port it also binds, and the command's program is this virtualenv's."""
    overlay = {}
    for name, service in (get_path(shipped, "hub.services") or {}).items():
        command = (service or {}).get("command")
        if not command:
            continue
        local: dict[str, Any] = {}
        if bin_dir is not None and (bin_dir / command[0]).is_file():
            local["command"] = [str(bin_dir / command[0]), *command[1:]]
        if service.get("url"):
            url = f"http://{ip}:{service_port(name)}"
            local["url"] = url
            local["environment"] = {BIND_URL_ENV: url}
        overlay[name] = local
    return overlay


def moved_service_urls(shipped: Mapping[str, Any], services: Mapping[str, Any]) -> dict[str, str]:
    """``singleuser.extraEnv`` values that point at a hub-managed service's ``url`` (the user
    servers asking the culler), moved to where :func:`local_services` runs that service."""
    moves = _service_moves(shipped, services)
    env = get_path(shipped, "singleuser.extraEnv")
    moved = {}
    for key, value in env.items() if isinstance(env, Mapping) else ():
        new = _moved(value, moves)
        if new is not None:
            moved[key] = new
    return moved


def moved_spawner_urls(shipped: Mapping[str, Any], services: Mapping[str, Any]) -> dict[str, Any]:
    """``ProfileSpawner.credentials_url`` (what the spawner hands the servers), moved the same way."""
    new = _moved(get_path(shipped, SPAWNER_CREDENTIALS_URL), _service_moves(shipped, services))
    return {} if new is None else {"ProfileSpawner": {"credentials_url": new}}


def _service_moves(shipped: Mapping[str, Any], services: Mapping[str, Any]) -> dict[str, str]:
    return {
        str(get_path(shipped, f"hub.services.{name}.url")).rstrip("/"): local["url"]
        for name, local in services.items()
        if local.get("url") and get_path(shipped, f"hub.services.{name}.url")
    }


def _moved(value: object, moves: Mapping[str, str]) -> str | None:
    for old, new in moves.items():
        if isinstance(value, str) and (value == old or value.startswith(old + "/")):
            return new + value[len(old) :]
    return None
