"""Spawn time and Kubernetes API requests per spawn with group quotas on vs off, in the same run.

Two local platforms (stock chart, light kubelet) run side by side, the same shipped policy on
both; one also has a ``quotas:`` section generous enough that nothing is refused (with a pool on
the users' group, so every check also walks the group's members), so every spawn goes through
the quota check and reservation. Spawns alternate between them (both see the same machine
load): first ``SPAWNS`` one after the other, then a batch of ``BATCH`` at once on both.

A spawn's time is request -> ready: the REST ``POST``, which answers once the server is ready
(``slow_spawn_timeout`` is set past any spawn here: polling the hub for readiness loads it, the
more so the more spawns are slow, which skews a concurrent batch), or polling if it answers 202.
The hub's CPU time over the spawn phase is what the spawn path itself costs, whatever the machine
load does to wall-clock times. Kubernetes API requests are the hub's (kubernetes_asyncio's
User-Agent) as each emulator counts them at ``GET /metrics``, over the spawn phase. Servers keep
running, so the quota check counts a growing number of them; at the end the admin view must
count every server on the quota side and show no quota on the other.
"""

from __future__ import annotations

import asyncio
import os
import re
import statistics
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path

import psutil
import yaml

from benchmarks.figures import Figure
from benchmarks.hub_config import API_USERS
from jupyterhub_platform.chart.values import load_values_file, policy_in_values
from jupyterhub_platform.devcluster.cluster import ClusterAccess
from jupyterhub_platform.devcluster.platform import LocalPlatform, shipped_values_dir
from jupyterhub_platform.devcluster.procs import wait_for
from jupyterhub_platform.services.common.hub_client import HubClient, server_url, user_url

# A quick look by default; the scale with e.g. BENCH_QUOTAS_SPAWNS=50 BENCH_QUOTAS_BATCH=20
SPAWNS = int(os.environ.get("BENCH_QUOTAS_SPAWNS", "20"))
BATCH = int(os.environ.get("BENCH_QUOTAS_BATCH", "10"))
READY_TIMEOUT = 300
GROUP = "researchers"
SPAWN_OPTIONS = {"profile": "jupyterlab"}
HUB_CLIENT = "OpenAPI-Generator"  # kubernetes_asyncio's User-Agent; the light kubelet's differs
HUB_REQUESTS = re.compile(
    rf'^devcluster_requests_total\{{client="{HUB_CLIENT}",method="[A-Z]+"\}} (\d+)$', re.MULTILINE
)
# Far above what SPAWNS + BATCH servers request, so the check runs and never refuses.
GENEROUS = {
    "defaults": {"servers": 10, "cpu": 1000, "memory": "4Ti", "gpus": 8},
    "groups": {GROUP: {"user": {"servers": 20}, "pool": {"servers": 10_000, "cpu": 100_000}}},
}


def policy_text(quotas: bool) -> str:
    """The shipped policy, without quotas or with the generous ones."""
    policy = yaml.safe_load(
        policy_in_values(load_values_file(shipped_values_dir() / "values.yaml")).text
    )
    policy.pop("quotas", None)
    if quotas:
        policy["quotas"] = GENEROUS
    return yaml.safe_dump(policy, sort_keys=False)


def overlay(quotas: bool) -> dict:
    return {
        "hub": {
            # the REST POST answers when the server is ready: no polling that loads the hub
            "config": {
                **API_USERS,
                "JupyterHub": {"tornado_settings": {"slow_spawn_timeout": READY_TIMEOUT}},
            },
            "concurrentSpawnLimit": 4 * BATCH,
            "extraFiles": {"platform-policy": {"stringData": policy_text(quotas)}},
        }
    }


class Side:
    """One platform, its hub client and its emulator's counter of the hub's requests."""

    def __init__(self, name: str, platform: LocalPlatform):
        self.name, self.platform = name, platform
        self.hub = HubClient(platform.hub_api_url, platform.admin_token, concurrency=4 * BATCH)
        self.access = ClusterAccess.from_kubeconfig(platform.cluster.kubeconfig_path)
        self.seconds: dict[str, list[float]] = {"sequential": [], "batch": []}
        hub = next(p for p in platform.processes if p.name == "hub")
        self.hub_process = psutil.Process(hub.popen.pid)

    def hub_cpu_seconds(self) -> float:
        """CPU time (user + system) the hub process and its children used so far."""
        times = [p.cpu_times() for p in (self.hub_process, *self.hub_process.children(True))]
        return sum(t.user + t.system for t in times)

    @property
    def warm_user(self) -> str:
        return f"bench-warm-{self.name}"

    async def populate(self, users: list[str]) -> None:
        users = [*users, self.warm_user]
        await self.hub.request("POST", "/users", {"usernames": users})
        await self.hub.request("POST", f"/groups/{GROUP}")
        await self.hub.request("POST", f"/groups/{GROUP}/users", {"users": users})

    async def hub_requests(self) -> int:
        async with self.access.session() as http, http.get(f"{self.access.url}/metrics") as resp:
            text = await resp.text()
            if resp.status != 200:
                raise RuntimeError(f"{self.name}: emulator /metrics {resp.status}: {text[:300]}")
        return sum(int(n) for n in HUB_REQUESTS.findall(text))

    async def spawn(self, user: str) -> float:
        """Request → ready for ``user``'s default server, in seconds."""
        started = time.perf_counter()
        status, _ = await self.hub.request("POST", server_url(user), SPAWN_OPTIONS)
        if status == 202:

            async def ready() -> bool:
                _, model = await self.hub.request("GET", user_url(user))
                return bool(model.get("servers", {}).get("", {}).get("ready"))

            await wait_for(ready, timeout=READY_TIMEOUT, interval=0.5, what=f"{self.name}: {user}")
        elif status != 201:
            raise RuntimeError(f"{self.name}: spawning {user} answered {status}")
        return time.perf_counter() - started

    async def quota_use(self) -> int | None:
        """The servers the hub counts against the quotas of GROUP (None: no quota there)."""
        _, view = await self.hub.request("GET", "/platform/quotas")
        group = view.get("groups", {}).get(GROUP)
        return None if group is None else group["use"]["servers"]

    async def timed(self, phase: str, user: str) -> None:
        self.seconds[phase].append(await self.spawn(user))


async def run() -> list[Figure]:
    users = [f"bench-{i:03d}" for i in range(SPAWNS + BATCH)]
    sequential, batch = users[:SPAWNS], users[SPAWNS:]
    with tempfile.TemporaryDirectory(prefix="bench-quotas-") as tmp:
        async with AsyncExitStack() as stack:
            platforms = {
                name: LocalPlatform(
                    Path(tmp) / name, kubelet="light", extra_values=overlay(name == "on")
                )
                for name in ("off", "on")
            }
            for p in platforms.values():
                stack.push_async_callback(p.stop)  # stopping a platform never started is a no-op
            await asyncio.gather(*(p.start() for p in platforms.values()))
            sides = [Side(name, p) for name, p in platforms.items()]
            await asyncio.gather(*(s.populate(users) for s in sides))
            # a first spawn on each starts the hub's reflectors: not counted, not timed
            await asyncio.gather(*(s.spawn(s.warm_user) for s in sides))
            before = {s.name: await s.hub_requests() for s in sides}
            cpu_before = {s.name: s.hub_cpu_seconds() for s in sides}
            for i, user in enumerate(sequential):
                for side in sides if i % 2 else sides[::-1]:
                    await side.timed("sequential", user)
            # both batches at once, their requests interleaved: neither gets a head start
            await asyncio.gather(
                *(
                    side.timed("batch", u)
                    for i, u in enumerate(batch)
                    for side in sides[:: i % 2 * 2 - 1]
                )
            )
            cpu = {s.name: s.hub_cpu_seconds() - cpu_before[s.name] for s in sides}
            requests = {s.name: await s.hub_requests() - before[s.name] for s in sides}
            use = {s.name: await s.quota_use() for s in sides}
    if use != {"off": None, "on": len(users) + 1}:  # + the warm-up server
        raise RuntimeError(f"the quotas did not count the servers as expected: {use}")
    on, off = (next(s for s in sides if s.name == n) for n in ("on", "off"))
    base = "quotas off"
    return [
        Figure(
            f"spawn request -> ready, median of {SPAWNS} one after the other",
            statistics.median(on.seconds["sequential"]) * 1000, "ms",
            baseline=statistics.median(off.seconds["sequential"]) * 1000,
            baseline_name=base, target="<= 1.05x",
        ),
        Figure(
            f"spawn request -> ready, median of a batch of {BATCH} at once",
            statistics.median(on.seconds["batch"]) * 1000, "ms",
            baseline=statistics.median(off.seconds["batch"]) * 1000,
            baseline_name=base, target="<= 1.05x",
        ),
        Figure(
            "hub CPU time per spawn (both phases)",
            cpu["on"] / len(users) * 1000, "ms",
            baseline=cpu["off"] / len(users) * 1000, baseline_name=base, target="<= 1.05x",
        ),
        Figure(
            "hub's Kubernetes API requests per spawn",
            requests["on"] / len(users), "requests",
            baseline=requests["off"] / len(users), baseline_name=base, target="<= 1.0x",
        ),
    ]  # fmt: skip
