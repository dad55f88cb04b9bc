"""The in-memory form of a profile: immutable values, already validated by :mod:`.schema`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

KINDS = ("jupyterlab", "vscode", "streamlit", "desktop", "custom")

IMAGE_OPTION = "image"
SIZE_OPTION = "size"
CUSTOM_CHOICE = "custom"
"""Choice key standing for a user-supplied image, in entitlements and on the form."""
UNLISTED_SUFFIX = "--unlisted-choice"
"""KubeSpawner's user_options key suffix carrying a free-form value."""

Groups = frozenset[str] | None  # None: open to anyone entitled to the enclosing thing


def _frozen_map() -> Mapping:
    return MappingProxyType({})


@dataclass(frozen=True)
class Resources:
    """Requests and limits, always both (CPU in cores, memory in bytes)."""

    cpu_request: float
    cpu_limit: float
    mem_request: int
    mem_limit: int


@dataclass(frozen=True)
class Gpu:
    count: int
    resource_name: str
    node_selector: Mapping[str, str] = field(default_factory=_frozen_map)
    tolerations: tuple[Mapping[str, object], ...] = ()


@dataclass(frozen=True)
class Size:
    key: str
    display_name: str
    description: str
    resources: Resources
    gpu: Gpu | None = None
    default: bool = False
    allowed_groups: Groups = None


@dataclass(frozen=True)
class ImageChoice:
    key: str
    display_name: str
    description: str
    image: str
    default: bool = False
    allowed_groups: Groups = None


@dataclass(frozen=True)
class CustomImage:
    """A user-supplied image, accepted only if it matches ``pattern`` in full."""

    display_name: str
    pattern: re.Pattern[str]
    allowed_groups: Groups = None

    def accepts(self, value: str) -> bool:
        return self.pattern.fullmatch(value) is not None


@dataclass(frozen=True)
class Volume:
    """A PVC (e.g. shared read-only data) or an emptyDir mounted into the notebook container."""

    name: str
    mount_path: str
    pvc: str | None = None
    read_only: bool = False
    sub_path: str | None = None


@dataclass(frozen=True)
class Sidecar:
    name: str
    image: str
    resources: Resources
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=_frozen_map)
    ports: tuple[int, ...] = ()
    readiness_probe: Mapping[str, object] | None = None
    #: what the spawn page calls it (default: its name)
    display_name: str = ""
    #: names of the profile's volumes it mounts too, at the same paths (besides the home)
    volumes: tuple[str, ...] = ()
    #: ``restart`` (a native sidecar the kubelet restarts) or ``stop_server``
    on_exit: str = "stop_server"

    @property
    def label(self) -> str:
        return self.display_name or self.name


@dataclass(frozen=True)
class Profile:
    slug: str
    display_name: str
    kind: str
    images: tuple[ImageChoice, ...]
    sizes: tuple[Size, ...]
    source: str
    description: str = ""
    order: int = 100
    default: bool = False
    allowed_groups: Groups = None
    custom_image: CustomImage | None = None
    node_selector: Mapping[str, str] = field(default_factory=_frozen_map)
    tolerations: tuple[Mapping[str, object], ...] = ()
    env: Mapping[str, str] = field(default_factory=_frozen_map)
    volumes: tuple[Volume, ...] = ()
    sidecars: tuple[Sidecar, ...] = ()
    default_url: str | None = None
    command: tuple[str, ...] | None = None
    culling_policy: str | None = None
    credential_sets: tuple[str, ...] = ()
    lines: Mapping[str, int] = field(default_factory=_frozen_map, compare=False)
    """Line of each top-level field in ``source``, for errors found across files."""
