"""What the service's Kubernetes reads share (its backends' I/O): list items as plain dicts,
the backup Jobs, and the names of the objects it creates."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone

from .manifests import COMPONENT, COMPONENT_LABEL


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
