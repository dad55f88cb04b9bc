"""The Jobs the backup service creates (pure: dicts in, dicts out; no I/O).

A backup Job mounts the user's ``claim-<user>`` read-only; a restore Job mounts it read-write
(it only ever writes under ``~/restored/``). With a ReadWriteOnce volume in use by the user's
server, the Job must run on that server's node: ``node`` pins it there with a required node
affinity on ``kubernetes.io/hostname`` (docs/backup.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from .restic import (
    CACHE_DIR,
    TERMINATION_MESSAGE_PATH,
    Retention,
    backup_argv,
    repository_url,
    restore_argv,
)

HOME = "/data"
COMPONENT_LABEL = "app.kubernetes.io/component"
CLAIM_LABEL = "backup.jupyterhub-platform/claim"
KIND_LABEL = "backup.jupyterhub-platform/kind"
USER_ANNOTATION = "hub.jupyter.org/username"
COMPONENT = "home-backup"
SECRET_KEYS = ("RESTIC_PASSWORD", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")


@dataclass(frozen=True)
class JobSettings:
    """What every Job shares: image, the repository base URL and the Secret holding its keys."""

    image: str
    repository: str
    secret_name: str
    retention: Retention = Retention()
    backoff_limit: int = 2
    ttl_seconds: int = 7 * 86400
    deadline_seconds: int = 6 * 3600


def backup_job(
    name: str,
    user: str,
    claim: str,
    node: str | None,
    settings: JobSettings,
    *,
    prune: bool = False,
) -> dict:
    """``prune``: this run's ``forget`` prunes too (the service decides: ``restic.prune_due``)."""
    argv = backup_argv(HOME, "jupyterhub-backup", user, settings.retention, prune=prune)
    return job_manifest(name, "backup", user, claim, node, settings, argv, read_only=True)


def restore_job(
    name: str,
    user: str,
    claim: str,
    node: str | None,
    settings: JobSettings,
    *,
    snapshot_id: str,
    snapshot_dir: str,
    paths: list[str],
) -> dict:
    argv = restore_argv(HOME, snapshot_id, snapshot_dir, paths)
    job = job_manifest(name, "restore", user, claim, node, settings, argv, read_only=False)
    job["spec"]["backoffLimit"] = 0  # a retried restore would write a second copy
    return job


def job_manifest(name, kind, user, claim, node, settings: JobSettings, argv, *, read_only) -> dict:
    """A Job of ``kind`` running ``argv`` with the home claim mounted at /data (labels, the
    repository's environment, limits, pinned to ``node`` if given)."""
    labels = {COMPONENT_LABEL: COMPONENT, CLAIM_LABEL: claim, KIND_LABEL: kind}
    env = [
        {"name": "RESTIC_REPOSITORY", "value": repository_url(settings.repository, claim)},
    ]
    env += [
        {"name": key, "valueFrom": {"secretKeyRef": {"name": settings.secret_name, "key": key}}}
        for key in SECRET_KEYS
    ]
    pod_spec: dict = {
        "restartPolicy": "Never",
        "containers": [
            {
                "name": kind,
                "image": settings.image,
                "command": argv,
                "env": env,
                "volumeMounts": [{"name": "home", "mountPath": HOME, "readOnly": read_only}],
                "securityContext": {"allowPrivilegeEscalation": False, "runAsUser": 0},
                # success: restic's summary (the bytes metrics); failure: the log's end (why)
                "terminationMessagePath": TERMINATION_MESSAGE_PATH,
                "terminationMessagePolicy": "FallbackToLogsOnError",
            }
        ],
        "volumes": [
            {"name": "home", "persistentVolumeClaim": {"claimName": claim, "readOnly": read_only}}
        ],
    }
    if kind == "backup":
        # restic's cache, in an emptyDir: it lives and dies with the pod, and the backup reads
        # the index and the last snapshot's trees through it (docs/backup.md, "Benchmark")
        container = pod_spec["containers"][0]
        container["env"].append({"name": "RESTIC_CACHE_DIR", "value": CACHE_DIR})
        container["volumeMounts"].append({"name": "cache", "mountPath": CACHE_DIR})
        pod_spec["volumes"].append({"name": "cache", "emptyDir": {}})
    if node:
        pod_spec["affinity"] = _on_node(node)
    meta = {"name": name, "labels": labels, "annotations": {USER_ANNOTATION: user}}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta,
        "spec": {
            "backoffLimit": settings.backoff_limit,
            "ttlSecondsAfterFinished": settings.ttl_seconds,
            "activeDeadlineSeconds": settings.deadline_seconds,
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        },
    }


def _on_node(node: str) -> dict:
    term = {
        "matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]
    }
    return {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}
        }
    }


def node_of_claim(claim: str, pods: list[dict]) -> str | None:
    """The node of a running pod that mounts ``claim`` (a ReadWriteOnce volume is attached there)."""
    for pod in pods:
        node = pod.get("spec", {}).get("nodeName")
        phase = pod.get("status", {}).get("phase")
        if not node or phase not in ("Pending", "Running"):
            continue
        for volume in pod["spec"].get("volumes") or []:
            if (volume.get("persistentVolumeClaim") or {}).get("claimName") == claim:
                return node
    return None


def secret_manifest(name: str, password: str, access_key: str, secret_key: str) -> dict:
    """The Secret the Jobs read the repository password and S3 keys from."""
    values = dict(zip(SECRET_KEYS, (password, access_key, secret_key), strict=True))
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "labels": {COMPONENT_LABEL: COMPONENT}},
        "type": "Opaque",
        "stringData": values,
    }
