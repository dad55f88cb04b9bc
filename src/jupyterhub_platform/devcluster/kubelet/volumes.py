"""Pod volumes as local directories (process mode).

A process cannot mount anything, so every volume becomes a directory under the kubelet's state
directory: one per PersistentVolumeClaim, shared by every pod that claims it and kept after the
pod is gone (a user's home survives a restart, like a real PV); one per pod for emptyDir and for
secret/configMap volumes (written as files from the API objects); a hostPath is used as-is when
it exists on this machine. Other volume types (projected, downwardAPI, ...) become empty per-pod
directories.

Secret and configMap volumes are written in the kubelet's atomic layout (atomic_writer.py), so
volume_sync.py can swap in new contents while the pod runs. A volume whose object (or key) does
not exist yet is :class:`MountPending`: the kubelet retries until it appears, as Kubernetes does.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..storage import claim_dir
from .atomic_writer import Payload, PayloadError, top_level_names, write_payload

# Kubernetes object names (DNS-1123 subdomains); checked before a name becomes a path component.
_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
_UID_RE = re.compile(r"^[0-9a-fA-F][-0-9a-fA-F]{0,63}$")

#: The data of the Secrets and ConfigMaps a pod references, keyed by (kind, name), decoded.
ObjectData = Mapping[tuple[str, str], Mapping[str, bytes]]


class ContainerConfigError(Exception):
    """The pod asks for something this machine cannot provide.

    ``reason`` is the Kubernetes reason the container status and event carry.
    """

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


class MountPending(ContainerConfigError):
    """A volume cannot be set up *yet* (its object or key is missing): retried, not fatal."""

    def __init__(self, message: str):
        super().__init__("FailedMount", message)


def setup_failed(volume: str, problem: str) -> str:
    """The kubelet's FailedMount message."""
    return f'MountVolume.SetUp failed for volume "{volume}" : {problem}'


def checked_name(value: object, what: str) -> str:
    """``value`` if it is a valid Kubernetes name, so it is safe as a path component."""
    if not isinstance(value, str) or not _NAME_RE.match(value) or ".." in value:
        raise ContainerConfigError("CreateContainerConfigError", f"{what}: invalid name {value!r}")
    return value


def checked_relative(value: object, what: str) -> PurePosixPath:
    """``value`` as a relative path that cannot leave its directory (like the API server checks)."""
    path = PurePosixPath(value) if isinstance(value, str) else None
    if path is None or path.is_absolute() or ".." in path.parts:
        raise ContainerConfigError(
            "CreateContainerConfigError", f"{what}: {value!r} must be a relative path without '..'"
        )
    return path


def checked_uid(value: object) -> str:
    """A pod UID as the server sets it (a UUID), so it is safe as a path component."""
    if not isinstance(value, str) or not _UID_RE.match(value):
        raise ContainerConfigError(
            "CreateContainerConfigError", f"metadata.uid: invalid UID {value!r}"
        )
    return value


@dataclass(frozen=True)
class PodLayout:
    """Where one pod's local state lives under the kubelet's state directory.

    Everything a pod owns is keyed by its UID, as the real kubelet keys ``/var/lib/kubelet/pods``
    and ``/var/log/pods``: a pod deleted and recreated at once under the same name is another
    pod, and the old one's teardown never touches the new one's directories.
    """

    state_dir: Path
    namespace: str
    pod: str
    uid: str

    @property
    def pod_dir(self) -> Path:
        return self.state_dir / "pods" / f"{self.namespace}_{self.pod}_{self.uid}"

    @property
    def volumes_dir(self) -> Path:
        return self.pod_dir / "volumes"

    @property
    def home_dir(self) -> Path:
        """HOME for containers whose home directory is not on a volume."""
        return self.pod_dir / "home"

    @property
    def etc_dir(self) -> Path:
        """The pod's ``hosts``, ``hostname`` and ``resolv.conf`` (namespaced pods only)."""
        return self.pod_dir / "etc"

    def log_path(self, container: str) -> Path:
        """The container's log, as ``/var/log/pods/<ns>_<pod>_<uid>/<container>/0.log``."""
        return self.pod_dir / container / "0.log"

    def termination_log(self, container: str) -> Path:
        """The file standing in for the container's ``terminationMessagePath``."""
        return self.pod_dir / container / "termination-log"

    def pvc_dir(self, claim: str) -> Path:
        return claim_dir(self.state_dir, self.namespace, claim)


@dataclass(frozen=True)
class Volume:
    """A pod volume and the local directory standing in for it."""

    name: str
    kind: str
    path: Path
    source: Mapping


_KINDS = ("persistentVolumeClaim", "emptyDir", "secret", "configMap", "hostPath")
# New claims and emptyDirs start 0777, as local-path provisioners and the kubelet create them;
# fsGroup then gives them their group (see ownership.py).
_WORLD_WRITABLE = ("persistentVolumeClaim", "emptyDir")


def plan_volumes(pod: Mapping, layout: PodLayout) -> dict[str, Volume]:
    """The local directory of each volume in ``pod`` (no I/O)."""
    planned: dict[str, Volume] = {}
    for spec in pod.get("spec", {}).get("volumes") or []:
        name = checked_name(spec.get("name"), "spec.volumes[].name")
        kind = next((k for k in _KINDS if k in spec), "other")
        source = spec.get(kind) or {}
        if kind == "persistentVolumeClaim":
            claim = checked_name(source.get("claimName"), f"volume {name!r} claimName")
            path = layout.pvc_dir(claim)
        elif kind == "hostPath":
            path = Path(str(source.get("path", "")))
        else:
            path = layout.volumes_dir / name
        planned[name] = Volume(name=name, kind=kind, path=path, source=source)
    return planned


def object_data(kind: str, obj: Mapping) -> dict[str, bytes]:
    """The decoded key/value data of a Secret or ConfigMap object from the API."""
    data: dict[str, bytes] = {}
    if kind == "secrets":
        for key, value in (obj.get("data") or {}).items():
            data[key] = base64.b64decode(value or "")
    else:
        for key, value in (obj.get("data") or {}).items():
            data[key] = (value or "").encode()
        for key, value in (obj.get("binaryData") or {}).items():
            data[key] = base64.b64decode(value or "")
    return data


def object_key(volume: Volume) -> tuple[str, str]:
    """The (kind, name) of the object a secret/configMap volume shows."""
    if volume.kind == "secret":
        return "secrets", str(volume.source.get("secretName", ""))
    return "configmaps", str(volume.source.get("name", ""))


def synced(volumes: Mapping[str, Volume]) -> list[Volume]:
    """The volumes whose files come from API objects (and follow their changes)."""
    return [v for v in volumes.values() if v.kind in ("secret", "configMap")]


def volume_files(volume: Volume, objects: ObjectData) -> Payload:
    """Files (relative path → content, mode) of a secret/configMap volume.

    A missing object is :class:`MountPending` unless the volume is ``optional``; ``items``
    selects and renames keys, as in Kubernetes.
    """
    kind, name = object_key(volume)
    what = kind[:-1]
    data = objects.get((kind, name))
    if data is None:
        if volume.source.get("optional"):
            return {}
        raise MountPending(setup_failed(volume.name, f'{what} "{name}" not found'))
    default_mode = int(volume.source.get("defaultMode", 0o644))
    items = volume.source.get("items")
    if not items:
        files = {checked_relative(k, "key"): (v, default_mode) for k, v in data.items()}
        return _checked_payload(volume, files)
    files = {}
    for item in items:
        if item.get("key") not in data:
            if volume.source.get("optional"):
                continue
            noun = "secret key" if kind == "secrets" else "config key"
            problem = f"{what} references non-existent {noun}: {item.get('key')}"
            raise MountPending(setup_failed(volume.name, problem))
        path = checked_relative(item.get("path"), f"volume {volume.name!r} items[].path")
        files[path] = (data[item["key"]], int(item.get("mode", default_mode)))
    return _checked_payload(volume, files)


def _checked_payload(volume: Volume, files: Payload) -> Payload:
    try:
        top_level_names(files)
    except PayloadError as exc:
        raise ContainerConfigError("FailedMount", setup_failed(volume.name, str(exc))) from exc
    return files


def materialize(volumes: Mapping[str, Volume], objects: ObjectData) -> None:
    """Create the directories of ``volumes`` and write secret/configMap files into them.

    Every volume is checked before anything is written, so a pending mount leaves nothing behind.
    """
    for volume in volumes.values():
        if volume.kind == "hostPath" and (
            not volume.path.is_absolute() or not volume.path.exists()
        ):
            raise ContainerConfigError(
                "FailedMount",
                setup_failed(
                    volume.name, f'hostPath "{volume.path}" does not exist on this machine'
                ),
            )
    payloads = {volume.name: volume_files(volume, objects) for volume in synced(volumes)}
    for volume in volumes.values():
        if volume.kind == "hostPath":
            continue
        if not volume.path.exists():
            volume.path.mkdir(parents=True)
            if volume.kind in _WORLD_WRITABLE:
                os.chmod(volume.path, 0o777)
        if volume.name in payloads:
            write_payload(volume.path, payloads[volume.name])


def remove_pod_dirs(layout: PodLayout) -> None:
    """Remove a pod's per-pod directories (emptyDir, secrets, home); its logs and PVCs stay."""
    for path in (layout.volumes_dir, layout.home_dir, layout.etc_dir):
        shutil.rmtree(path, ignore_errors=True)
