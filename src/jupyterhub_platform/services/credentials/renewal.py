"""Renewal of running servers' credentials in their Secrets.

Each round lists the per-server Secrets (label ``component=singleuser-credentials``); a set whose
expiry is at least :data:`~.model.RENEW_FRACTION` through (or that was never issued) is re-issued
for the Secret's user with the entitlement re-checked: a set no longer granted has its keys
blanked and leaves the Secret's set list. One PATCH per Secret that changed; the kubelet updates
the mounted files in place. Kubernetes is the only state: a restarted service just goes on."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ..common.kube import kube_client
from .model import (
    EXPIRY_ANNOTATION,
    RENEW_FRACTION,
    SECRET_COMPONENT,
    SETS_ANNOTATION,
    USER_ANNOTATION,
    Issued,
    IssueError,
    data_key,
)

SELECTOR = f"component={SECRET_COMPONENT}"
REVOKED = "revoked"
log = logging.getLogger(__name__)


def held_sets(annotations: Mapping[str, str]) -> list[str]:
    return [s for s in (annotations.get(SETS_ANNOTATION) or "").split(",") if s]


def expiries(annotations: Mapping[str, str]) -> dict[str, dict]:
    """The Secret's expiry annotation; unreadable: empty (every set is then due)."""
    try:
        value = json.loads(annotations.get(EXPIRY_ANNOTATION) or "{}")
    except ValueError:
        return {}
    return (
        {k: v for k, v in value.items() if isinstance(v, dict)} if isinstance(value, dict) else {}
    )


def due_sets(annotations: Mapping[str, str], now: float, fraction: float = RENEW_FRACTION):
    """The held sets to issue again: ``fraction`` of their lifetime passed, or never issued
    (a spawn went on without them). Sets that do not expire are left alone."""
    found = expiries(annotations)
    due = []
    for name in held_sets(annotations):
        entry = found.get(name)
        if entry is None:
            due.append(name)
            continue
        issued_at, expires_at = entry.get("issued_at"), entry.get("expires_at")
        if expires_at is None or not isinstance(issued_at, int | float):
            continue
        if now >= issued_at + fraction * max(0.0, expires_at - issued_at):
            due.append(name)
    return due


def renewal_patch(
    annotations: Mapping[str, str], data_keys: Iterable[str], results: Mapping[str, Issued | str]
) -> dict:
    """The Secret patch for ``results`` (set -> new issuance, or :data:`REVOKED`): new values
    and expiries; a revoked set's keys set to empty and the set dropped from both annotations."""
    data: dict[str, str] = {}
    found = expiries(annotations)
    revoked = {s for s, r in results.items() if r == REVOKED}
    for name, result in results.items():
        if result == REVOKED:
            data.update({k: "" for k in data_keys if k.startswith(f"{name}.")})
            found.pop(name, None)
        else:
            data.update({data_key(name, k): _b64(v) for k, v in result.values.items()})
            found[name] = {"issued_at": result.issued_at, "expires_at": result.expires_at}
    return {
        "metadata": {
            "annotations": {
                SETS_ANNOTATION: ",".join(s for s in held_sets(annotations) if s not in revoked),
                EXPIRY_ANNOTATION: json.dumps(found, sort_keys=True),
            }
        },
        "data": data,
    }


def _b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


@dataclass
class RoundReport:
    patched: list[str] = field(default_factory=list)
    renewed: int = 0
    revoked: int = 0
    failed: int = 0
    soonest: dict[str, float] = field(default_factory=dict)
    """Set -> the soonest expiry among the Secrets after the round (epoch seconds)."""


async def renewal_round(service, core, namespace: str, now: float) -> RoundReport:
    """One round over the namespace's credential Secrets (``service``: a CredentialService)."""
    response = await core.list_namespaced_secret(
        namespace, label_selector=SELECTOR, _preload_content=False
    )
    secrets = json.loads(await response.read()).get("items", [])
    report = RoundReport()
    for secret in secrets:
        meta = secret.get("metadata") or {}
        annotations = meta.get("annotations") or {}
        results = await _renew(service, annotations.get(USER_ANNOTATION, ""),
                               due_sets(annotations, now), report)  # fmt: skip
        if results:
            body = renewal_patch(annotations, (secret.get("data") or {}).keys(), results)
            try:
                await core.patch_namespaced_secret(meta["name"], namespace, body)
            except kube_client().ApiException as exc:  # gone with its server, or not allowed
                log.warning("Secret %s not patched: %s %s", meta["name"], exc.status, exc.reason)
                report.failed += len(results)
                continue
            report.patched.append(meta["name"])
            annotations = {**annotations, **body["metadata"]["annotations"]}
        for name, entry in expiries(annotations).items():
            if entry.get("expires_at") is not None:
                report.soonest[name] = min(report.soonest.get(name, entry["expires_at"]),
                                           entry["expires_at"])  # fmt: skip
    return report


async def _renew(service, user: str, due: list[str], report: RoundReport) -> dict:
    if not due or not user:  # no user annotation: not the spawner's Secret, nobody to issue to
        return {}
    try:
        subject = await service.subject(user)
    except IssueError as exc:
        log.warning("credentials of %s not renewed: %s", user, exc.message)
        report.failed += len(due)
        return {}
    results: dict[str, Issued | str] = {}
    for name in due:
        try:
            results[name] = await service.issue(subject, name, via="renewal")
        except IssueError as exc:
            if exc.reason == "not_entitled":
                results[name] = REVOKED
                report.revoked += 1
                service.metrics.renewals.labels(name, "revoked").inc()
                log.info("credential set %s of %s revoked: keys blanked", name, user)
            else:
                report.failed += 1
                service.metrics.renewals.labels(name, "failed").inc()
                log.warning("credential set %s of %s not renewed: %s", name, user, exc.message)
            continue
        report.renewed += 1
        service.metrics.renewals.labels(name, "renewed").inc()
    return results
