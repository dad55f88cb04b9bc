"""A container spec as a local process: command, environment, working directory (process mode).

A process sees the machine's filesystem (through its own mount namespace when the kubelet
isolates pods), so the translation rewrites what the container would have seen:

- mount paths (in env values, args and ``workingDir``) become the volumes' local directories;
- for a pod on the host's network (no namespace of its own), bind-all addresses (``0.0.0.0``,
  ``::``, ``*``) become the pod's own loopback IP, so many pods can listen on the same port;
- ``terminationMessagePath`` (default ``/dev/termination-log``) is a per-container file the
  kubelet reads when the container exits, as Kubernetes mounts one there (status.py);
- ``HOME`` is the local directory of the volume mounted at the container's home (env ``HOME``,
  else ``/home/jovyan``), or a per-pod directory;
- ``PATH`` starts with the directory of the running Python (so the platform's virtualenv provides
  ``jupyterhub-singleuser``, ``jupyter-lab``, ...), then the container's own ``PATH``, then the host's.

The image and ``resources`` are ignored; the user, groups and capabilities of
``securityContext`` are applied by isolation.py (as root) or not at all (then processes run as
the kubelet's user).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .volumes import (
    ContainerConfigError,
    ObjectData,
    PodLayout,
    Volume,
    checked_name,
    checked_relative,
)

DEFAULT_HOME = "/home/jovyan"
TERMINATION_MESSAGE_PATH = "/dev/termination-log"
# Host variables a process may need that a container image would normally set.
_HOST_ENV_PASSTHROUGH = ("LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR")
_ENV_NAME_RE = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_EXPAND_RE = re.compile(r"\$\$|\$\(([-._a-zA-Z][-._a-zA-Z0-9]*)\)")
_ALL_V4_RE = re.compile(r"(?<![\d.])0\.0\.0\.0(?![\d.])")
_OPTION_ALL_RE = re.compile(r"^(-{1,2}[\w.-]+=)(\*|::)$")
# A path inside a string starts at its beginning or after one of these, and ends at one of these.
_PATH_START = r"(?:^|(?<=[\s=:,;\"'(]))"
_PATH_END = r"(?=$|[/\s:,;\"')])"


@dataclass(frozen=True)
class Mount:
    """A container path and the local path standing in for it."""

    mount_path: str
    local: Path
    #: a subPath directory the kubelet creates, as Kubernetes does
    create: bool = False
    read_only: bool = False


@dataclass(frozen=True)
class ProcessSpec:
    """Everything needed to start one container as a :class:`procs.ManagedProcess`."""

    name: str
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    log_path: Path
    #: the local file behind the container's terminationMessagePath (created before it starts)
    termination_log: Path | None = None
    #: directories that must exist before the process starts (HOME, cwd, subPath directories)
    make_dirs: tuple[Path, ...] = ()
    mounts: tuple[Mount, ...] = ()


def all_containers(pod: Mapping) -> list[Mapping]:
    spec = pod.get("spec", {})
    return list(spec.get("initContainers") or []) + list(spec.get("containers") or [])


def referenced_objects(pod: Mapping) -> set[tuple[str, str]]:
    """The (kind, name) of every Secret/ConfigMap the pod's env and volumes read."""
    refs: set[tuple[str, str]] = set()
    for container in all_containers(pod):
        for item in container.get("env") or []:
            source = item.get("valueFrom") or {}
            if "secretKeyRef" in source:
                refs.add(("secrets", source["secretKeyRef"].get("name", "")))
            if "configMapKeyRef" in source:
                refs.add(("configmaps", source["configMapKeyRef"].get("name", "")))
        for item in container.get("envFrom") or []:
            if "secretRef" in item:
                refs.add(("secrets", item["secretRef"].get("name", "")))
            if "configMapRef" in item:
                refs.add(("configmaps", item["configMapRef"].get("name", "")))
    for volume in pod.get("spec", {}).get("volumes") or []:
        if "secret" in volume:
            refs.add(("secrets", volume["secret"].get("secretName", "")))
        if "configMap" in volume:
            refs.add(("configmaps", volume["configMap"].get("name", "")))
    return refs


def container_mounts(container: Mapping, volumes: Mapping[str, Volume]) -> list[Mount]:
    """The container's mounts, longest mount path first (so nested mounts win), with subPath."""
    mounts = []
    for item in container.get("volumeMounts") or []:
        volume = volumes.get(item.get("name"))
        if volume is None:
            raise ContainerConfigError(
                "CreateContainerConfigError",
                f"container {container.get('name')!r}: volumeMount {item.get('name')!r} "
                "names no volume of the pod",
            )
        local, create = volume.path, False
        if item.get("subPath"):
            local = local / checked_relative(item["subPath"], "volumeMounts[].subPath")
            create = volume.kind in ("persistentVolumeClaim", "emptyDir", "other")
        mount_path = str(PurePosixPath(str(item.get("mountPath", "/"))))
        read_only = bool(item.get("readOnly")) or volume.kind in ("secret", "configMap")
        mounts.append(Mount(mount_path=mount_path, local=local, create=create, read_only=read_only))
    return sorted(mounts, key=lambda m: len(m.mount_path), reverse=True)


def map_path(path: str, mounts: Sequence[Mount]) -> Path | None:
    """The local path of container path ``path``, or None when no mount covers it."""
    for mount in mounts:
        if mount.mount_path == "/":
            continue
        if path == mount.mount_path or path.startswith(mount.mount_path + "/"):
            rest = path[len(mount.mount_path) :].lstrip("/")
            return mount.local / rest if rest else mount.local
    return None


def rewrite_paths(value: str, mounts: Sequence[Mount]) -> str:
    """Replace every mount path appearing as a path inside ``value`` by its local directory."""
    targets = {m.mount_path: str(m.local) for m in mounts if m.mount_path != "/"}
    if not targets:
        return value
    alternation = "|".join(re.escape(p) for p in targets)  # longest first: mounts are sorted
    pattern = re.compile(f"{_PATH_START}({alternation}){_PATH_END}")
    return pattern.sub(lambda match: targets[match.group(1)], value)


def rewrite_binds(value: str, pod_ip: str, *, whole_value_bind: bool = True) -> str:
    """Replace bind-all addresses in ``value`` by ``pod_ip``.

    ``0.0.0.0`` and ``[::]`` are replaced anywhere; ``::`` and ``*`` only as a whole value (when
    ``whole_value_bind``) or as an option value (``--ip=*``), since elsewhere they mean other things.
    """
    value = _ALL_V4_RE.sub(pod_ip, value).replace("[::]", pod_ip)
    if whole_value_bind and value in ("::", "*"):
        return pod_ip
    return _OPTION_ALL_RE.sub(lambda m: m.group(1) + pod_ip, value)


def expand(value: str, env: Mapping[str, str]) -> str:
    """Kubernetes ``$(VAR)`` expansion: defined variables are substituted, ``$$`` escapes."""

    def substitute(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1), match.group(0))

    return _EXPAND_RE.sub(substitute, value)


def _field_value(pod: Mapping, field_path: str, pod_ip: str, host_ip: str) -> str:
    meta = pod.get("metadata", {})
    simple = {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": pod.get("spec", {}).get("nodeName", ""),
        "spec.serviceAccountName": pod.get("spec", {}).get("serviceAccountName", ""),
        "status.podIP": pod_ip,
        "status.hostIP": host_ip,
    }
    if field_path in simple:
        return simple[field_path]
    match = re.fullmatch(r"metadata\.(labels|annotations)\['([^']+)'\]", field_path)
    if match:
        return (meta.get(match.group(1)) or {}).get(match.group(2), "")
    raise ContainerConfigError(
        "CreateContainerConfigError", f"env fieldRef.fieldPath {field_path!r} is not supported"
    )


def _key_ref(objects: ObjectData, kind: str, ref: Mapping, env_name: str) -> str | None:
    data = objects.get((kind, ref.get("name", "")))
    if data is None or ref.get("key") not in data:
        if ref.get("optional"):
            return None
        what = "secret" if kind == "secrets" else "configmap"
        missing = f'{what} "{ref.get("name")}" not found'
        if data is not None:
            missing = f'couldn\'t find key {ref.get("key")} in {what} "{ref.get("name")}"'
        raise ContainerConfigError("CreateContainerConfigError", f"env {env_name}: {missing}")
    return data[ref["key"]].decode(errors="replace")


def resolve_env(
    pod: Mapping, container: Mapping, objects: ObjectData, pod_ip: str, host_ip: str
) -> dict[str, str]:
    """The container's environment as Kubernetes computes it: envFrom, then env, with $(VAR)."""
    env: dict[str, str] = {}
    for item in container.get("envFrom") or []:
        kind, ref = (
            ("secrets", item.get("secretRef"))
            if "secretRef" in item
            else ("configmaps", item.get("configMapRef") or {})
        )
        data = objects.get((kind, ref.get("name", "")))
        if data is None:
            if ref.get("optional"):
                continue
            what = "secret" if kind == "secrets" else "configmap"
            raise ContainerConfigError(
                "CreateContainerConfigError", f'envFrom: {what} "{ref.get("name")}" not found'
            )
        for key, value in data.items():
            name = item.get("prefix", "") + key
            if _ENV_NAME_RE.match(name):
                env[name] = value.decode(errors="replace")
    for item in container.get("env") or []:
        name = item.get("name", "")
        source = item.get("valueFrom")
        if source is None:
            env[name] = expand(str(item.get("value", "")), env)
            continue
        if "fieldRef" in source:
            value = _field_value(pod, source["fieldRef"].get("fieldPath", ""), pod_ip, host_ip)
        elif "secretKeyRef" in source:
            value = _key_ref(objects, "secrets", source["secretKeyRef"], name)
        elif "configMapKeyRef" in source:
            value = _key_ref(objects, "configmaps", source["configMapKeyRef"], name)
        else:
            raise ContainerConfigError(
                "CreateContainerConfigError",
                f"env {name}: valueFrom {sorted(source)} is not supported in process mode",
            )
        if value is not None:
            env[name] = value
    return env


def _search_path(*parts: str) -> str:
    entries: list[str] = []
    for part in parts:
        for entry in part.split(os.pathsep):
            if entry and entry not in entries:
                entries.append(entry)
    return os.pathsep.join(entries)


def _resolve_executable(argv0: str, mounts: Sequence[Mount], search_path: str) -> str:
    if "/" in argv0:
        candidate = str(map_path(argv0, mounts) or argv0)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
        raise ContainerConfigError(
            "ContainerCannotRun", f'exec: "{argv0}": stat {argv0}: no such file or executable'
        )
    found = shutil.which(argv0, path=search_path)
    if found is None:
        raise ContainerConfigError(
            "ContainerCannotRun", f'exec: "{argv0}": executable file not found in $PATH'
        )
    return found


def _rewrite_args(args: Sequence[str], mounts: Sequence[Mount], bind_ip: str | None) -> list[str]:
    rewritten = []
    for i, arg in enumerate(args):
        if bind_ip is not None:
            after_option = i > 0 and args[i - 1].startswith("-")
            arg = rewrite_binds(arg, bind_ip, whole_value_bind=after_option or arg == "::")
        rewritten.append(rewrite_paths(arg, mounts))
    return rewritten


def build_process_spec(
    pod: Mapping,
    container: Mapping,
    *,
    layout: PodLayout,
    volumes: Mapping[str, Volume],
    objects: ObjectData,
    pod_ip: str,
    host_ip: str,
    bin_dir: str,
    host_env: Mapping[str, str],
    own_network: bool = False,
) -> ProcessSpec:
    """The local process for ``container`` of ``pod``; :class:`ContainerConfigError` if impossible.

    ``own_network``: the pod has its own network namespace, where 0.0.0.0 already means the
    pod's addresses, so bind addresses are left as they are.
    """
    name = checked_name(container.get("name"), "container name")
    termination = Mount(
        mount_path=str(
            PurePosixPath(container.get("terminationMessagePath") or TERMINATION_MESSAGE_PATH)
        ),
        local=layout.termination_log(name),
    )
    mounts = sorted(
        [*container_mounts(container, volumes), termination],
        key=lambda m: len(m.mount_path),
        reverse=True,
    )
    env = resolve_env(pod, container, objects, pod_ip, host_ip)
    home = map_path(env.get("HOME") or DEFAULT_HOME, mounts) or layout.home_dir
    command = [expand(str(a), env) for a in container.get("command") or []]
    args = [expand(str(a), env) for a in container.get("args") or []]
    if not command and (not args or args[0].startswith("-")):
        # with a command, or args alone naming a program (an image without ENTRYPOINT), it runs
        raise ContainerConfigError(
            "ContainerCannotRun",
            f"container {name!r} has no command; process mode cannot run the entrypoint "
            f"of image {container.get('image')!r}, so set the container's command",
        )
    bind_ip = None if own_network else pod_ip
    argv = _rewrite_args(command + args, mounts, bind_ip)

    final_env = {k: host_env[k] for k in _HOST_ENV_PASSTHROUGH if k in host_env}
    for key, value in env.items():
        value = value if bind_ip is None else rewrite_binds(value, bind_ip)
        final_env[key] = rewrite_paths(value, mounts)
    final_env["HOME"] = str(home)
    final_env.setdefault("HOSTNAME", pod.get("metadata", {}).get("name", ""))
    final_env["PATH"] = _search_path(bin_dir, final_env.get("PATH", ""), host_env.get("PATH", ""))
    argv[0] = _resolve_executable(argv[0], mounts, final_env["PATH"])

    cwd = home
    working_dir = container.get("workingDir")
    if working_dir:
        mapped = map_path(working_dir, mounts)
        if mapped is not None:
            cwd = mapped
        elif Path(working_dir).is_dir():
            cwd = Path(working_dir)
    make_dirs = (home, cwd, *(m.local for m in mounts if m.create))
    return ProcessSpec(
        name=name,
        argv=argv,
        env=final_env,
        cwd=cwd,
        log_path=layout.log_path(name),
        termination_log=termination.local,
        make_dirs=make_dirs,
        mounts=tuple(mounts),
    )
