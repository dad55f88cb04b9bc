"""The profile file schema: turn one parsed YAML document into a :class:`~.model.Profile`.

Every problem is collected with its file, line and field, so an admin sees all mistakes of a file
at once. Unknown fields are errors: a typo must never silently drop a restriction. The general
checks (strings, slugs, CPU, memory, label names) are :mod:`jupyterhub_platform.validate`'s; this
module owns the profile fields.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from jupyterhub_platform.validate import Invalid, LocatedData, Problems
from jupyterhub_platform.validate import checks as v

from .errors import ProfileLoadError
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

ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
IMAGE_REF = re.compile(r"[a-z0-9][a-z0-9._/:@-]{0,254}", re.IGNORECASE | re.ASCII)
URL_PATH = re.compile(r"/[^\s{}]*")
ABSOLUTE_PATH = re.compile(r"/\S*")
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
SIDECAR_EXITS = ("restart", "stop_server")

PROFILE_FIELDS = {
    "slug", "display_name", "description", "kind", "order", "default", "allowed_groups",
    "image", "resources", "node_selector", "tolerations", "env", "volumes", "sidecars",
    "default_url", "command", "culling_policy", "credential_sets",
}  # fmt: skip


def parse_profile(doc: LocatedData) -> Profile:
    """Validate ``doc`` against the schema; :class:`ProfileLoadError` lists every problem."""
    try:
        return _profile(doc.data, doc)
    except Invalid as e:
        raise ProfileLoadError(doc.errors(e)) from None


# -- values -------------------------------------------------------------------------------------
def _image(value: Any) -> str:
    return v.string(value, IMAGE_REF, "image reference")


def _url_path(value: Any) -> str:
    return v.string(value, URL_PATH, "URL path (starting with '/')")


def _groups(value: Any) -> frozenset[str]:
    return frozenset(v.strings(value))


def _positive(value: Any) -> int:
    return v.integer(value, 1)


def _expandable(value: Any) -> str:
    """A string KubeSpawner will ``str.format``: only its placeholders, literal braces doubled."""
    try:
        fields = {f for _, f, _, _ in string.Formatter().parse(value) if f is not None}
    except ValueError as e:
        raise Invalid(f"unbalanced braces ({e}); write literal braces as {{{{ and }}}}") from None
    unknown = sorted(f for f in fields if f.split(".")[0].split("[")[0] not in KUBESPAWNER_FIELDS)
    if unknown:
        raise Invalid(
            f"unknown placeholder(s) {', '.join('{' + f + '}' for f in unknown)}; "
            "write literal braces as {{ and }}"
        )
    return value


def _expandable_string(value: Any) -> str:
    return _expandable(v.string(value))


def _expandable_strings(value: Any) -> tuple[str, ...]:
    return v.list_of(value, _expandable_string, "strings")


def _mount_path(value: Any) -> str:
    return _expandable(v.string(value, ABSOLUTE_PATH, "absolute path"))


def _env(value: Any) -> Mapping[str, str]:
    env = v.string_map(value, ENV_NAME)
    problems = Problems()
    for key, item in env.items():
        problems.take((key,), _expandable, item)
    problems.raise_any()
    return env


def _choices(value: Any) -> dict:
    """A non-empty mapping of choice key -> choice, keys checked."""
    if not isinstance(value, dict) or not value:
        raise Invalid(f"must be a mapping with at least one choice, got {v.kind(value)}")
    problems = Problems()
    for key in value:
        if key == CUSTOM_CHOICE:
            problems.add(f"{CUSTOM_CHOICE!r} is reserved for the custom image", (key,))
        elif not v.IDENTIFIER.fullmatch(key):
            problems.add(f"{key!r} is not a valid choice key (a slug)", (key,))
    problems.raise_any()
    return value


def _one_default(items: tuple, problems: Problems, at: tuple) -> None:
    if sum(1 for i in items if i.default) > 1:
        problems.add("more than one choice is marked default", at)


def _keyed(
    value: Any, item: Callable, problems: Problems, at: tuple, *args
) -> tuple:  # choices: key -> item(key, value, *args), each at its key
    raw = problems.take(at, _choices, value)
    if not raw:
        return ()
    items = tuple(problems.take(at + (k,), item, k, spec, *args) for k, spec in raw.items())
    items = tuple(i for i in items if i is not None)
    _one_default(items, problems, at)
    return items


# -- the profile --------------------------------------------------------------------------------
def _profile(value: Any, doc: LocatedData) -> Profile:
    p = Problems()
    top = v.fields(value, p, PROFILE_FIELDS, ("slug", "display_name", "kind", "image", "resources"))
    images, custom = p.field(top, "image", _images, default=((), None))
    values = dict(
        slug=p.field(top, "slug", v.identifier),
        display_name=p.field(top, "display_name", v.string),
        description=p.field(top, "description", v.text, default=""),
        kind=p.field(top, "kind", v.one_of, KINDS),
        order=p.field(top, "order", v.integer, default=100),
        default=p.field(top, "default", v.boolean, default=False),
        allowed_groups=p.field(top, "allowed_groups", _groups),
        sizes=p.field(top, "resources", _sizes, default=()),
        node_selector=p.field(top, "node_selector", v.labels, default=MappingProxyType({})),
        tolerations=p.field(top, "tolerations", _tolerations, default=()),
        env=p.field(top, "env", _env, default=MappingProxyType({})),
        volumes=p.field(top, "volumes", _volumes, default=()),
        sidecars=p.field(top, "sidecars", _sidecars, default=()),
        default_url=p.field(top, "default_url", _url_path),
        command=p.field(top, "command", v.strings),
        culling_policy=p.field(top, "culling_policy", v.string),
        credential_sets=p.field(top, "credential_sets", v.strings, default=()),
    )
    _shared_volumes(values["sidecars"], values["volumes"], p)
    p.raise_any()
    return Profile(
        images=images,
        custom_image=custom,
        source=doc.file,
        lines=MappingProxyType({k: doc.line((k,)) for k in top}),
        **values,
    )


def _images(value: Any) -> tuple[tuple[ImageChoice, ...], CustomImage | None]:
    if isinstance(value, str):
        return ((ImageChoice("default", "Default", "", _image(value), True),), None)
    p = Problems()
    spec = v.fields(value, p, {"choices", "custom"})
    choices = ()
    if "choices" in spec:
        choices = _keyed(spec["choices"], _image_choice, p, ("choices",))
    custom = p.field(spec, "custom", _custom_image)
    if not p and not choices and custom is None:
        p.add("needs 'choices' (at least one) or 'custom'")
    p.raise_any()
    return choices, custom


def _image_choice(key: str, value: Any) -> ImageChoice:
    fields = {"display_name", "description", "image", "default", "allowed_groups"}
    p = Problems()
    m = v.fields(value, p, fields, ("image",))
    choice = ImageChoice(image=p.field(m, "image", _image, default=""), **_choice(key, m, p))
    p.raise_any()
    return choice


def _choice(key: str, m: dict, p: Problems) -> dict[str, Any]:
    """The fields every choice (image or size) has."""
    return dict(
        key=key,
        display_name=p.field(m, "display_name", v.string, default=key),
        description=p.field(m, "description", v.text, default=""),
        default=p.field(m, "default", v.boolean, default=False),
        allowed_groups=p.field(m, "allowed_groups", _groups),
    )


def _custom_image(value: Any) -> CustomImage:
    p = Problems()
    m = v.fields(value, p, {"display_name", "pattern", "allowed_groups"}, ("pattern",))
    custom = CustomImage(
        display_name=p.field(m, "display_name", v.string, default="Custom image"),
        pattern=p.field(m, "pattern", v.regex),
        allowed_groups=p.field(m, "allowed_groups", _groups),
    )
    p.raise_any()
    return custom


def _resources(value: Any) -> Resources:
    p = Problems()
    m = v.fields(value, p, {"cpu", "memory"}, ("cpu", "memory"))
    cpu = p.field(m, "cpu", _request_limit, v.cpu)
    memory = p.field(m, "memory", _request_limit, v.memory)
    p.raise_any()
    return Resources(cpu[0], cpu[1], memory[0], memory[1])


def _request_limit(value: Any, amount: Callable[[Any], float]) -> tuple[float, float]:
    p = Problems()
    m = v.fields(value, p, {"request", "limit"}, ("request", "limit"))
    request, limit = p.field(m, "request", amount), p.field(m, "limit", amount)
    p.raise_any()
    if request > limit:
        raise Invalid("must not be greater than the limit", ("request",))
    return request, limit


def _sizes(value: Any) -> tuple[Size, ...]:
    p = Problems()
    spec = v.fields(value, p, {"bounds", "choices"}, ("choices",))
    bounds = p.field(spec, "bounds", _bounds, default={})
    sizes = _keyed(spec["choices"], _size, p, ("choices",), bounds) if "choices" in spec else ()
    p.raise_any()
    return sizes


def _bounds(value: Any) -> dict:
    p = Problems()
    m = v.fields(value, p, {"cpu", "memory", "gpu"})
    bounds = {
        "cpu": p.field(m, "cpu", v.cpu),
        "memory": p.field(m, "memory", v.memory),
        "gpu": p.field(m, "gpu", v.integer),
    }
    p.raise_any()
    return bounds


def _size(key: str, value: Any, bounds: dict) -> Size:
    fields = {"display_name", "description", "cpu", "memory", "gpu", "default", "allowed_groups"}
    p = Problems()
    m = v.fields(value, p, fields, ("cpu", "memory"))
    gpu = p.field(m, "gpu", _gpu)
    res = p.take((), _resources, {k: m[k] for k in ("cpu", "memory") if k in m})
    if res is None:
        p.raise_any()  # the missing or bad amounts
    limits = {"cpu": res.cpu_limit, "memory": res.mem_limit, "gpu": gpu.count if gpu else 0}
    for name, limit in limits.items():
        bound = bounds.get(name)
        if bound is not None and limit > bound:
            p.add(f"limit exceeds resources.bounds.{name}", (name,))
    size = Size(resources=res, gpu=gpu, **_choice(key, m, p))
    p.raise_any()
    return size


def _gpu(value: Any) -> Gpu:
    p = Problems()
    m = v.fields(value, p, {"count", "resource_name", "node_selector", "tolerations"}, ("count",))
    gpu = Gpu(
        count=p.field(m, "count", _positive, default=1),
        resource_name=p.field(m, "resource_name", v.label_key, default=DEFAULT_GPU_RESOURCE),
        node_selector=p.field(m, "node_selector", v.labels, default=MappingProxyType({})),
        tolerations=p.field(m, "tolerations", _tolerations, default=()),
    )
    p.raise_any()
    return gpu


def _tolerations(value: Any) -> tuple[Mapping[str, Any], ...]:
    return v.list_of(value, _toleration, "tolerations")


def _toleration(value: Any) -> Mapping[str, Any]:
    p = Problems()
    m = v.fields(value, p, TOLERATION_KEYS)
    checks = dict.fromkeys(TOLERATION_KEYS[:4], v.string)
    checks["tolerationSeconds"] = v.integer
    tol = {key: p.field(m, key, check) for key, check in checks.items() if key in m}
    p.raise_any()
    return MappingProxyType(tol)


def _unique_names(items: tuple, reserved: set[str], what: str) -> None:
    names = set(reserved)
    p = Problems()
    for i, item in enumerate(items):
        if item.name in names:
            p.add(f"{what} name {item.name!r} is reserved or used twice", (i, "name"))
        names.add(item.name)
    p.raise_any()


def _volumes(value: Any) -> tuple[Volume, ...]:
    volumes = v.list_of(value, _volume, "volumes")
    _unique_names(volumes, {"home"}, "volume")
    return volumes


def _volume(value: Any) -> Volume:
    fields = {"name", "mount_path", "pvc", "empty_dir", "read_only", "sub_path"}
    p = Problems()
    m = v.fields(value, p, fields, ("name", "mount_path"))
    pvc = p.field(m, "pvc", v.identifier)
    if (pvc is None) == (not p.field(m, "empty_dir", v.boolean, default=False)) and not p:
        p.add("needs exactly one of 'pvc' or 'empty_dir: true'")
    volume = Volume(
        name=p.field(m, "name", v.identifier),
        mount_path=p.field(m, "mount_path", _mount_path),
        pvc=pvc,
        read_only=p.field(m, "read_only", v.boolean, default=False),
        sub_path=p.field(m, "sub_path", _expandable_string),
    )
    p.raise_any()
    return volume


def _sidecars(value: Any) -> tuple[Sidecar, ...]:
    sidecars = v.list_of(value, _sidecar, "containers")
    _unique_names(sidecars, {"notebook"}, "container")
    return sidecars


def _sidecar(value: Any) -> Sidecar:
    fields = {
        "name", "image", "command", "args", "env", "ports", "resources", "readiness",
        "display_name", "volumes", "on_exit",
    }  # fmt: skip
    p = Problems()
    m = v.fields(value, p, fields, ("name", "image", "resources"))
    sidecar = Sidecar(
        name=p.field(m, "name", v.identifier),
        display_name=p.field(m, "display_name", v.string, default=""),
        volumes=p.field(m, "volumes", v.strings, default=()),
        on_exit=p.field(m, "on_exit", v.one_of, SIDECAR_EXITS, default="stop_server"),
        image=p.field(m, "image", _image),
        resources=p.field(m, "resources", _resources),
        command=p.field(m, "command", _expandable_strings, default=()),
        args=p.field(m, "args", _expandable_strings, default=()),
        env=p.field(m, "env", _env, default=MappingProxyType({})),
        ports=p.field(m, "ports", _ports, default=()),
        readiness_probe=p.field(m, "readiness", _readiness),
    )
    p.raise_any()
    return sidecar


def _shared_volumes(sidecars: tuple[Sidecar, ...] | None, volumes: tuple[Volume, ...] | None,
                    p: Problems) -> None:  # fmt: skip
    """Each volume a sidecar lists is one of the profile's."""
    known = {vol.name for vol in volumes or ()}
    for i, sidecar in enumerate(sidecars or ()):
        for j, name in enumerate(sidecar.volumes):
            if name not in known:
                listed = ", ".join(sorted(known)) or "none"
                p.add(f"{name!r} is not one of the profile's volumes ({listed})",
                      ("sidecars", i, "volumes", j))  # fmt: skip


def _ports(value: Any) -> tuple[int, ...]:
    return v.list_of(value, v.port, "port numbers")


def _readiness(value: Any) -> Mapping[str, Any]:
    """``{tcp_port: N}`` or ``{http_path: /x, port: N}`` -> a Kubernetes readinessProbe."""
    p = Problems()
    m = v.fields(value, p, {"tcp_port", "http_path", "port", "period_seconds"})
    period = p.field(m, "period_seconds", _positive, default=2)
    if "tcp_port" in m and not {"http_path", "port"} & set(m):
        probe = {"tcpSocket": {"port": p.field(m, "tcp_port", v.port)}}
    elif {"http_path", "port"} <= set(m) and "tcp_port" not in m:
        probe = {
            "httpGet": {
                "path": p.field(m, "http_path", _url_path),
                "port": p.field(m, "port", v.port),
            }
        }
    else:
        p.add("needs either 'tcp_port' or both 'http_path' and 'port'")
        probe = {}
    p.raise_any()
    return MappingProxyType({**probe, "periodSeconds": period})


def as_plain(value: Any) -> Any:
    """Mappings and tuples from the model as plain dicts and lists (for Kubernetes manifests)."""
    if isinstance(value, Mapping):
        return {k: as_plain(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [as_plain(v) for v in value]
    return value
