"""Schema validation of submitted objects, as strict as a real server with field validation on.

Objects are checked against the Kubernetes OpenAPI schema bundled with ``kubernetes-validate``
(strict: unknown fields are errors), plus the few semantic checks clients trip over most (names,
container images). The snapshot API's CRDs (VolumeSnapshot, VolumeSnapshotContent,
VolumeSnapshotClass) are checked against snapshot_schema.py; other kinds the bundle lacks get
their ``metadata`` checked only. Validators are built once per kind: the schema files are large
and pods are created by the hundred in benchmarks.
"""

from __future__ import annotations

import contextlib
import functools
import re
import sys


@contextlib.contextmanager
def _without_module(name: str):
    """Make ``import name`` fail inside the block, unless it is already loaded."""
    if name in sys.modules:
        yield
        return
    sys.modules[name] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        del sys.modules[name]


# jsonschema probes optional format checkers when imported; rfc3987_syntax (pulled in by
# Jupyter packages) compiles a grammar there that costs seconds of start-up. Formats are not
# checked here, so the emulator imports jsonschema without it: in this process jsonschema then
# lacks only its optional IRI format checkers, and rfc3987_syntax itself stays importable.
with _without_module("rfc3987_syntax"):
    import jsonschema
import referencing  # noqa: E402
from kubernetes_validate.utils import schema_contents  # noqa: E402

from .snapshot_schema import SCHEMAS as SNAPSHOT_SCHEMAS  # noqa: E402

# The Kubernetes version whose schema objects are checked against.
KUBERNETES_VERSION = "1.33.0"
_SCHEMA_DIR = f"kubernetes-json-schema/v{KUBERNETES_VERSION}-local-strict"
_OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
# Kinds whose names must be RFC 1123 labels rather than subdomains.
_LABEL_NAMED_KINDS = frozenset({"Namespace", "Service"})


@functools.cache
def _registry() -> referencing.Registry:
    definitions = schema_contents(f"{_SCHEMA_DIR}/_definitions.json", KUBERNETES_VERSION)
    return referencing.Resource.from_contents(definitions) @ referencing.Registry()


@functools.cache
def _validator(api_version: str, kind: str) -> jsonschema.protocols.Validator:
    api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    try:
        schema = schema_contents(f"{_SCHEMA_DIR}/{kind.lower()}-{api}.json", KUBERNETES_VERSION)
    except FileNotFoundError:
        # Not in the bundle: a CRD of the snapshot API (snapshot_schema.py), or any other kind,
        # checked only for what every object shares.
        schema = SNAPSHOT_SCHEMAS.get((api_version, kind)) or {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": {"metadata": {"$ref": f"/api/_definitions.json#/$defs/{_OBJECT_META}"}},
            "$id": "https://kubernetes.io/api/devcluster/unknown",
        }
    registry = referencing.Resource.from_contents(schema) @ _registry()
    return jsonschema.Draft202012Validator(schema, registry=registry)


def _field(path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def _join(base: str, name: str) -> str:
    return f"{base}.{name}" if base else name


def _causes_of(error: jsonschema.ValidationError) -> list[dict]:
    field = _field(error.absolute_path)
    if error.validator == "required":
        missing = [p for p in error.validator_value if p not in error.instance]
        return [
            {"reason": "FieldValueRequired", "message": "Required value", "field": _join(field, p)}
            for p in missing
        ]
    if error.validator == "additionalProperties":
        known = error.schema.get("properties", {})
        return [
            {
                "reason": "FieldValueInvalid",
                "message": f'unknown field "{p}"',
                "field": _join(field, p),
            }
            for p in error.instance
            if p not in known
        ]
    if error.validator == "type":
        return [
            {
                "reason": "FieldValueTypeInvalid",
                "message": f"Invalid value: {error.message}",
                "field": field,
            }
        ]
    if error.validator == "enum":
        return [
            {
                "reason": "FieldValueNotSupported",
                "message": f"Unsupported value: {error.message}",
                "field": field,
            }
        ]
    return [
        {
            "reason": "FieldValueInvalid",
            "message": f"Invalid value: {error.message}",
            "field": field,
        }
    ]


def _name_causes(obj: dict) -> list[dict]:
    meta = obj.get("metadata") or {}
    name, generate = meta.get("name"), meta.get("generateName")
    if not name:
        if generate:
            return []
        return [
            {
                "reason": "FieldValueRequired",
                "field": "metadata.name",
                "message": "Required value: name or generateName is required",
            }
        ]
    label = obj.get("kind") in _LABEL_NAMED_KINDS
    pattern, limit = (_DNS_LABEL, 63) if label else (_DNS_SUBDOMAIN, 253)
    if len(name) <= limit and pattern.match(name):
        return []
    what = "RFC 1123 label" if label else "RFC 1123 subdomain"
    return [
        {
            "reason": "FieldValueInvalid",
            "field": "metadata.name",
            "message": f'Invalid value: "{name}": a lowercase {what} must consist of lower case '
            "alphanumeric characters, '-' or '.', and must start and end with an "
            "alphanumeric character",
        }
    ]


_POD_ENUMS = {
    "restartPolicy": ("Always", "OnFailure", "Never"),
    "dnsPolicy": ("ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"),
}


def _not_supported(field: str, value: object, allowed: tuple[str, ...]) -> dict:
    choices = ", ".join(f'"{a}"' for a in allowed)
    return {
        "reason": "FieldValueNotSupported",
        "field": field,
        "message": f'Unsupported value: "{value}": supported values: {choices}',
    }


def _pod_spec_causes(spec: dict | None, base: str) -> list[dict]:
    """Checks the schema cannot express: required images, enumerated policies."""
    causes = [
        _not_supported(f"{base}.{key}", (spec or {})[key], allowed)
        for key, allowed in _POD_ENUMS.items()
        if (spec or {}).get(key) is not None and spec[key] not in allowed
    ]
    for group in ("initContainers", "containers"):
        for i, container in enumerate((spec or {}).get(group) or []):
            if isinstance(container, dict) and not container.get("image"):
                causes.append(
                    {
                        "reason": "FieldValueRequired",
                        "message": "Required value",
                        "field": f"{base}.{group}[{i}].image",
                    }
                )
    return causes


def validation_causes(obj: dict) -> list[dict]:
    """Every problem with ``obj`` as the real server would list them; empty when valid."""
    validator = _validator(obj.get("apiVersion", ""), obj.get("kind", ""))
    causes = [cause for error in validator.iter_errors(obj) for cause in _causes_of(error)]
    if causes:
        return causes
    causes = _name_causes(obj)
    if obj.get("kind") == "Pod":
        causes += _pod_spec_causes(obj.get("spec"), "spec")
    elif obj.get("kind") == "Job":
        template = ((obj.get("spec") or {}).get("template") or {}).get("spec")
        causes += _pod_spec_causes(template, "spec.template.spec")
    return causes


_POD_MUTABLE = (
    "activeDeadlineSeconds",
    "tolerations",
    "terminationGracePeriodSeconds",
    "schedulingGates",
)
_POD_IMMUTABLE_MESSAGE = (
    "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only "
    "additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set "
    "to 1 if it was previously negative)"
)


def _pod_spec_shape(spec: dict) -> dict:
    """A pod spec without the few fields an update may change."""
    shape = {k: v for k, v in spec.items() if k not in _POD_MUTABLE}
    for group in ("initContainers", "containers"):
        if group in shape:
            shape[group] = [{**c, "image": None} for c in shape[group]]
    return shape


def pod_update_causes(old_spec: dict, new_spec: dict) -> list[dict]:
    """The real server's rule that a pod's spec is immutable but for images and a few fields."""
    if _pod_spec_shape(old_spec) == _pod_spec_shape(new_spec):
        return []
    return [{"reason": "FieldValueForbidden", "field": "spec", "message": _POD_IMMUTABLE_MESSAGE}]
