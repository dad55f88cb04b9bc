"""What the service's Kubernetes reads share (its backends' I/O): list items as plain dicts,
the backup Jobs, a Job's log, and the names of the objects it creates."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone

from ..common.kube import kube_client
from .manifests import CLAIM_LABEL, COMPONENT, COMPONENT_LABEL


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def job_name(kind: str, claim: str, now: datetime) -> str:
    """``backup-<claim>-<time>``, within Kubernetes' 63 characters (a hash keeps it unique)."""
    digest = hashlib.sha256(claim.encode()).hexdigest()[:6]
    return f"{kind}-{claim[:32].rstrip('-.')}-{digest}-{now:%Y%m%d%H%M%S}"


async def jobs(batch, ns: str) -> list[dict]:
    return await items(batch.list_namespaced_job(
        ns, label_selector=f"{COMPONENT_LABEL}={COMPONENT}", _preload_content=False))  # fmt: skip


async def items(call) -> list[dict]:
    response = await call
    return json.loads(await response.read()).get("items", [])


async def job_log(core, ns: str, job: dict) -> str | None:
    """The log of the Job's newest pod (found by its owner reference); None if none."""
    uid = job["metadata"].get("uid")
    claim = (job["metadata"].get("labels") or {}).get(CLAIM_LABEL, "")
    pods = [
        p for p in await items(core.list_namespaced_pod(
            ns, label_selector=f"{CLAIM_LABEL}={claim}", _preload_content=False))
        if any(ref.get("uid") == uid for ref in p["metadata"].get("ownerReferences") or [])
    ]  # fmt: skip
    if not pods:
        return None
    newest = max(pods, key=lambda p: p["metadata"].get("creationTimestamp", ""))
    try:
        return await core.read_namespaced_pod_log(newest["metadata"]["name"], ns)
    except kube_client().ApiException:
        return None  # no log (yet, or no pods/log permission): the state says enough
