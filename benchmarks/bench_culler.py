"""The culler's cycle against stock jupyterhub-idle-culler 2.0 on the same hub: 5,000 users,
1,000 running servers (light-mode pods), per-group culling policies, nothing due for culling.

Both run as their own process with their own service token, one cycle each, alternating; the
figures are medians. Hub API requests are counted in the hub's own log (one line per request,
naming the service), cycle time is measured around each one's cycle coroutine, RSS is the
process's peak (``ru_maxrss``) after the cycle — for ours, the whole service application.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.figures import Figure
from benchmarks.hub_config import API_USERS
from jupyterhub_platform.devcluster.platform import LocalPlatform
from jupyterhub_platform.devcluster.procs import wait_for
from jupyterhub_platform.services.common.hub_client import PAGINATION, HubClient, server_url

# The scale; smaller for a quick look: BENCH_CULLER_USERS=300 BENCH_CULLER_RUNNING=60
USERS = int(os.environ.get("BENCH_CULLER_USERS", "5000"))
RUNNING = int(os.environ.get("BENCH_CULLER_RUNNING", "1000"))
ROUNDS = 3
GROUPS = ("researchers", "students", "instructors")  # different culling policies apply
SCOPES = ["list:users", "read:users:activity", "read:servers", "delete:servers"]
OURS, UPSTREAM = "bench-platform-culler", "bench-idle-culler"
CULLER = str(Path(sys.executable).parent / "jupyterhub-platform-culler")


def overlay() -> dict:
    tokens = {name: os.urandom(16).hex() for name in (OURS, UPSTREAM)}
    return {
        "hub": {
            "config": API_USERS,
            "concurrentSpawnLimit": 200,
            "services": {
                "culler": {"command": [CULLER, "--cull-every=3600"]},  # out of the way
                **{name: {"apiToken": token} for name, token in tokens.items()},
            },
            "loadRoles": {
                OURS: {"scopes": [*SCOPES, "read:users:groups"], "services": [OURS]},
                UPSTREAM: {"scopes": SCOPES, "services": [UPSTREAM]},
            },
        }
    }


async def populate(platform: LocalPlatform) -> None:
    api = platform.hub_api_url
    names = [f"bench-{i:05d}" for i in range(USERS)]
    # a loaded hub answers 429 (its spawn limit) or 503: the services' client backs off
    client = HubClient(api, platform.admin_token, concurrency=20, retries=8, backoff=1.0)
    batches = [names[i : i + 250] for i in range(0, USERS, 250)]
    for batch in batches:
        await client.request("POST", "/users", {"usernames": batch})
    for g, group in enumerate(GROUPS):
        await client.request("POST", f"/groups/{group}")
        for batch in batches:
            members = batch[g :: len(GROUPS)]
            await client.request("POST", f"/groups/{group}/users", {"users": members})
    await asyncio.gather(*(client.request("POST", server_url(n), {}) for n in names[:RUNNING]))

    async def all_ready() -> bool:
        query = {"state": "ready", "limit": "1"}
        _, page = await client.request("GET", "/users", params=query, accept=PAGINATION)
        return page["_pagination"]["total"] >= RUNNING

    await wait_for(all_ready, timeout=1800, interval=2, what=f"{RUNNING} servers ready")


def hub_requests(platform: LocalPlatform, service: str) -> int:
    text = (platform.logs_dir / "hub.log").read_text(errors="replace")
    return text.count(f"({service}@")


def measure(platform: LocalPlatform, which: str, token: str, policy: Path) -> dict:
    env = {
        "PATH": os.environ["PATH"],
        "JUPYTERHUB_API_URL": platform.hub_api_url,
        "JUPYTERHUB_API_TOKEN": token,
        "JUPYTERHUB_PLATFORM_POLICY": str(policy),
    }
    service = OURS if which == "ours" else UPSTREAM
    before = hub_requests(platform, service)
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_culler", which],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        start_new_session=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    if done.returncode != 0:
        raise RuntimeError(f"{which} culler failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    time.sleep(1)  # the hub logs a request as it answers it: let the last lines land
    result["requests"] = hub_requests(platform, service) - before
    return result


async def run() -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="bench-culler-") as tmp:
        extra = overlay()
        tokens = {n: extra["hub"]["services"][n]["apiToken"] for n in (OURS, UPSTREAM)}
        async with LocalPlatform(Path(tmp), kubelet="light", extra_values=extra) as platform:
            await populate(platform)
            policy = next((Path(tmp) / "hub" / "etc").rglob("policy.yaml"))
            rounds: dict[str, list[dict]] = {"ours": [], "upstream": []}
            for _ in range(ROUNDS):
                for which, service in (("upstream", UPSTREAM), ("ours", OURS)):
                    rounds[which].append(
                        await asyncio.to_thread(measure, platform, which, tokens[service], policy)
                    )
    ours, upstream = rounds["ours"], rounds["upstream"]

    def med(results: list[dict], key: str) -> float:
        return statistics.median(r[key] for r in results)

    base = "jupyterhub-idle-culler 2.0"
    scale = f"{USERS} users, {RUNNING} running"
    return [
        Figure(
            f"hub API requests per cycle ({scale})",
            med(ours, "requests"),
            "requests",
            med(upstream, "requests"),
            base,
            "<= 1.1x",
        ),
        Figure(
            f"cycle time ({scale}, per-group policies)",
            med(ours, "seconds"),
            "s",
            med(upstream, "seconds"),
            base,
            "<= 1.1x",
        ),
        Figure(
            "service peak RSS after a cycle",
            med(ours, "rss_kib") / 1024,
            "MiB",
            med(upstream, "rss_kib") / 1024,
            base,
        ),
    ]


async def _one_cycle(which: str) -> float:
    """One cycle of ``which`` culler in this process; its duration."""
    if which == "upstream":
        from jupyterhub_idle_culler import cull_idle

        log = logging.getLogger("idle-culler")
        started = time.monotonic()
        await cull_idle(
            os.environ["JUPYTERHUB_API_URL"], os.environ["JUPYTERHUB_API_TOKEN"], 3600, log
        )
        return time.monotonic() - started
    from jupyterhub_platform.services.culler.app import CullerApp

    app = CullerApp.instance()
    app.initialize(["--once", "--log-level=WARN"])
    started = time.monotonic()
    await app.cycle()
    return time.monotonic() - started


if __name__ == "__main__":
    seconds = asyncio.run(_one_cycle(sys.argv[1]))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": seconds, "rss_kib": rss}))
