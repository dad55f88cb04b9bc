"""The profile file schema: turn one parsed YAML document into a :class:`~.model.Profile`.

Every problem is collected with its file, line and field, so an admin sees all mistakes of a file
at once. Unknown fields are errors: a typo must never silently drop a restriction.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from .errors import ProfileError, ProfileLoadError
from .model import (
    CUSTOM_CHOICE,
    KINDS,
    CustomImage,
    Gpu,
    ImageChoice,
    Profile,
    Resources,
    Sidecar,
    Size,
    Volume,
)
from .yamlfile import FieldPath, LocatedData

SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
IMAGE_REF = re.compile(r"[a-z0-9][a-z0-9._/:@-]{0,254}", re.IGNORECASE | re.ASCII)
LABEL_KEY = re.compile(
    r"([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
)
LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?")
CPU = re.compile(r"([0-9]+(?:\.[0-9]+)?)(m?)")
MEMORY = re.compile(r"([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?")
MEMORY_UNITS = {
    None: 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
}  # fmt: skip
# Fields KubeSpawner fills into env values, volumes and extra containers (str.format).
KUBESPAWNER_FIELDS = frozenset(
    {
        "userid", "unescaped_username", "unescaped_servername", "hubnamespace", "username",
        "servername", "user_server", "safe_username", "safe_servername", "safe_user_server",
        "escaped_username", "escaped_servername", "escaped_user_server", "pod_name", "pvc_name",
        "namespace",
    }
)  # fmt: skip
TOLERATION_KEYS = ("key", "operator", "value", "effect", "tolerationSeconds")
DEFAULT_GPU_RESOURCE = "nvidia.com/gpu"

PROFILE_FIELDS = {
    "slug", "display_name", "description", "kind", "order", "default", "allowed_groups",
    "image", "resources", "node_selector", "tolerations", "env", "volumes", "sidecars",
    "default_url", "command", "culling_policy", "credential_sets",
}  # fmt: skip


def parse_profile(doc: LocatedData) -> Profile:
    """Validate ``doc`` against the schema; :class:`ProfileLoadError` lists every problem."""
    r = _Reader(doc)
    profile = r.profile()
    if r.errors or profile is None:
        raise ProfileLoadError(r.errors)
    return profile


class _Reader:
    """Typed accessors over a :class:`LocatedData` that record errors instead of raising."""

    def __init__(self, doc: LocatedData):
        self.doc = doc
        self.errors: list[ProfileError] = []

    def fail(self, path: FieldPath, reason: str) -> None:
        self.errors.append(self.doc.error(path, reason))

    # -- generic values -------------------------------------------------------------------
    def mapping(self, value: Any, path: FieldPath, allowed, required=()) -> dict | None:
        if not isinstance(value, dict):
            self.fail(path, f"must be a mapping, got {_kind(value)}")
            return None
        for key in value:
            if key not in allowed:
                self.fail(path + (key,), f"unknown field (allowed: {', '.join(sorted(allowed))})")
        for key in required:
            if key not in value:
                self.fail(path + (key,), "required field is missing")
        return value

    def get(self, m: dict, path: FieldPath, key: str, check: Callable, default=None):
        """``m[key]`` run through ``check(value, path)``; ``default`` when absent or invalid."""
        if key not in m:
            return default
        result = check(m[key], path + (key,))
        return default if result is _INVALID else result

    def string(self, value: Any, path: FieldPath, pattern: re.Pattern | None = None, what=""):
        if not isinstance(value, str) or not value.strip():
            self.fail(path, f"must be a non-empty string, got {_kind(value)}")
            return _INVALID
        if pattern is not None and not pattern.fullmatch(value):
            self.fail(path, f"{value!r} is not a valid {what or 'value'}")
            return _INVALID
        return value

    def text(self, value: Any, path: FieldPath):
        if not isinstance(value, str):
            self.fail(path, f"must be a string, got {_kind(value)}")
            return _INVALID
        return value.strip()

    def slug(self, value: Any, path: FieldPath):
        return self.string(value, path, SLUG, "slug (lowercase letters, digits and '-', max 63)")

    def boolean(self, value: Any, path: FieldPath):
        if not isinstance(value, bool):
            self.fail(path, f"must be true or false, got {_kind(value)}")
            return _INVALID
        return value

    def integer(self, value: Any, path: FieldPath, minimum: int = 0):
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            self.fail(path, f"must be an integer >= {minimum}, got {value!r}")
            return _INVALID
        return value

    def strings(self, value: Any, path: FieldPath):
        if not isinstance(value, list):
            self.fail(path, f"must be a list of strings, got {_kind(value)}")
            return _INVALID
        items = [self.string(v, path + (i,)) for i, v in enumerate(value)]
        return _INVALID if _INVALID in items else tuple(items)

    def groups(self, value: Any, path: FieldPath):
        items = self.strings(value, path)
        return _INVALID if items is _INVALID else frozenset(items)

    def string_map(self, value: Any, path: FieldPath, key_pattern=None, value_pattern=None):
        if not isinstance(value, dict):
            self.fail(path, f"must be a mapping of strings, got {_kind(value)}")
            return _INVALID
        out = {}
        for key, item in value.items():
            if key_pattern is not None and not key_pattern.fullmatch(key):
                self.fail(path + (key,), f"{key!r} is not a valid name")
                continue
            if not isinstance(item, str):
                self.fail(path + (key,), f"must be a string (quote it in YAML), got {_kind(item)}")
                continue
            if value_pattern is not None and not value_pattern.fullmatch(item):
                self.fail(path + (key,), f"{item!r} is not a valid value")
                continue
            out[key] = item
        return MappingProxyType(out)

    def cpu(self, value: Any, path: FieldPath):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            cores = float(value)
        elif isinstance(value, str) and (m := CPU.fullmatch(value.strip())):
            cores = float(m.group(1)) / (1000 if m.group(2) else 1)
        else:
            self.fail(path, f"must be a CPU amount like 2, 0.5 or '500m', got {value!r}")
            return _INVALID
        if cores <= 0:
            self.fail(path, "must be greater than 0")
            return _INVALID
        return cores

    def memory(self, value: Any, path: FieldPath):
        if isinstance(value, int) and not isinstance(value, bool):
            amount = value
        elif isinstance(value, str) and (m := MEMORY.fullmatch(value.strip())):
            amount = int(float(m.group(1)) * MEMORY_UNITS[m.group(2)])
        else:
            self.fail(path, f"must be a memory amount like '8Gi' or '512Mi', got {value!r}")
            return _INVALID
        if amount <= 0:
            self.fail(path, "must be greater than 0")
            return _INVALID
        return amount

    def image(self, value: Any, path: FieldPath):
        return self.string(value, path, IMAGE_REF, "image reference")

    # -- profile parts --------------------------------------------------------------------
    def profile(self) -> Profile | None:
        required = ("slug", "display_name", "kind", "resources")
        top = self.mapping(self.doc.data, (), PROFILE_FIELDS, required)
        if top is None:
            return None
        kind = self.get(top, (), "kind", self.kind)
        images, custom = self.images(top)
        sizes = self.sizes(top)
        values = dict(
            slug=self.get(top, (), "slug", self.slug),
            display_name=self.get(top, (), "display_name", self.string),
            description=self.get(top, (), "description", self.text, ""),
            kind=kind,
            order=self.get(top, (), "order", self.integer, 100),
            default=self.get(top, (), "default", self.boolean, False),
            allowed_groups=self.get(top, (), "allowed_groups", self.groups),
            node_selector=self.get(top, (), "node_selector", self.node_selector, {}),
            tolerations=self.get(top, (), "tolerations", self.tolerations, ()),
            env=self.get(top, (), "env", self.env, {}),
            volumes=self.get(top, (), "volumes", self.volumes, ()),
            sidecars=self.get(top, (), "sidecars", self.sidecars, ()),
            default_url=self.get(top, (), "default_url", self.url_path),
            command=self.get(top, (), "command", self.strings),
            culling_policy=self.get(top, (), "culling_policy", self.string),
            credential_sets=self.get(top, (), "credential_sets", self.strings, ()),
        )
        if self.errors:
            return None
        return Profile(
            images=images,
            custom_image=custom,
            sizes=sizes,
            source=self.doc.file,
            lines=MappingProxyType({k: self.doc.line((k,)) for k in top}),
            node_selector=MappingProxyType(dict(values.pop("node_selector"))),
            env=MappingProxyType(dict(values.pop("env"))),
            **values,
        )

    def kind(self, value: Any, path: FieldPath):
        if value not in KINDS:
            self.fail(path, f"must be one of {', '.join(KINDS)}, got {value!r}")
            return _INVALID
        return value

    def url_path(self, value: Any, path: FieldPath):
        return self.string(value, path, re.compile(r"/[^\s{}]*"), "URL path (starting with '/')")

    def expandable(self, value: Any, path: FieldPath):
        """A string KubeSpawner will ``str.format``: only its placeholders, literal braces doubled."""
        if not isinstance(value, str):
            return value  # the type check reports it
        try:
            fields = {f for _, f, _, _ in string.Formatter().parse(value) if f is not None}
        except ValueError as e:
            self.fail(path, f"unbalanced braces ({e}); write literal braces as {{{{ and }}}}")
            return _INVALID
        unknown = sorted(
            f for f in fields if f.split(".")[0].split("[")[0] not in KUBESPAWNER_FIELDS
        )
        if unknown:
            self.fail(
                path,
                f"unknown placeholder(s) {', '.join('{' + f + '}' for f in unknown)}; "
                "write literal braces as {{ and }}",
            )
            return _INVALID
        return value

    def expandable_strings(self, value: Any, path: FieldPath):
        items = self.strings(value, path)
        if items is _INVALID:
            return _INVALID
        checked = [self.expandable(v, path + (i,)) for i, v in enumerate(items)]
        return _INVALID if _INVALID in checked else items

    def mount_path(self, value: Any, path: FieldPath):
        return self.expandable(self.string(value, path, re.compile(r"/\S*"), "absolute path"), path)

    def sub_path(self, value: Any, path: FieldPath):
        return self.expandable(self.string(value, path), path)

    def choices(self, value: Any, path: FieldPath) -> dict | None:
        """A non-empty mapping of choice key -> choice, keys checked."""
        if not isinstance(value, dict) or not value:
            self.fail(path, f"must be a mapping with at least one choice, got {_kind(value)}")
            return None
        for key in value:
            if key == CUSTOM_CHOICE:
                self.fail(path + (key,), f"{CUSTOM_CHOICE!r} is reserved for the custom image")
            elif not SLUG.fullmatch(key):
                self.fail(path + (key,), f"{key!r} is not a valid choice key (a slug)")
        return value

    def one_default(self, items: tuple, path: FieldPath) -> None:
        if sum(1 for i in items if i.default) > 1:
            self.fail(path, "more than one choice is marked default")

    def images(self, top: dict) -> tuple[tuple[ImageChoice, ...], CustomImage | None]:
        path: FieldPath = ("image",)
        value = top.get("image")
        if value is None:
            self.fail(path, "required field is missing")
            return (), None
        if isinstance(value, str):
            image = self.image(value, path)
            return ((ImageChoice("default", "Default", "", image, True),), None)
        spec = self.mapping(value, path, {"choices", "custom"})
        if spec is None:
            return (), None
        choices: tuple[ImageChoice, ...] = ()
        if "choices" in spec:
            cpath = path + ("choices",)
            raw = self.choices(spec["choices"], cpath)
            if raw:
                choices = tuple(self.image_choice(k, v, cpath + (k,)) for k, v in raw.items())
                self.one_default(choices, cpath)
        custom = self.get(spec, path, "custom", self.custom_image)
        if not choices and custom is None:
            self.fail(path, "needs 'choices' (at least one) or 'custom'")
        return choices, custom

    def image_choice(self, key: str, value: Any, path: FieldPath) -> ImageChoice:
        m = self.mapping(
            value,
            path,
            {"display_name", "description", "image", "default", "allowed_groups"},
            ("image",),
        )
        m = m or {}
        return ImageChoice(
            key=key,
            display_name=self.get(m, path, "display_name", self.string, key),
            description=self.get(m, path, "description", self.text, ""),
            image=self.get(m, path, "image", self.image, ""),
            default=self.get(m, path, "default", self.boolean, False),
            allowed_groups=self.get(m, path, "allowed_groups", self.groups),
        )

    def custom_image(self, value: Any, path: FieldPath):
        m = self.mapping(value, path, {"display_name", "pattern", "allowed_groups"}, ("pattern",))
        if m is None:
            return _INVALID
        pattern = self.get(m, path, "pattern", self.regex)
        if pattern is None:
            return _INVALID
        return CustomImage(
            display_name=self.get(m, path, "display_name", self.string, "Custom image"),
            pattern=pattern,
            allowed_groups=self.get(m, path, "allowed_groups", self.groups),
        )

    def regex(self, value: Any, path: FieldPath):
        text = self.string(value, path)
        if text is _INVALID:
            return _INVALID
        try:
            return re.compile(text)
        except re.error as e:
            self.fail(path, f"is not a valid regular expression: {e}")
            return _INVALID

    def resources(self, value: Any, path: FieldPath):
        m = self.mapping(value, path, {"cpu", "memory"}, ("cpu", "memory"))
        if m is None:
            return _INVALID
        cpu = self.get(m, path, "cpu", self.request_limit(self.cpu))
        memory = self.get(m, path, "memory", self.request_limit(self.memory))
        if cpu is None or memory is None:
            return _INVALID
        return Resources(cpu[0], cpu[1], memory[0], memory[1])

    def request_limit(self, amount: Callable):
        def check(value: Any, path: FieldPath):
            m = self.mapping(value, path, {"request", "limit"}, ("request", "limit"))
            if m is None:
                return _INVALID
            request = self.get(m, path, "request", amount)
            limit = self.get(m, path, "limit", amount)
            if request is None or limit is None:
                return _INVALID
            if request > limit:
                self.fail(path + ("request",), "must not be greater than the limit")
                return _INVALID
            return request, limit

        return check

    def sizes(self, top: dict) -> tuple[Size, ...]:
        path: FieldPath = ("resources",)
        if "resources" not in top:
            return ()  # reported as a missing required field
        spec = self.mapping(top["resources"], path, {"bounds", "choices"}, ("choices",))
        if spec is None:
            return ()
        bounds = self.get(spec, path, "bounds", self.bounds, {})
        cpath = path + ("choices",)
        raw = self.choices(spec.get("choices", {}), cpath)
        if not raw:
            return ()
        sizes = tuple(
            size
            for key, value in raw.items()
            if (size := self.size(key, value, cpath + (key,), bounds)) is not None
        )
        self.one_default(sizes, cpath)
        return sizes

    def bounds(self, value: Any, path: FieldPath):
        m = self.mapping(value, path, {"cpu", "memory", "gpu"})
        if m is None:
            return _INVALID
        return {
            "cpu": self.get(m, path, "cpu", self.cpu),
            "memory": self.get(m, path, "memory", self.memory),
            "gpu": self.get(m, path, "gpu", self.integer),
        }

    def size(self, key: str, value: Any, path: FieldPath, bounds: dict) -> Size | None:
        fields = {"display_name", "description", "cpu", "memory", "gpu", "default"}
        m = self.mapping(value, path, fields | {"allowed_groups"}, ("cpu", "memory"))
        if m is None:
            return None
        res = self.resources({k: m[k] for k in ("cpu", "memory") if k in m}, path)
        gpu = self.get(m, path, "gpu", self.gpu)
        if res is _INVALID:
            return None
        limits = {"cpu": res.cpu_limit, "memory": res.mem_limit, "gpu": gpu.count if gpu else 0}
        for name, limit in limits.items():
            bound = bounds.get(name)
            if bound is not None and limit > bound:
                self.fail(path + (name,), f"limit exceeds resources.bounds.{name}")
        return Size(
            key=key,
            display_name=self.get(m, path, "display_name", self.string, key),
            description=self.get(m, path, "description", self.text, ""),
            resources=res,
            gpu=gpu,
            default=self.get(m, path, "default", self.boolean, False),
            allowed_groups=self.get(m, path, "allowed_groups", self.groups),
        )

    def gpu(self, value: Any, path: FieldPath):
        m = self.mapping(
            value, path, {"count", "resource_name", "node_selector", "tolerations"}, ("count",)
        )
        if m is None:
            return _INVALID
        name = self.get(m, path, "resource_name", self.label_key, DEFAULT_GPU_RESOURCE)
        return Gpu(
            count=self.get(m, path, "count", lambda v, p: self.integer(v, p, 1), 1),
            resource_name=name,
            node_selector=self.get(m, path, "node_selector", self.node_selector, {}),
            tolerations=self.get(m, path, "tolerations", self.tolerations, ()),
        )

    def label_key(self, value: Any, path: FieldPath):
        return self.string(value, path, LABEL_KEY, "Kubernetes resource or label name")

    def node_selector(self, value: Any, path: FieldPath):
        return self.string_map(value, path, LABEL_KEY, LABEL_VALUE)

    def tolerations(self, value: Any, path: FieldPath):
        if not isinstance(value, list):
            self.fail(path, f"must be a list of tolerations, got {_kind(value)}")
            return _INVALID
        out = []
        for i, item in enumerate(value):
            m = self.mapping(item, path + (i,), set(TOLERATION_KEYS))
            if m is None:
                continue
            checks = dict.fromkeys(TOLERATION_KEYS[:4], self.string)
            checks["tolerationSeconds"] = self.integer
            tol = {key: self.get(m, path + (i,), key, check) for key, check in checks.items()}
            tol = {key: v for key, v in tol.items() if v is not None}
            out.append(MappingProxyType(tol))
        return tuple(out)

    def env(self, value: Any, path: FieldPath):
        env = self.string_map(value, path, ENV_NAME)
        if env is not _INVALID:
            for key, item in env.items():
                self.expandable(item, path + (key,))
        return env

    def volumes(self, value: Any, path: FieldPath):
        if not isinstance(value, list):
            self.fail(path, f"must be a list of volumes, got {_kind(value)}")
            return _INVALID
        out, names = [], set()
        fields = {"name", "mount_path", "pvc", "empty_dir", "read_only", "sub_path"}
        for i, item in enumerate(value):
            p = path + (i,)
            m = self.mapping(item, p, fields, ("name", "mount_path"))
            if m is None:
                continue
            name = self.get(m, p, "name", self.slug)
            if name in names or name == "home":
                self.fail(p + ("name",), f"volume name {name!r} is reserved or used twice")
            names.add(name)
            pvc = self.get(m, p, "pvc", self.slug)
            empty = self.get(m, p, "empty_dir", self.boolean, False)
            if (pvc is None) == (not empty):
                self.fail(p, "needs exactly one of 'pvc' or 'empty_dir: true'")
            out.append(
                Volume(
                    name=name,
                    mount_path=self.get(m, p, "mount_path", self.mount_path),
                    pvc=pvc,
                    read_only=self.get(m, p, "read_only", self.boolean, False),
                    sub_path=self.get(m, p, "sub_path", self.sub_path),
                )
            )
        return tuple(out)

    def sidecars(self, value: Any, path: FieldPath):
        if not isinstance(value, list):
            self.fail(path, f"must be a list of containers, got {_kind(value)}")
            return _INVALID
        out, names = [], {"notebook"}
        fields = {"name", "image", "command", "args", "env", "ports", "resources", "readiness"}
        for i, item in enumerate(value):
            p = path + (i,)
            m = self.mapping(item, p, fields, ("name", "image", "resources"))
            if m is None:
                continue
            name = self.get(m, p, "name", self.slug)
            if name in names:
                self.fail(p + ("name",), f"container name {name!r} is reserved or used twice")
            names.add(name)
            resources = self.get(m, p, "resources", self.resources)
            if resources is None:
                continue
            out.append(
                Sidecar(
                    name=name,
                    image=self.get(m, p, "image", self.image),
                    resources=resources,
                    command=self.get(m, p, "command", self.expandable_strings, ()),
                    args=self.get(m, p, "args", self.expandable_strings, ()),
                    env=self.get(m, p, "env", self.env, {}),
                    ports=self.get(m, p, "ports", self.ports, ()),
                    readiness_probe=self.get(m, p, "readiness", self.readiness),
                )
            )
        return tuple(out)

    def port(self, value: Any, path: FieldPath):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
            self.fail(path, f"must be a port number (1-65535), got {value!r}")
            return _INVALID
        return value

    def ports(self, value: Any, path: FieldPath):
        if not isinstance(value, list):
            self.fail(path, f"must be a list of port numbers, got {_kind(value)}")
            return _INVALID
        items = [self.port(v, path + (i,)) for i, v in enumerate(value)]
        return _INVALID if _INVALID in items else tuple(items)

    def readiness(self, value: Any, path: FieldPath):
        """``{tcp_port: N}`` or ``{http_path: /x, port: N}`` -> a Kubernetes readinessProbe."""
        m = self.mapping(value, path, {"tcp_port", "http_path", "port", "period_seconds"})
        if m is None:
            return _INVALID
        period = self.get(m, path, "period_seconds", lambda v, p: self.integer(v, p, 1), 2)
        if "tcp_port" in m and not {"http_path", "port"} & set(m):
            probe = {"tcpSocket": {"port": self.get(m, path, "tcp_port", self.port)}}
        elif {"http_path", "port"} <= set(m) and "tcp_port" not in m:
            probe = {
                "httpGet": {
                    "path": self.get(m, path, "http_path", self.url_path),
                    "port": self.get(m, path, "port", self.port),
                }
            }
        else:
            self.fail(path, "needs either 'tcp_port' or both 'http_path' and 'port'")
            return _INVALID
        return MappingProxyType({**probe, "periodSeconds": period})


_INVALID = object()


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    names = {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean"}
    return names.get(type(value), f"{type(value).__name__} {value!r}")


def as_plain(value: Any) -> Any:
    """Mappings and tuples from the model as plain dicts and lists (for Kubernetes manifests)."""
    if isinstance(value, Mapping):
        return {k: as_plain(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [as_plain(v) for v in value]
    return value
