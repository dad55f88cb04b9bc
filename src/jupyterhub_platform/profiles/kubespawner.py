"""Offers as KubeSpawner ``profile_list`` entries, so KubeSpawner's own override code builds pods.

List-valued traits (volumes, tolerations, sidecar containers) are *added to* what the chart
configured, by name, rather than replacing it (KubeSpawner replaces lists): a profile must never
drop the home volume or the chart's extra containers. Adding by name keeps a re-used spawner
idempotent. The chart configures volumes and mounts as mappings (KubeSpawner accepts a list or a
mapping whose values it uses); items are added in the form the trait already has.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from .access import Offer, default_offer
from .model import (
    IMAGE_OPTION,
    SIZE_OPTION,
    Profile,
    Resources,
    Sidecar,
    Size,
)
from .schema import as_plain

LABEL_PROFILE = "jupyterhub-platform/profile"
LABEL_KIND = "jupyterhub-platform/kind"
ANNOTATION_CULLING = "jupyterhub-platform/culling-policy"
ANNOTATION_CREDENTIALS = "jupyterhub-platform/credential-sets"
ANNOTATION_START = "jupyterhub-platform/start-id"
"""A new id per pod the spawner creates: tells its pod from an earlier one of the same name."""

KIND_DEFAULT_URL = {
    "jupyterlab": "/lab",
    "vscode": "/vscode/",
    "streamlit": "/streamlit/",
    "desktop": "/desktop/",
}
OVERRIDDEN_TRAITS = (
    "image", "cmd", "args", "default_url", "environment", "extra_labels", "extra_annotations",
    "node_selector", "tolerations", "volumes", "volume_mounts", "extra_containers",
    "init_containers", "cpu_guarantee", "cpu_limit", "mem_guarantee", "mem_limit",
    "extra_resource_guarantees", "extra_resource_limits",
)  # fmt: skip
"""Every trait a profile may change; the spawner restores them before applying a new profile."""


class _Override:
    """A callable override value. Immutable, so KubeSpawner's deep copy of profile_list keeps it."""

    def __deepcopy__(self, memo) -> _Override:
        return self


@dataclass(frozen=True)
class AddByName(_Override):
    """Override value: the trait's current list plus ``items``, same-named entries replaced."""

    trait: str
    items: tuple[dict, ...]

    def __call__(self, spawner) -> list | dict:
        return _add(getattr(spawner, self.trait), copy.deepcopy(list(self.items)))


@dataclass(frozen=True)
class AddTolerations(_Override):
    items: tuple[dict, ...]

    def __call__(self, spawner) -> list:
        current = list(spawner.tolerations)
        return current + [copy.deepcopy(t) for t in self.items if t not in current]


@dataclass(frozen=True)
class Command(_Override):
    """The profile's command with ``{base_url}`` (the server's URL prefix) filled in."""

    template: tuple[str, ...]

    def __call__(self, spawner) -> list[str]:
        base_url = spawner.server.base_url if spawner.server else spawner.user.url
        return [part.replace("{base_url}", base_url) for part in self.template]


@dataclass(frozen=True)
class SidecarContainers(_Override):
    """The profile's sidecars for one trait: ``extra_containers`` (``on_exit: stop_server``) or,
    after the chart's own, ``init_containers`` (``on_exit: restart``: Kubernetes' native
    sidecars, ``restartPolicy: Always``). Each shares the notebook's home mount and security
    settings, and mounts the profile volumes it lists at the notebook's paths."""

    trait: str
    sidecars: tuple[Sidecar, ...]
    #: the profile's volume mounts by volume name
    mounts: tuple[tuple[str, dict], ...] = ()

    def __call__(self, spawner) -> list | dict:
        home = [
            m
            for m in _entries(spawner.volume_mounts)
            if m.get("mountPath") == spawner.home_mount_path
        ]
        shared = dict(self.mounts)
        containers = [
            sidecar_container(
                s, _security_context(spawner), home + [copy.deepcopy(shared[n]) for n in s.volumes]
            )
            for s in self.sidecars
        ]
        return _add(getattr(spawner, self.trait), containers)


def _entries(current: list | dict) -> list:
    """The items of a KubeSpawner list-or-mapping trait (for a mapping, its values)."""
    return list(current.values()) if isinstance(current, dict) else list(current)


def _add(current: list | dict, items: list[dict]) -> list | dict:
    """``current`` plus ``items``, same-named entries replaced; a mapping stays a mapping.

    A mapping comes back with only the added items (KubeSpawner merges a mapping override
    into the trait), keyed by name like the chart's own entries.
    """
    if isinstance(current, dict):
        return {i["name"]: i for i in items}
    names = {i["name"] for i in items}
    return [c for c in current if _name(c) not in names] + items


def _name(item: Any) -> str | None:
    """An entry's name: the traits hold dicts or kubernetes models (the stock chart's
    ``block-cloud-metadata`` init container is a ``V1Container``)."""
    return item.get("name") if isinstance(item, dict) else getattr(item, "name", None)


def _security_context(spawner) -> dict:
    csc = spawner.container_security_context
    context = dict(csc) if isinstance(csc, dict) else {}
    for key, value in (("runAsUser", spawner.uid), ("runAsGroup", spawner.gid)):
        if isinstance(value, int):
            context.setdefault(key, value)
    return context


def resources_manifest(res: Resources) -> dict:
    return {
        "requests": {"cpu": _cpu(res.cpu_request), "memory": str(res.mem_request)},
        "limits": {"cpu": _cpu(res.cpu_limit), "memory": str(res.mem_limit)},
    }


def _cpu(cores: float) -> str:
    return f"{round(cores * 1000)}m"


def sidecar_container(sidecar: Sidecar, security_context: dict, mounts: list[dict]) -> dict:
    container: dict[str, Any] = {
        "name": sidecar.name,
        "image": sidecar.image,
        "resources": resources_manifest(sidecar.resources),
        "securityContext": security_context,
        "volumeMounts": [{k: v for k, v in m.items() if v is not None} for m in mounts],
    }
    if sidecar.command:
        container["command"] = list(sidecar.command)
    if sidecar.args:
        container["args"] = list(sidecar.args)
    if sidecar.env:
        container["env"] = [{"name": k, "value": v} for k, v in sidecar.env.items()]
    if sidecar.ports:
        container["ports"] = [{"containerPort": p} for p in sidecar.ports]
    if sidecar.readiness_probe:
        container["readinessProbe"] = as_plain(sidecar.readiness_probe)
    if sidecar.on_exit == "restart":
        container["restartPolicy"] = "Always"
    return container


def profile_overrides(profile: Profile) -> dict[str, Any]:
    annotations = {}
    if profile.culling_policy:
        annotations[ANNOTATION_CULLING] = profile.culling_policy
    if profile.credential_sets:
        annotations[ANNOTATION_CREDENTIALS] = ",".join(profile.credential_sets)
    mounts = tuple((v.name, _mount(v)) for v in profile.volumes)
    overrides: dict[str, Any] = {
        "extra_labels": {LABEL_PROFILE: profile.slug, LABEL_KIND: profile.kind},
        "extra_annotations": annotations,
        "environment": dict(profile.env),
        "node_selector": dict(profile.node_selector),
        "tolerations": AddTolerations(as_plain(profile.tolerations)),
        "volumes": AddByName("volumes", tuple(_volume(v) for v in profile.volumes)),
        "volume_mounts": AddByName("volume_mounts", tuple(_mount(v) for v in profile.volumes)),
        "extra_containers": SidecarContainers(
            "extra_containers", tuple(s for s in profile.sidecars if s.on_exit != "restart"), mounts
        ),
        "init_containers": SidecarContainers(
            "init_containers", tuple(s for s in profile.sidecars if s.on_exit == "restart"), mounts
        ),
    }
    default_url = profile.default_url or KIND_DEFAULT_URL.get(profile.kind)
    if default_url:
        overrides["default_url"] = default_url
    if profile.command:
        overrides["cmd"] = Command(profile.command)
        overrides["args"] = []
    return overrides


def _volume(v) -> dict:
    if v.pvc:
        return {
            "name": v.name,
            "persistentVolumeClaim": {"claimName": v.pvc, "readOnly": v.read_only},
        }
    return {"name": v.name, "emptyDir": {}}


def _mount(v) -> dict:
    mount = {"name": v.name, "mountPath": v.mount_path, "readOnly": v.read_only}
    if v.sub_path:
        mount["subPath"] = v.sub_path
    return mount


def size_overrides(size: Size) -> dict[str, Any]:
    res = size.resources
    overrides: dict[str, Any] = {
        "cpu_guarantee": res.cpu_request,
        "cpu_limit": res.cpu_limit,
        "mem_guarantee": res.mem_request,
        "mem_limit": res.mem_limit,
    }
    if size.gpu:
        gpu = {size.gpu.resource_name: str(size.gpu.count)}
        overrides["extra_resource_guarantees"] = gpu
        overrides["extra_resource_limits"] = gpu
        overrides["node_selector"] = dict(size.gpu.node_selector)
        overrides["tolerations"] = AddTolerations(as_plain(size.gpu.tolerations))
    return overrides


def profile_list_entry(offer: Offer, default: bool = False) -> dict[str, Any]:
    """One KubeSpawner ``profile_list`` item holding only what this user may pick."""
    profile = offer.profile
    default_image, default_size = offer.default_image(), offer.default_size()
    image_option: dict[str, Any] = {
        "display_name": "Image",
        "choices": {
            c.key: {
                "display_name": c.display_name,
                "default": c is default_image,
                "kubespawner_override": {"image": c.image},
            }
            for c in offer.images
        },
    }
    if offer.custom_image is not None:
        image_option["unlisted_choice"] = {
            "enabled": True,
            "display_name": offer.custom_image.display_name,
            # KubeSpawner only anchors at the start; ours is checked with fullmatch before this.
            "validation_regex": rf"\A(?:{offer.custom_image.pattern.pattern})\Z",
            "kubespawner_override": {"image": "{value}"},
        }
    return {
        "slug": profile.slug,
        "display_name": profile.display_name,
        "description": profile.description,
        "default": default,
        "kubespawner_override": profile_overrides(profile),
        "profile_options": {
            IMAGE_OPTION: image_option,
            SIZE_OPTION: {
                "display_name": "Size",
                "choices": {
                    s.key: {
                        "display_name": s.display_name,
                        "default": s is default_size,
                        "kubespawner_override": size_overrides(s),
                    }
                    for s in offer.sizes
                },
            },
        },
    }


def kubespawner_profile_list(available: tuple[Offer, ...]) -> list[dict[str, Any]]:
    """The whole ``profile_list`` for one user, their default profile marked."""
    default = default_offer(available)
    return [profile_list_entry(o, default=o is default) for o in available]
