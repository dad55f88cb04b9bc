"""The local hub's configuration: the shipped chart values plus the local overrides.

The hub runs ``jupyterhub -f <state>/hub/jupyterhub_config.py``; that generated file only calls
:func:`configure`, which reads a settings file the platform wrote. All config logic therefore
lives here, in tested code, and :func:`local_overrides` is the single place that lists what the
local platform changes compared to a cluster running the same values file.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from . import chart
from .procs import port_is_open

ADMIN_SERVICE = "platform-dev-admin"
"""A token-only service holding the admin role, for tests and scripts against the local hub."""


class SecretStore:
    """Generated secrets kept in a private file, like the chart's Secret: stable across restarts."""

    def __init__(self, path: Path):
        self.path = path

    def _read(self) -> dict[str, str]:
        return json.loads(self.path.read_text()) if self.path.exists() else {}

    def get(self, key: str) -> str:
        """The secret for ``key``, generated (256 random bits, hex) the first time it is asked for."""
        values = self._read()  # re-read: the platform and the hub both use the file
        if key not in values:
            values[key] = secrets.token_hex(32)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump(values, f, indent=1)
        return values[key]


@dataclass(frozen=True)
class LocalEndpoints:
    """Where the local components listen; written to the settings file as JSON."""

    hub_port: int
    proxy_api_url: str
    idp_url: str
    values_path: str
    secrets_path: str
    cluster_ready_file: str = ""
    """The devcluster's ready.json: the hub starts importing at once but configures itself only
    once the cluster serves, so its slow start overlaps the cluster's."""
    startup_timeout: float = 90.0
    extra_files_dir: str = ""
    """Where ``hub.extraFiles`` are "mounted" locally (a mountPath maps to this dir + mountPath)."""
    namespace: str = "default"
    ip: str = "127.0.0.1"
    hub_config_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def hub_url(self) -> str:
        return f"http://{self.ip}:{self.hub_port}"


def chart_environment(endpoints: LocalEndpoints, store: SecretStore) -> chart.ChartEnvironment:
    """What the chart would take from its Services and Secret, from local endpoints instead."""
    return chart.ChartEnvironment(
        proxy_api_url=endpoints.proxy_api_url,
        hub_bind_url=endpoints.hub_url,
        hub_connect_url=endpoints.hub_url,
        namespace=endpoints.namespace,
        secret=store.get,
    )


def local_overrides(endpoints: LocalEndpoints, store: SecretStore) -> chart.Config:
    """Everything the local platform changes on top of the shipped values — nothing else.

    Only endpoints and things a laptop cannot have: the OIDC issuer is the development provider,
    the OAuth callback follows the address the browser used (127.0.0.1 or localhost), and user
    "containers" are processes running ``jupyterhub-singleuser`` from this virtualenv (the image
    is ignored; they run as the local user, so as root Jupyter must be told that is intended).
    The Kubernetes API comes from ``KUBECONFIG`` in the hub's environment and the database is the
    chart's ``sqlite:///jupyterhub.sqlite`` in the hub's working directory.
    """
    as_root = ["--ServerApp.allow_root=True"] if os.geteuid() == 0 else []
    return {
        "OIDCAuthenticator": {
            "issuer": endpoints.idp_url,
            "client_secret": store.get("hub.config.OIDCAuthenticator.client_secret"),
            "oauth_callback_url": "",
        },
        "KubeSpawner": {"cmd": ["jupyterhub-singleuser", *as_root]},
    }


def _with_admin_service(cfg: chart.Config, token: str) -> None:
    """Add the token-only admin service and put it in the ``admin`` role."""
    hub = cfg.setdefault("JupyterHub", {})
    hub["services"] = [*hub.get("services", []), {"name": ADMIN_SERVICE, "api_token": token}]
    roles = [dict(r) for r in hub.get("load_roles", [])]
    admin = next((r for r in roles if r.get("name") == "admin"), None)
    if admin is None:
        roles.append({"name": "admin", "services": [ADMIN_SERVICE]})
    else:
        admin["services"] = [*admin.get("services", []), ADMIN_SERVICE]
    hub["load_roles"] = roles


def _install_values(endpoints: LocalEndpoints) -> dict[str, Any]:
    values_path = Path(endpoints.values_path)
    values = chart.load_install_values(values_path)
    chart.check_supported(values, values_path)
    return values


def local_mounts(endpoints: LocalEndpoints, values: dict[str, Any]) -> dict[str, Path]:
    """Each ``hub.extraFiles`` mountPath → the local file standing in for it."""
    base = Path(endpoints.extra_files_dir)
    return {mount: base / mount.lstrip("/") for mount in chart.extra_files(values)}


def _remount(value: Any, mounts: dict[str, Path]) -> Any:
    """``value`` with every string naming a mounted file replaced by its local path."""
    if isinstance(value, str):
        return str(mounts[value]) if value in mounts else value
    if isinstance(value, list):
        return [_remount(v, mounts) for v in value]
    if isinstance(value, dict):
        return {k: _remount(v, mounts) for k, v in value.items()}
    return value


def hub_config(endpoints: LocalEndpoints, values: dict[str, Any] | None = None) -> chart.Config:
    """The complete local hub config: values → chart mapping → local overrides → caller's overrides."""
    values = _install_values(endpoints) if values is None else values
    store = SecretStore(Path(endpoints.secrets_path))
    cfg = chart.chart_config(values, chart_environment(endpoints, store))
    for overrides in (local_overrides(endpoints, store), endpoints.hub_config_overrides):
        for cls, traits in overrides.items():
            cfg.setdefault(cls, {}).update(traits)
    _with_admin_service(cfg, store.get(f"hub.services.{ADMIN_SERVICE}.apiToken"))
    return _remount(cfg, local_mounts(endpoints, values))


def admin_token(secrets_path: Path) -> str:
    """The admin service's API token (created on first use, stable across restarts)."""
    return SecretStore(secrets_path).get(f"hub.services.{ADMIN_SERVICE}.apiToken")


def write_hub_files(hub_dir: Path, endpoints: LocalEndpoints) -> Path:
    """Write the settings and the ``jupyterhub -f`` config file; return the config file's path."""
    hub_dir.mkdir(parents=True, exist_ok=True)
    settings = hub_dir / "platform-settings.json"
    settings.write_text(json.dumps(asdict(endpoints), indent=1))
    config_file = hub_dir / "jupyterhub_config.py"
    config_file.write_text(
        "# Generated by `jupyterhub-platform dev` at each start; edit chart-values/values.yaml or\n"
        "# jupyterhub_platform/devcluster/hub_config.py instead.\n"
        "from jupyterhub_platform.devcluster.hub_config import configure\n\n"
        f"configure(c, {str(settings)!r})  # noqa: F821 - `c` is given by JupyterHub\n"
    )
    return config_file


def _await_dependencies(endpoints: LocalEndpoints) -> None:
    """Block until the cluster is ready and the proxy API listens (the hub needs both)."""
    proxy_api = urlsplit(endpoints.proxy_api_url)
    deadline = time.monotonic() + endpoints.startup_timeout
    ready = Path(endpoints.cluster_ready_file) if endpoints.cluster_ready_file else None
    while (ready is not None and not ready.exists()) or not port_is_open(
        proxy_api.hostname or endpoints.ip, proxy_api.port or 80
    ):
        if time.monotonic() > deadline:
            raise SystemExit(
                f"jupyterhub_config: the devcluster ({ready}) or the proxy API "
                f"({endpoints.proxy_api_url}) did not come up in {endpoints.startup_timeout:g}s"
            )
        time.sleep(0.05)


def configure(c: Any, settings_path: str) -> None:
    """Entry point of the generated config file, run inside the hub process."""
    endpoints = LocalEndpoints(**json.loads(Path(settings_path).read_text()))
    _await_dependencies(endpoints)
    values = _install_values(endpoints)
    mounts = local_mounts(endpoints, values)
    for mount, content in chart.extra_files(values).items():
        mounts[mount].parent.mkdir(parents=True, exist_ok=True)
        mounts[mount].write_text(content)
    chart.apply_config(c, hub_config(endpoints, values))
    # Like the chart's hub: hub.extraConfig runs last, in the config file's namespace.
    for key, code in chart.extra_config(values):
        exec(compile(code, f"<hub.extraConfig.{key}>", "exec"), {"c": c})
