"""Small builders and assertions shared by the devcluster tests."""

from __future__ import annotations

import json

import pytest
from kubernetes_asyncio import client


def pod(
    name: str, *, labels: dict | None = None, image: str = "busybox:1.36", **spec
) -> client.V1Pod:
    return client.V1Pod(
        api_version="v1",
        kind="Pod",
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1PodSpec(containers=[client.V1Container(name="main", image=image)], **spec),
    )


async def api_error(awaitable) -> tuple[int, dict]:
    """Await a call that must fail; return its HTTP status and decoded Status body."""
    with pytest.raises(client.ApiException) as info:
        await awaitable
    return info.value.status, json.loads(info.value.body)
