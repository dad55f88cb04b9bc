"""Chart values → JupyterHub traitlets config, the way the stock z2jh 4.4 chart's hub does it.

The platform ships one values file for the stock chart. Production hubs turn it into traitlets
config with the chart's own ``jupyterhub_config.py``; the local platform cannot run that file (it
reads Kubernetes Secrets and Service environment variables), so this module re-implements the
mapping for the keys we ship, as pure functions. What the chart derives from Kubernetes objects
(proxy API address, hub address, namespace, generated secrets) comes in through
:class:`ChartEnvironment`, so the same values give the same config in both places.

Keys we do not map fail loudly (:func:`check_supported`): a key that silently did nothing locally
would make the local platform lie about production.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

Config = dict[str, dict[str, Any]]
"""Traitlets config as plain data: ``{"KubeSpawner": {"cpu_limit": 1.0}, ...}``."""


class ChartValuesError(ValueError):
    """The values file cannot be used; the message names the file, the key and the value."""


# The stock chart's defaults (z2jh 4.4.0 values.yaml) for the keys mapped here. Helm merges
# the admin's values over these before the hub reads them, so the mapping must see them too.
CHART_DEFAULTS: dict[str, Any] = {
    "hub": {
        "baseUrl": "/",
        "concurrentSpawnLimit": 64,
        "consecutiveFailureLimit": 5,
        "allowNamedServers": False,
        "db": {"type": "sqlite-pvc"},
        "services": {},
        "loadRoles": {},
        "config": {},
    },
    "singleuser": {
        "image": {"name": "quay.io/jupyterhub/k8s-singleuser-sample", "tag": "4.4.0"},
        "uid": 1000,
        "fsGid": 100,
        "startTimeout": 300,
        "events": True,
        "extraLabels": {"hub.jupyter.org/network-access-hub": "true"},
        "allowPrivilegeEscalation": False,
        "cmd": "jupyterhub-singleuser",
        "memory": {"guarantee": "1G"},
        "storage": {
            "type": "dynamic",
            "capacity": "10Gi",
            "homeMountPath": "/home/jovyan",
            "dynamic": {
                "volumeNameTemplate": "volume-{user_server}",
                "storageAccessModes": ["ReadWriteOnce"],
            },
            "extraVolumes": [],
            "extraVolumeMounts": [],
        },
    },
    "cull": {"enabled": True},
    "debug": {"enabled": False},
}

# hub.<camelCase> → c.JupyterHub.<snake_case>, set when not null.
_JUPYTERHUB_TRAITS = (
    "concurrent_spawn_limit",
    "active_server_limit",
    "base_url",
    "allow_named_servers",
    "named_server_limit_per_user",
    "authenticate_prometheus",
    "redirect_to_server",
    "shutdown_on_logout",
    "template_paths",
    "template_vars",
)

# c.KubeSpawner.<trait> ← singleuser.<key>, set when not null. ``None`` key: camelCase of trait.
_KUBESPAWNER_TRAITS: tuple[tuple[str, str | None], ...] = (
    ("pod_name_template", None),
    ("start_timeout", None),
    ("image_pull_policy", "image.pullPolicy"),
    ("events_enabled", "events"),
    ("extra_labels", None),
    ("extra_annotations", None),
    ("uid", None),
    ("fs_gid", None),
    ("service_account", "serviceAccountName"),
    ("storage_extra_labels", "storage.extraLabels"),
    ("node_selector", None),
    ("lifecycle_hooks", None),
    ("init_containers", None),
    ("extra_containers", None),
    ("mem_limit", "memory.limit"),
    ("mem_guarantee", "memory.guarantee"),
    ("cpu_limit", "cpu.limit"),
    ("cpu_guarantee", "cpu.guarantee"),
    ("extra_resource_limits", "extraResource.limits"),
    ("extra_resource_guarantees", "extraResource.guarantees"),
    ("environment", "extraEnv"),
    ("profile_list", None),
    ("extra_pod_config", None),
)

# hub.config entries the chart replaces with chart-managed secrets (never read from values).
_SECRET_HUB_CONFIG = {
    "JupyterHub": ("proxy_auth_token", "cookie_secret", "services"),
    "ConfigurableHTTPProxy": ("auth_token",),
    "CryptKeeper": ("keys",),
}

# Values the stock chart renders into Kubernetes objects (Deployments, NetworkPolicies, the
# proxy pod) rather than into hub config. They are valid to ship; the local platform has no
# equivalent of them, which docs/local-platform.md says.
CHART_ONLY_KEYS = (
    "hub.extraFiles",  # mounted into the hub pod; see extra_files() for the local equivalent
    "hub.image",
    "hub.resources",
    "hub.networkPolicy",
    "ingress",
    "proxy",
    "singleuser.networkPolicy",
)


def _camel(snake: str) -> str:
    return re.sub(r"_([a-z])", lambda m: m.group(1).upper(), snake)


def _supported_keys() -> tuple[str, ...]:
    """Every values key (or subtree) this module maps, as dotted paths."""
    keys = [f"hub.{_camel(t)}" for t in _JUPYTERHUB_TRAITS]
    keys += [f"singleuser.{k or _camel(t)}" for t, k in _KUBESPAWNER_TRAITS]
    keys += [
        "hub.consecutiveFailureLimit",
        "hub.db.type",
        "hub.db.url",
        "hub.config",
        "hub.services",
        "hub.loadRoles",
        "hub.extraConfig",
        "singleuser.image.name",
        "singleuser.image.tag",
        "singleuser.allowPrivilegeEscalation",
        "singleuser.cmd",
        "singleuser.defaultUrl",
        "singleuser.storage.type",
        "singleuser.storage.capacity",
        "singleuser.storage.homeMountPath",
        "singleuser.storage.dynamic",
        "singleuser.storage.static",
        "singleuser.storage.extraVolumes",
        "singleuser.storage.extraVolumeMounts",
        "cull.enabled",
        "debug.enabled",
    ]
    return tuple(keys)


SUPPORTED_KEYS = _supported_keys()

SET_FILES = {"hub.extraFiles.platform-policy.stringData": "policy.yaml"}
"""The install command's ``--set-file`` arguments (README): values key → file beside values.yaml."""


def load_values(path: Path) -> dict[str, Any]:
    """Read a values file; a clear :class:`ChartValuesError` instead of a YAML traceback."""
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ChartValuesError(f"{path}: cannot read the values file: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ChartValuesError(f"{path}: not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ChartValuesError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    return data


def load_install_values(path: Path) -> dict[str, Any]:
    """The values the install command gives Helm: ``path`` plus the :data:`SET_FILES`."""
    values = load_values(path)
    for dotted, name in SET_FILES.items():
        file = path.parent / name
        try:
            content = file.read_text()
        except OSError as exc:
            raise ChartValuesError(f"{file}: cannot read (--set-file {dotted}): {exc.strerror}") from exc
        *parents, leaf = dotted.split(".")
        node = values
        for key in parents:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise ChartValuesError(f"{path}: {key} must be a mapping to take --set-file {dotted}")
        node[leaf] = content
    return values


def extra_files(values: Mapping[str, Any]) -> dict[str, str]:
    """``hub.extraFiles`` with text content as ``{mountPath: content}``.

    ``data`` entries are rendered as YAML (the chart picks YAML, JSON or TOML by extension;
    YAML is a superset of the JSON it would write).
    """
    files = {}
    for key, spec in (_get(values, "hub.extraFiles") or {}).items():
        if "stringData" in spec:
            files[spec["mountPath"]] = spec["stringData"]
        elif "data" in spec:
            files[spec["mountPath"]] = yaml.safe_dump(spec["data"], sort_keys=False)
        else:
            raise ChartValuesError(f"hub.extraFiles.{key}: only stringData and data are supported")
    return files


def extra_config(values: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``hub.extraConfig`` snippets in the order the chart runs them (sorted by key)."""
    return sorted((_get(values, "hub.extraConfig") or {}).items())


def _leaf_paths(tree: Mapping[str, Any], prefix: str = ""):
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            yield from _leaf_paths(value, path + ".")
        else:
            yield path, value


def _covered(path: str, keys: tuple[str, ...]) -> bool:
    return any(path == k or path.startswith(k + ".") for k in keys)


def check_supported(values: Mapping[str, Any], source: str | Path) -> None:
    """Reject values the mapping would silently ignore, and settings we cannot honour."""
    for path, value in _leaf_paths(values):
        if not _covered(path, SUPPORTED_KEYS + CHART_ONLY_KEYS):
            raise ChartValuesError(
                f"{source}: {path} = {value!r} is not supported by jupyterhub-platform's chart "
                "mapping (jupyterhub_platform/devcluster/chart.py); map it there or remove it"
            )
    for section in ("hub.config", "hub.services", "hub.loadRoles"):
        tree = _get(values, section)
        if tree is None:
            continue
        if not isinstance(tree, Mapping):
            raise ChartValuesError(f"{source}: {section} = {tree!r} must be a mapping")
        for key, value in tree.items():
            if not isinstance(value, Mapping):
                raise ChartValuesError(f"{source}: {section}.{key} = {value!r} must be a mapping")
    if _get(values, "cull.enabled") is True:
        raise ChartValuesError(
            f"{source}: cull.enabled = True is not supported: the platform runs its own culler, "
            "set cull.enabled to false"
        )


def merge_values(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Helm's merge: mappings merge recursively, anything else is replaced."""
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_values(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _get(tree: Mapping[str, Any], dotted: str, default: Any = None) -> Any:
    node: Any = tree
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return default
        node = node[part]
    return node


@dataclass(frozen=True)
class ChartEnvironment:
    """What the chart's hub learns from Kubernetes rather than from the values.

    In a cluster these come from the proxy-api and hub Services and the chart-managed Secret;
    the local platform supplies its own endpoints and secret store.
    """

    proxy_api_url: str
    hub_bind_url: str
    hub_connect_url: str
    secret: Callable[[str], str]
    """Chart-managed secret for a values key, e.g. ``hub.services.<name>.apiToken``."""
    namespace: str = "default"
    release: str = "jhub"


def chart_config(values: Mapping[str, Any], env: ChartEnvironment) -> Config:
    """The traitlets config the stock chart's hub builds from ``values`` (merged over defaults)."""
    v = merge_values(CHART_DEFAULTS, values)
    cfg: Config = {}

    def put(cls: str, trait: str, value: Any) -> None:
        cfg.setdefault(cls, {})[trait] = value

    def put_if_set(cls: str, trait: str, key: str) -> None:
        value = _get(v, key)
        if value is not None:
            put(cls, trait, value)

    # Fixed settings of the chart's hub: the proxy runs in its own pod, user pods outlive hub
    # restarts, no delay before the spawn progress page.
    put("JupyterHub", "spawner_class", "kubespawner.KubeSpawner")
    put("ConfigurableHTTPProxy", "api_url", env.proxy_api_url)
    put("ConfigurableHTTPProxy", "should_start", False)
    put("JupyterHub", "cleanup_servers", False)
    put("JupyterHub", "last_activity_interval", 60)
    put("JupyterHub", "tornado_settings", {"slow_spawn_timeout": 0})
    put("JupyterHub", "hub_bind_url", env.hub_bind_url)
    put("JupyterHub", "hub_connect_url", env.hub_connect_url)
    put("KubeSpawner", "namespace", env.namespace)
    put(
        "KubeSpawner",
        "common_labels",
        {"app": "jupyterhub", "heritage": "jupyterhub", "release": env.release},
    )

    db_type = _get(v, "hub.db.type")
    if db_type == "sqlite-pvc":
        put("JupyterHub", "db_url", "sqlite:///jupyterhub.sqlite")
    elif db_type == "sqlite-memory":
        put("JupyterHub", "db_url", "sqlite://")
    else:
        put_if_set("JupyterHub", "db_url", "hub.db.url")

    for trait in _JUPYTERHUB_TRAITS:
        put_if_set("JupyterHub", trait, f"hub.{_camel(trait)}")
    put_if_set("Spawner", "consecutive_failure_limit", "hub.consecutiveFailureLimit")
    for trait, key in _KUBESPAWNER_TRAITS:
        put_if_set("KubeSpawner", trait, f"singleuser.{key or _camel(trait)}")

    image = _get(v, "singleuser.image.name")
    if image:
        tag = _get(v, "singleuser.image.tag")
        put("KubeSpawner", "image", f"{image}:{tag}" if tag else image)
    # None, False and True are all meaningful here, so it is always set.
    put("KubeSpawner", "allow_privilege_escalation", _get(v, "singleuser.allowPrivilegeEscalation"))

    volumes, mounts = _storage(v)
    volumes += list(_get(v, "singleuser.storage.extraVolumes") or [])
    mounts += list(_get(v, "singleuser.storage.extraVolumeMounts") or [])
    if volumes or mounts:
        put("KubeSpawner", "volumes", volumes)
        put("KubeSpawner", "volume_mounts", mounts)
    if _get(v, "singleuser.storage.type") == "dynamic":
        put("KubeSpawner", "storage_pvc_ensure", True)
        put_if_set("KubeSpawner", "pvc_name_template", "singleuser.storage.dynamic.pvcNameTemplate")
        put_if_set("KubeSpawner", "storage_class", "singleuser.storage.dynamic.storageClass")
        put_if_set(
            "KubeSpawner", "storage_access_modes", "singleuser.storage.dynamic.storageAccessModes"
        )
        put_if_set("KubeSpawner", "storage_capacity", "singleuser.storage.capacity")

    put("JupyterHub", "services", _services(v, env))
    put("JupyterHub", "load_roles", _roles(v))

    # Always set (the chart default provides one): an explicit null means "the image's command".
    put("Spawner", "cmd", _get(v, "singleuser.cmd"))
    put_if_set("Spawner", "default_url", "singleuser.defaultUrl")

    if _get(v, "debug.enabled"):
        put("JupyterHub", "log_level", "DEBUG")
        put("Spawner", "debug", True)

    put("JupyterHub", "cookie_secret", env.secret("hub.config.JupyterHub.cookie_secret"))
    put("CryptKeeper", "keys", env.secret("hub.config.CryptKeeper.keys").split(";"))

    # hub.config last: it overrides anything above, trait by trait.
    for cls, traits in (_get(v, "hub.config") or {}).items():
        dropped = _SECRET_HUB_CONFIG.get(cls, ())
        cfg.setdefault(cls, {}).update(
            {k: copy.deepcopy(val) for k, val in traits.items() if k not in dropped}
        )
    return cfg


def _storage(v: Mapping[str, Any]) -> tuple[list[dict], list[dict]]:
    """Home volume and mount for ``singleuser.storage.type``."""
    storage_type = _get(v, "singleuser.storage.type")
    home = _get(v, "singleuser.storage.homeMountPath")
    if storage_type == "dynamic":
        name = _get(v, "singleuser.storage.dynamic.volumeNameTemplate")
        volume = {"name": name, "persistentVolumeClaim": {"claimName": "{pvc_name}"}}
        mount = {"mountPath": home, "name": name}
        sub_path = _get(v, "singleuser.storage.dynamic.subPath")
    elif storage_type == "static":
        claim = _get(v, "singleuser.storage.static.pvcName")
        volume = {"name": "home", "persistentVolumeClaim": {"claimName": claim}}
        mount = {"mountPath": home, "name": "home"}
        sub_path = _get(v, "singleuser.storage.static.subPath")
    else:
        return [], []
    if sub_path is not None:
        mount["subPath"] = sub_path
    return [volume], [mount]


def _services(v: Mapping[str, Any], env: ChartEnvironment) -> list[dict[str, Any]]:
    """``hub.services`` (a mergeable mapping) → the hub's list, tokens from the chart Secret."""
    services = []
    for key, spec in (_get(v, "hub.services") or {}).items():
        service = {k: copy.deepcopy(val) for k, val in spec.items() if k != "apiToken"}
        service.setdefault("name", key)
        # An apiToken in the values seeds the chart Secret; otherwise the chart generates one.
        service["api_token"] = spec.get("apiToken") or env.secret(f"hub.services.{key}.apiToken")
        services.append(service)
    return services


def _roles(v: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``hub.loadRoles`` (a mergeable mapping) → ``JupyterHub.load_roles``."""
    roles = []
    for key, spec in (_get(v, "hub.loadRoles") or {}).items():
        role = copy.deepcopy(dict(spec))
        role.setdefault("name", key)
        roles.append(role)
    return roles


def apply_config(c: Any, cfg: Config) -> None:
    """Write plain-data config onto a traitlets ``Config`` (``c`` in a config file)."""
    for cls, traits in cfg.items():
        for trait, value in traits.items():
            c[cls][trait] = value
