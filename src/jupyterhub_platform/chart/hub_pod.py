"""What the rendered chart gives the hub container: its files, its environment, its command (pure).

The chart's hub reads everything from mounts under ``/usr/local/etc/jupyterhub`` (the ConfigMap
with ``jupyterhub_config.py``, ``z2jh.py`` and the resource names, the Secret with the whole values
and generated secrets, ``hub.existingSecret``, ``hub.extraFiles``), from env vars Kubernetes sets
(field and secret references, service links) and runs in ``/srv/jupyterhub``. These functions
compute exactly that from the rendered objects, so a local hub can be given the same.

The only change is :func:`rewrite_prefix`: the mount prefix is hard-coded in the stock files, and
a host process cannot use ``/usr/local/etc/jupyterhub``.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

ETC = "/usr/local/etc/jupyterhub"
"""Where the chart mounts the hub's configuration (hard-coded in the stock files)."""
SRV = "/srv/jupyterhub"
"""The hub container's working directory in the k8s-hub image (the sqlite database lives here)."""
REWRITTEN_FILES = (f"{ETC}/jupyterhub_config.py", f"{ETC}/z2jh.py")
VALUES_FILE = f"{ETC}/secret/values.yaml"
_PREFIX = re.compile(re.escape(ETC) + r"(?![\w.-])")


class HubPodError(ValueError):
    """The rendered hub pod needs something that cannot be provided; the message says what."""


@dataclass(frozen=True)
class HubObjects:
    """The hub's ConfigMap, Secret and Deployment from a rendered chart."""

    name: str
    config_map: Mapping[str, str]
    secret: Mapping[str, str]
    pod_spec: Mapping[str, Any]
    container: Mapping[str, Any]
    services: tuple[Mapping[str, Any], ...]


def _decode(secret: Mapping[str, Any]) -> dict[str, str]:
    data = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
    data.update({k: str(v) for k, v in (secret.get("stringData") or {}).items()})
    return data


def hub_objects(docs: Sequence[Mapping[str, Any]]) -> HubObjects:
    """Find the hub's objects: the ConfigMap carrying ``jupyterhub_config.py`` names them."""
    config_map = next(
        (
            d
            for d in docs
            if d.get("kind") == "ConfigMap" and "jupyterhub_config.py" in (d.get("data") or {})
        ),
        None,
    )
    if config_map is None:
        raise HubPodError(
            "the rendered chart has no ConfigMap with jupyterhub_config.py: not z2jh?"
        )
    name = config_map["metadata"]["name"]

    def named(kind: str) -> Mapping[str, Any]:
        found = next(
            (d for d in docs if d.get("kind") == kind and d["metadata"]["name"] == name), None
        )
        if found is None:
            raise HubPodError(f"the rendered chart has no hub {kind} named {name!r}")
        return found

    pod_spec = named("Deployment")["spec"]["template"]["spec"]
    container = next((c for c in pod_spec["containers"] if c["name"] == "hub"), None)
    if container is None:
        raise HubPodError(f"Deployment {name!r} has no container named 'hub'")
    return HubObjects(
        name=name,
        config_map={k: str(v) for k, v in (config_map.get("data") or {}).items()},
        secret=_decode(named("Secret")),
        pod_spec=pod_spec,
        container=container,
        services=tuple(d for d in docs if d.get("kind") == "Service"),
    )


def rewrite_prefix(text: str, etc_dir: str) -> str:
    """``text`` with the hard-coded mount prefix replaced by ``etc_dir`` (whole path components)."""
    return _PREFIX.sub(etc_dir.replace("\\", "\\\\"), text)


def _rewrite_paths(value: Any, etc_dir: str) -> Any:
    if isinstance(value, str):
        return etc_dir + value[len(ETC) :] if value == ETC or value.startswith(ETC + "/") else value
    if isinstance(value, list):
        return [_rewrite_paths(v, etc_dir) for v in value]
    if isinstance(value, dict):
        return {k: _rewrite_paths(v, etc_dir) for k, v in value.items()}
    return value


def rewrite_values_paths(values_yaml: str, etc_dir: str) -> str:
    """The Secret's ``values.yaml`` with every path value under the prefix moved to ``etc_dir``."""
    return yaml.safe_dump(_rewrite_paths(yaml.safe_load(values_yaml), etc_dir), sort_keys=False)


@dataclass(frozen=True)
class MountedFiles:
    """The hub container's view of its mounts: file contents by path, and the working directory."""

    files: Mapping[str, str]
    modes: Mapping[str, int] = field(default_factory=dict)
    workdir: str = SRV


def _volume_source(
    hub: HubObjects, volume: Mapping[str, Any], existing_secret: Mapping[str, str] | None
) -> dict[str, str]:
    """The files a ConfigMap or Secret volume projects (``items`` maps keys to paths)."""
    name = volume["name"]
    if "configMap" in volume:
        source, ref = volume["configMap"], volume["configMap"]["name"]
        if ref != hub.name:
            raise HubPodError(
                f"hub volume {name!r}: ConfigMap {ref!r} is not rendered by the chart"
            )
        data = hub.config_map
    elif "secret" in volume:
        source, ref = volume["secret"], volume["secret"]["secretName"]
        if ref == hub.name:
            data = hub.secret
        elif existing_secret is not None:
            data = existing_secret
        else:
            raise HubPodError(
                f"hub volume {name!r} mounts Secret {ref!r} (hub.existingSecret), whose content only "
                "the cluster has: give it to the local platform (--existing-secret FILE)"
            )
    else:
        kinds = sorted(k for k in volume if k != "name")
        raise HubPodError(f"hub volume {name!r} ({', '.join(kinds)}) has no local equivalent")
    items = source.get("items")
    if not items:
        return dict(data)
    missing = [i["key"] for i in items if i["key"] not in data]
    if missing:
        raise HubPodError(f"hub volume {name!r}: keys {missing} are not in {ref!r}")
    return {i["path"]: data[i["key"]] for i in items}


def mounted_files(
    hub: HubObjects, existing_secret: Mapping[str, str] | None = None
) -> MountedFiles:
    """Every file the hub container sees under its mounts, as the pod would see it."""
    volumes = {v["name"]: v for v in hub.pod_spec.get("volumes") or []}
    files: dict[str, str] = {}
    modes: dict[str, int] = {}
    workdir = SRV
    for mount in hub.container.get("volumeMounts") or []:
        path, volume = mount["mountPath"].rstrip("/"), volumes.get(mount["name"])
        if volume is None:
            raise HubPodError(f"hub volumeMount {path}: no volume named {mount['name']!r}")
        if "persistentVolumeClaim" in volume and path == SRV:
            workdir = path  # the database directory: a directory of the local state
            continue
        projected = _volume_source(hub, volume, existing_secret)
        sub_path = mount.get("subPath")
        if sub_path:
            if sub_path not in projected:
                raise HubPodError(
                    f"hub volumeMount {path}: {sub_path!r} is not in volume {mount['name']!r}"
                )
            files[path] = projected[sub_path]
            mode = next(
                (
                    i.get("mode")
                    for i in (volume.get("secret") or {}).get("items") or []
                    if i["path"] == sub_path
                ),
                None,
            )
            if mode is not None:
                modes[path] = mode
        else:
            files.update({f"{path}/{key}": value for key, value in projected.items()})
    return MountedFiles(files=files, modes=modes, workdir=workdir)


def local_files(mounted: MountedFiles, etc_dir: str) -> dict[str, str]:
    """``mounted`` moved under ``etc_dir``, with :func:`rewrite_prefix` in the files that need it.

    Only the prefix is provided locally: a file mounted elsewhere (``hub.extraFiles`` with a
    mountPath outside it) is an error rather than a file the hub would silently not find.
    """
    outside = sorted(p for p in mounted.files if not p.startswith(ETC + "/"))
    if outside:
        raise HubPodError(
            f"files mounted outside {ETC} cannot be provided locally: {', '.join(outside)} "
            "(put hub.extraFiles mountPaths under that directory)"
        )
    local = {}
    for path, content in mounted.files.items():
        if path in REWRITTEN_FILES:
            content = rewrite_prefix(content, etc_dir)
        elif path == VALUES_FILE:
            content = rewrite_values_paths(content, etc_dir)
        local[etc_dir + path[len(ETC) :]] = content
    return local


@dataclass(frozen=True)
class PodFacts:
    """What the Downward API would tell the hub container about its pod."""

    namespace: str
    pod_name: str
    pod_ip: str
    node_name: str

    def field(self, path: str, pod_spec: Mapping[str, Any]) -> str:
        values = {
            "metadata.namespace": self.namespace,
            "metadata.name": self.pod_name,
            "status.podIP": self.pod_ip,
            "status.hostIP": self.pod_ip,
            "spec.nodeName": self.node_name,
            "spec.serviceAccountName": pod_spec.get("serviceAccountName", "default"),
        }
        if path not in values:
            raise HubPodError(f"fieldRef {path!r} has no local equivalent")
        return values[path]


def container_env(
    hub: HubObjects, facts: PodFacts, existing_secret: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The hub container's ``env`` (values, field refs, ConfigMap and Secret refs) resolved."""
    if hub.container.get("envFrom"):
        raise HubPodError("hub container envFrom has no local equivalent")
    env: dict[str, str] = {}
    for entry in hub.container.get("env") or []:
        name = entry["name"]
        if "valueFrom" not in entry:
            env[name] = "" if entry.get("value") is None else str(entry["value"])
            continue
        source = entry["valueFrom"]
        if "fieldRef" in source:
            env[name] = facts.field(source["fieldRef"]["fieldPath"], hub.pod_spec)
        elif "secretKeyRef" in source or "configMapKeyRef" in source:
            kind = "secretKeyRef" if "secretKeyRef" in source else "configMapKeyRef"
            ref = source[kind]
            if kind == "configMapKeyRef":
                data = hub.config_map if ref["name"] == hub.name else None
            else:
                data = hub.secret if ref["name"] == hub.name else existing_secret
            if data is not None and ref["key"] in data:
                env[name] = data[ref["key"]]
            elif not ref.get("optional"):
                raise HubPodError(
                    f"hub env {name}: {kind} {ref['name']}/{ref['key']} is not available locally "
                    "(only the chart's own objects and hub.existingSecret via --existing-secret are)"
                )
        else:
            raise HubPodError(f"hub env {name}: valueFrom {sorted(source)} has no local equivalent")
    return env


def _env_name(name: str) -> str:
    return name.upper().replace("-", "_").replace(".", "_")


def service_link_env(
    hub: HubObjects, host: str, local_ports: Mapping[str, Mapping[int, int]]
) -> dict[str, str]:
    """``<SVC>_SERVICE_HOST`` / ``_SERVICE_PORT[_<NAME>]`` for the rendered Services that have a
    local stand-in, keyed by the chart's short names (``hub``, ``proxy-api``, ...).

    ``local_ports[short][service_port]`` is the local port standing in for that Service port.
    """
    by_name = {s["metadata"]["name"]: s for s in hub.services}
    env: dict[str, str] = {}
    for short, ports in local_ports.items():
        service = by_name.get(hub.config_map.get(short, short))
        if service is None:
            continue
        prefix = _env_name(service["metadata"]["name"])
        service_ports = [p for p in service["spec"].get("ports") or [] if p["port"] in ports]
        if not service_ports:
            continue
        env[f"{prefix}_SERVICE_HOST"] = host
        env[f"{prefix}_SERVICE_PORT"] = str(ports[service_ports[0]["port"]])
        for port in service_ports:
            if port.get("name"):
                env[f"{prefix}_SERVICE_PORT_{_env_name(port['name'])}"] = str(ports[port["port"]])
    return env


def hub_args(hub: HubObjects, python: str, etc_dir: str) -> list[str]:
    """The hub container's command line, ``jupyterhub`` run by ``python``, paths moved to ``etc_dir``."""
    if hub.container.get("command"):
        raise HubPodError(f"hub.command {hub.container['command']} has no local equivalent")
    args = [rewrite_prefix(str(a), etc_dir) for a in hub.container.get("args") or []]
    if not args or args[0] != "jupyterhub":
        raise HubPodError(
            f"hub args {args} do not run jupyterhub; hub.args has no local equivalent"
        )
    return [python, "-m", "jupyterhub", *args[1:]]
