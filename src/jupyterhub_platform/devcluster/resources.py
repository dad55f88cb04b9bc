"""The catalogue of resource types the emulator serves, and how request paths map onto them.

One table drives routing, discovery documents, field-selector support and validation lookup, so
adding a resource type is a one-line change.
"""

from __future__ import annotations

from dataclasses import dataclass, field

COMMON_FIELD_LABELS = frozenset({"metadata.name", "metadata.namespace"})
VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True, eq=False)  # one instance per type: identity is equality
class ResourceType:
    group: str
    version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    has_status: bool = True
    # Field-selector labels beyond metadata.name/namespace; maps label -> dotted object path.
    field_labels: dict[str, str] = field(default_factory=dict)
    # The real server orphans a Job's pods unless the client asks otherwise.
    default_propagation: str = "Background"

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def qualified(self) -> str:
        """``pods`` or ``jobs.batch``: the name used in Status ``details`` and messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def field_path(self, label: str) -> str | None:
        if label in COMMON_FIELD_LABELS:
            return label
        return self.field_labels.get(label)


def _same(*labels: str) -> dict[str, str]:
    return {label: label for label in labels}


RESOURCE_TYPES: tuple[ResourceType, ...] = (
    ResourceType(
        "",
        "v1",
        "pods",
        "pod",
        "Pod",
        True,
        ("po",),
        field_labels=_same(
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ),
    ),
    ResourceType(
        "",
        "v1",
        "persistentvolumeclaims",
        "persistentvolumeclaim",
        "PersistentVolumeClaim",
        True,
        ("pvc",),
    ),
    ResourceType(
        "", "v1", "secrets", "secret", "Secret", True, has_status=False, field_labels=_same("type")
    ),
    ResourceType("", "v1", "services", "service", "Service", True, ("svc",)),
    ResourceType(
        "",
        "v1",
        "events",
        "event",
        "Event",
        True,
        ("ev",),
        has_status=False,
        field_labels={
            **_same(
                "involvedObject.kind",
                "involvedObject.namespace",
                "involvedObject.name",
                "involvedObject.uid",
                "involvedObject.apiVersion",
                "involvedObject.resourceVersion",
                "involvedObject.fieldPath",
                "reason",
                "reportingComponent",
                "type",
            ),
            "source": "source.component",
        },
    ),
    ResourceType("", "v1", "configmaps", "configmap", "ConfigMap", True, ("cm",), has_status=False),
    ResourceType(
        "",
        "v1",
        "serviceaccounts",
        "serviceaccount",
        "ServiceAccount",
        True,
        ("sa",),
        has_status=False,
    ),
    ResourceType("", "v1", "endpoints", "endpoints", "Endpoints", True, ("ep",), has_status=False),
    ResourceType(
        "",
        "v1",
        "namespaces",
        "namespace",
        "Namespace",
        False,
        ("ns",),
        field_labels=_same("status.phase"),
    ),
    ResourceType(
        "", "v1", "nodes", "node", "Node", False, ("no",), field_labels=_same("spec.unschedulable")
    ),
    ResourceType(
        "batch",
        "v1",
        "jobs",
        "job",
        "Job",
        True,
        field_labels=_same("status.successful"),
        default_propagation="Orphan",
    ),
    ResourceType(
        "snapshot.storage.k8s.io",
        "v1",
        "volumesnapshots",
        "volumesnapshot",
        "VolumeSnapshot",
        True,
        ("vs",),
    ),
    ResourceType(
        "snapshot.storage.k8s.io",
        "v1",
        "volumesnapshotcontents",
        "volumesnapshotcontent",
        "VolumeSnapshotContent",
        False,
        ("vsc", "vscs"),
    ),
    ResourceType(
        "snapshot.storage.k8s.io",
        "v1",
        "volumesnapshotclasses",
        "volumesnapshotclass",
        "VolumeSnapshotClass",
        False,
        ("vsclass", "vsclasses"),
        has_status=False,
    ),
    ResourceType(
        "networking.k8s.io",
        "v1",
        "networkpolicies",
        "networkpolicy",
        "NetworkPolicy",
        True,
        ("netpol",),
        has_status=False,
    ),
)

_BY_PATH = {(r.group, r.version, r.plural): r for r in RESOURCE_TYPES}
_BY_KIND = {(r.api_version, r.kind): r for r in RESOURCE_TYPES}

POD = _BY_PATH[("", "v1", "pods")]
EVENT = _BY_PATH[("", "v1", "events")]
NAMESPACE = _BY_PATH[("", "v1", "namespaces")]
NODE = _BY_PATH[("", "v1", "nodes")]
JOB = _BY_PATH[("batch", "v1", "jobs")]
SERVICE = _BY_PATH[("", "v1", "services")]
PVC = _BY_PATH[("", "v1", "persistentvolumeclaims")]
VOLUME_SNAPSHOT = _BY_PATH[("snapshot.storage.k8s.io", "v1", "volumesnapshots")]
SNAPSHOT_CONTENT = _BY_PATH[("snapshot.storage.k8s.io", "v1", "volumesnapshotcontents")]
SNAPSHOT_CLASS = _BY_PATH[("snapshot.storage.k8s.io", "v1", "volumesnapshotclasses")]


def lookup(group: str, version: str, plural: str) -> ResourceType | None:
    return _BY_PATH.get((group, version, plural))


def by_kind(api_version: str, kind: str) -> ResourceType | None:
    return _BY_KIND.get((api_version, kind))


def group_versions() -> dict[str, list[str]]:
    """Named API groups (not the core group) and their versions, in catalogue order."""
    groups: dict[str, list[str]] = {}
    for rtype in RESOURCE_TYPES:
        if rtype.group and rtype.version not in groups.setdefault(rtype.group, []):
            groups[rtype.group].append(rtype.version)
    return groups


def in_group_version(group: str, version: str) -> list[ResourceType]:
    return [r for r in RESOURCE_TYPES if (r.group, r.version) == (group, version)]


@dataclass(frozen=True)
class Target:
    """What a resource request path addresses."""

    rtype: ResourceType
    namespace: str | None
    name: str | None
    subresource: str | None


class UnknownPath(LookupError):
    """The path names no resource type this server serves."""


NAMESPACE_SUBRESOURCES = frozenset({"status", "finalize"})


def parse_target(group: str, version: str, segments: list[str]) -> Target:
    """Resolve the segments after ``/api/v1`` or ``/apis/{group}/{version}``.

    ``namespaces/{ns}/{plural}[/{name}[/{sub}]]`` addresses namespaced objects; anything else is
    ``{plural}[/{name}[/{sub}]]`` (cluster-scoped objects, or a namespaced type across all
    namespaces). ``namespaces/{name}/status`` is the namespace's own subresource.
    """
    namespace = None
    rest = segments
    if (
        len(segments) >= 3
        and segments[0] == "namespaces"
        and segments[2] not in NAMESPACE_SUBRESOURCES
    ):
        namespace, rest = segments[1], segments[2:]
    if not rest or len(rest) > 3 or any(not part for part in rest):
        raise UnknownPath("/".join(segments))
    rtype = lookup(group, version, rest[0])
    if rtype is None:
        raise UnknownPath("/".join(segments))
    name = rest[1] if len(rest) > 1 else None
    sub = rest[2] if len(rest) > 2 else None
    if namespace is not None and not rtype.namespaced:
        raise UnknownPath("/".join(segments))
    if rtype.namespaced and namespace is None and name is not None:
        raise UnknownPath("/".join(segments))
    return Target(rtype, namespace, name, sub)
