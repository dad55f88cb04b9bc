"""JSON Schemas of the CSI snapshot API (``snapshot.storage.k8s.io/v1``), which
kubernetes-validate does not bundle (they are CRDs, not built-in kinds).

Written from the external-snapshotter's v1 CRDs (``client/config/crd/`` in
kubernetes-csi/external-snapshotter): the same fields, types, required keys, enums, the
``restoreSize`` quantity pattern and the CRDs' "exactly one of" rules (CEL there, ``oneOf``
here), as strict structural schemas (an unknown field is an error, as with strict field
validation). The emulator validates writes with them, and the backup service's unit tests
validate every VolumeSnapshot it builds with them (docs/backup.md).
"""

from __future__ import annotations

SNAPSHOT_GROUP = "snapshot.storage.k8s.io"
SNAPSHOT_API_VERSION = f"{SNAPSHOT_GROUP}/v1"
_OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
_QUANTITY = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|"
    r"([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)


def _object(properties: dict, required: tuple[str, ...] = ()) -> dict:
    schema: dict = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = list(required)
    return schema


def _exactly_one(*keys: str) -> list[dict]:
    return [{"required": [key]} for key in keys]


_STRING = {"type": "string"}
_NAME = {"type": "string", "minLength": 1}
_TIME = {"type": "string", "format": "date-time"}
_ERROR = _object({"message": _STRING, "time": _TIME})


def _kind(kind: str, properties: dict, required: tuple[str, ...]) -> dict:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://kubernetes.io/api/devcluster/{kind.lower()}-snapshot-v1",
        **_object(
            {
                "apiVersion": {"const": SNAPSHOT_API_VERSION},
                "kind": {"const": kind},
                "metadata": {"$ref": f"/api/_definitions.json#/$defs/{_OBJECT_META}"},
                **properties,
            },
            required,
        ),
    }


VOLUME_SNAPSHOT = _kind(
    "VolumeSnapshot",
    {
        "spec": _object(
            {
                "source": {
                    **_object(
                        {"persistentVolumeClaimName": _NAME, "volumeSnapshotContentName": _NAME}
                    ),  # fmt: skip
                    "oneOf": _exactly_one("persistentVolumeClaimName", "volumeSnapshotContentName"),
                },
                "volumeSnapshotClassName": _NAME,
            },
            ("source",),
        ),
        "status": _object(
            {
                "boundVolumeSnapshotContentName": _STRING,
                "creationTime": _TIME,
                "error": _ERROR,
                "readyToUse": {"type": "boolean"},
                "restoreSize": {"type": ["string", "integer"], "pattern": _QUANTITY},
                "volumeGroupSnapshotName": _STRING,
            }
        ),
    },
    ("spec",),
)

VOLUME_SNAPSHOT_CONTENT = _kind(
    "VolumeSnapshotContent",
    {
        "spec": _object(
            {
                "deletionPolicy": {"enum": ["Delete", "Retain"]},
                "driver": _NAME,
                "source": {
                    **_object({"snapshotHandle": _NAME, "volumeHandle": _NAME}),
                    "oneOf": _exactly_one("snapshotHandle", "volumeHandle"),
                },
                "sourceVolumeMode": {"enum": ["Block", "Filesystem"]},
                "volumeSnapshotClassName": _NAME,
                "volumeSnapshotRef": _object(
                    {
                        key: _STRING
                        for key in (
                            "apiVersion",
                            "fieldPath",
                            "kind",
                            "name",
                            "namespace",
                            "resourceVersion",
                            "uid",
                        )
                    }  # fmt: skip
                ),
            },
            ("deletionPolicy", "driver", "source", "volumeSnapshotRef"),
        ),
        "status": _object(
            {
                "creationTime": {"type": "integer"},  # nanoseconds since the epoch
                "error": _ERROR,
                "readyToUse": {"type": "boolean"},
                "restoreSize": {"type": "integer", "minimum": 0},
                "snapshotHandle": _STRING,
                "volumeGroupSnapshotHandle": _STRING,
            }
        ),
    },
    ("spec",),
)

VOLUME_SNAPSHOT_CLASS = _kind(
    "VolumeSnapshotClass",
    {
        "driver": _NAME,
        "deletionPolicy": {"enum": ["Delete", "Retain"]},
        "parameters": {"type": "object", "additionalProperties": _STRING},
    },
    ("driver", "deletionPolicy"),
)

SCHEMAS = {
    (SNAPSHOT_API_VERSION, schema["properties"]["kind"]["const"]): schema
    for schema in (VOLUME_SNAPSHOT, VOLUME_SNAPSHOT_CONTENT, VOLUME_SNAPSHOT_CLASS)
}
"""(apiVersion, kind) → schema."""
