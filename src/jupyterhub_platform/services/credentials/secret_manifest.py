"""A server's credential Secret and what its pod gets from it (pure: dicts in, dicts out).

The pod only ever *refers* to the Secret (a volume and ``secretKeyRef`` env), so neither the
server's API token nor any issued value is in the pod spec, which many can read.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence

from .model import (
    API_TOKEN_KEY,
    EXPIRY_ANNOTATION,
    MOUNT_ROOT,
    SECRET_COMPONENT,
    SETS_ANNOTATION,
    USER_ANNOTATION,
    CredentialSet,
    Issued,
    data_key,
    secret_name,
)

VOLUME_NAME = "platform-credentials"
TOKEN_ENV = ("JUPYTERHUB_API_TOKEN", "JPY_API_TOKEN")
DIR_ENV = "JUPYTERHUB_PLATFORM_CREDENTIALS_DIR"
URL_ENV = "JUPYTERHUB_PLATFORM_CREDENTIALS_URL"


def _held(sets: Sequence[CredentialSet], issued: Mapping[str, Issued]) -> list[CredentialSet]:
    """The server's sets that were issued, in the server's order."""
    return [s for s in sets if s.name in issued]


def secret_manifest(
    pod_name: str,
    namespace: str,
    pod_uid: str,
    labels: Mapping[str, str],
    username: str,
    api_token: str,
    sets: Sequence[CredentialSet],
    issued: Mapping[str, Issued],
) -> dict:
    """The Secret of the pod ``pod_name``: owned by the pod, so it is deleted with it."""
    held = _held(sets, issued)
    values = {API_TOKEN_KEY: api_token}
    for cset in held:
        values.update({data_key(cset.name, k): v for k, v in issued[cset.name].values.items()})
    expiry = {
        s.name: {"issued_at": issued[s.name].issued_at, "expires_at": issued[s.name].expires_at}
        for s in held
    }
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": secret_name(pod_name),
            "namespace": namespace,
            "labels": {**labels, "component": SECRET_COMPONENT},
            "annotations": {
                SETS_ANNOTATION: ",".join(s.name for s in held),
                EXPIRY_ANNOTATION: json.dumps(expiry, sort_keys=True),
                USER_ANNOTATION: username,
            },
            "ownerReferences": [
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "name": pod_name,
                    "uid": pod_uid,
                    "controller": False,
                    "blockOwnerDeletion": False,
                }
            ],
        },
        "data": {k: base64.b64encode(v.encode()).decode("ascii") for k, v in values.items()},
    }


def secret_volume(
    pod_name: str, sets: Sequence[CredentialSet], issued: Mapping[str, Issued]
) -> dict:
    """The pod's volume of its Secret: the token file and ``<set>/<key>`` for ``files`` sets."""
    items = [{"key": API_TOKEN_KEY, "path": API_TOKEN_KEY}]
    for cset in _held(sets, issued):
        if cset.files:
            items += [
                {"key": data_key(cset.name, k), "path": f"{cset.name}/{k}"}
                for k in issued[cset.name].values
            ]
    return {"name": VOLUME_NAME, "secret": {"secretName": secret_name(pod_name), "items": items}}


def secret_mount() -> dict:
    """The main container's read-only mount of :func:`secret_volume`."""
    return {"name": VOLUME_NAME, "mountPath": MOUNT_ROOT, "readOnly": True}


def secret_env(
    pod_name: str,
    sets: Sequence[CredentialSet],
    issued: Mapping[str, Issued],
    credentials_url: str = "",
) -> dict[str, str | dict]:
    """Env of the main container: the token and the sets' ``env:`` as ``secretKeyRef``s (new
    dicts on every call: KubeSpawner's make_pod adds ``name`` to the ones it is given)."""

    def ref(key: str) -> dict:
        return {"valueFrom": {"secretKeyRef": {"name": secret_name(pod_name), "key": key}}}

    env: dict[str, str | dict] = {}
    for cset in _held(sets, issued):
        env.update({var: ref(data_key(cset.name, key)) for var, key in cset.env.items()})
    env.update({name: ref(API_TOKEN_KEY) for name in TOKEN_ENV})
    env[DIR_ENV] = MOUNT_ROOT
    if credentials_url:
        env[URL_ENV] = credentials_url
    return env
