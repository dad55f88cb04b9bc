"""Who a container runs as, from the pod's and the container's securityContext (pure).

The rules are the kubelet's: the container's fields override the pod's; without ``runAsUser`` a
container runs as its image's user, and here the image is ignored, so that is root; the primary
group is ``runAsGroup``, else the user's group in this machine's passwd database (the "image"
the processes run from), else 0; ``fsGroup`` and ``supplementalGroups`` are supplementary
groups. ``runAsNonRoot`` refuses a container that would run as root, with the kubelet's error.
Root containers keep only the container runtime's default capabilities unless ``privileged``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from .volumes import ContainerConfigError

#: the capabilities containerd and CRI-O give a container by default
DEFAULT_CAPABILITIES = frozenset({
    "CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID",
    "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE",
})  # fmt: skip


@dataclass(frozen=True)
class Identity:
    """The credentials a container's processes get."""

    uid: int
    gid: int
    groups: tuple[int, ...]
    #: capability names kept in the bounding set; None keeps them all (privileged)
    capabilities: frozenset[str] | None
    no_new_privs: bool


def _capabilities(context: Mapping) -> frozenset[str] | None:
    if context.get("privileged"):
        return None
    spec = context.get("capabilities") or {}
    drop = {str(c).upper().removeprefix("CAP_") for c in spec.get("drop") or []}
    add = {str(c).upper().removeprefix("CAP_") for c in spec.get("add") or []}
    kept = set() if "ALL" in drop else DEFAULT_CAPABILITIES - drop
    return frozenset(kept | (add - {"ALL"}))


def container_identity(
    pod: Mapping,
    container: Mapping,
    primary_gid: Callable[[int], int | None],
) -> Identity:
    """The container's :class:`Identity`; :class:`ContainerConfigError` for a runAsNonRoot breach.

    ``primary_gid(uid)`` looks the user up in the passwd database (None when absent).
    """
    pod_context = pod.get("spec", {}).get("securityContext") or {}
    context = container.get("securityContext") or {}

    def field(name: str):
        return context.get(name, pod_context.get(name))

    uid = field("runAsUser")
    if field("runAsNonRoot"):
        where = _where(pod, container)
        if uid is None:
            raise ContainerConfigError(
                "CreateContainerConfigError",
                f"container has runAsNonRoot and image will run as root ({where})",
            )
        if int(uid) == 0:
            raise ContainerConfigError(
                "CreateContainerConfigError",
                f"container's runAsUser breaks non-root policy ({where})",
            )
    uid = 0 if uid is None else int(uid)
    gid = field("runAsGroup")
    if gid is None:
        gid = primary_gid(uid)
    gid = 0 if gid is None else int(gid)
    groups: list[int] = []
    for extra in [pod_context.get("fsGroup"), *(pod_context.get("supplementalGroups") or [])]:
        if extra is not None and int(extra) != gid and int(extra) not in groups:
            groups.append(int(extra))
    privileged = bool(context.get("privileged"))
    escalation = context.get("allowPrivilegeEscalation")
    return Identity(
        uid=uid,
        gid=gid,
        groups=tuple(groups),
        capabilities=_capabilities(context),
        no_new_privs=escalation is False and not privileged,
    )


def _where(pod: Mapping, container: Mapping) -> str:
    meta = pod.get("metadata", {})
    return (
        f'pod: "{meta.get("name")}_{meta.get("namespace")}({meta.get("uid")})", '
        f"container: {container.get('name')}"
    )


@dataclass(frozen=True)
class FsGroup:
    """The pod's ``fsGroup`` and ``fsGroupChangePolicy`` (Always or OnRootMismatch)."""

    gid: int
    on_root_mismatch: bool


def pod_fs_group(pod: Mapping) -> FsGroup | None:
    context = pod.get("spec", {}).get("securityContext") or {}
    if context.get("fsGroup") is None:
        return None
    policy = context.get("fsGroupChangePolicy") or "Always"
    return FsGroup(int(context["fsGroup"]), on_root_mismatch=policy == "OnRootMismatch")
