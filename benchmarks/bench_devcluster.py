"""Peak RSS of the emulator + kubelet carrying 100 light-mode pods, against the same process idle.

The devcluster runs under ``/usr/bin/time -v``; its peak RSS ("Maximum resident set size") is
read when it exits. Pods are created over the Kubernetes API like KubeSpawner creates them and
count only once every one answers HTTP on its pod IP.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from benchmarks.figures import Figure
from jupyterhub_platform.devcluster.cluster import ClusterAccess
from jupyterhub_platform.devcluster.procs import ManagedProcess, wait_for

PODS = 100
TIME = "/usr/bin/time"


def pod_manifest(name: str) -> dict:
    prefix = f"/user/{name}/"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"component": "singleuser-server", "bench": "rss"}},
        "spec": {
            "restartPolicy": "OnFailure",
            "containers": [
                {
                    "name": "notebook",
                    "image": "quay.io/jupyter/base-notebook:latest",
                    "command": ["jupyterhub-singleuser"],
                    "ports": [{"name": "notebook-port", "containerPort": 8888}],
                    "env": [
                        {"name": "JUPYTERHUB_SERVICE_PREFIX", "value": prefix},
                        {"name": "JUPYTERHUB_SERVICE_URL", "value": f"http://0.0.0.0:8888{prefix}"},
                    ],
                    "resources": {
                        "requests": {"cpu": "10m", "memory": "64Mi"},
                        "limits": {"memory": "1Gi"},
                    },
                }
            ],
        },
    }


async def _measure(state_dir: Path, pods: int) -> tuple[int, float]:
    """Peak RSS (KiB) of a light-mode devcluster after ``pods`` pods ran; seconds until all answered."""
    log = state_dir / "devcluster.log"
    proc = ManagedProcess(
        [
            TIME,
            "-v",
            sys.executable,
            "-m",
            "jupyterhub_platform.devcluster",
            "--state-dir",
            str(state_dir),
            "--port",
            "0",
            "--kubelet",
            "light",
        ],
        name="devcluster",
        log_path=log,
    )
    ready_file = state_dir / "ready.json"
    try:
        await wait_for(ready_file.exists, timeout=30, what="devcluster ready.json")
        ready = json.loads(ready_file.read_text())
        access = ClusterAccess.from_kubeconfig(Path(ready["kubeconfig"]))
        base = access.url.rstrip("/")
        elapsed = 0.0
        async with access.session() as http, aiohttp.ClientSession() as pods_http:
            started = time.monotonic()
            for i in range(pods):
                async with http.post(
                    f"{base}/api/v1/namespaces/default/pods", json=pod_manifest(f"bench-{i}")
                ) as resp:
                    if resp.status != 201:
                        raise RuntimeError(f"pod create failed: {resp.status} {await resp.text()}")

            async def all_answering() -> bool:
                async with http.get(
                    f"{base}/api/v1/namespaces/default/pods?labelSelector=bench%3Drss"
                ) as resp:
                    items = (await resp.json())["items"]
                running = [
                    p
                    for p in items
                    if p["status"].get("phase") == "Running" and p["status"].get("podIP")
                ]
                if len(running) < pods:
                    return False
                for pod in running:
                    url = f"http://{pod['status']['podIP']}:8888/user/{pod['metadata']['name']}/api"
                    async with pods_http.get(url) as resp:  # pods never see the cluster's token
                        if resp.status != 200:
                            return False
                return True

            if pods:
                await wait_for(
                    all_answering, timeout=120, interval=0.2, what=f"{pods} light pods answering"
                )
            elapsed = time.monotonic() - started
        os.kill(
            ready["pid"], signal.SIGTERM
        )  # the devcluster itself; /usr/bin/time then reports and exits
        await asyncio.to_thread(proc.popen.wait, 30)
    finally:
        await proc.astop()
    match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", log.read_text())
    if not match:
        raise RuntimeError(f"no RSS figure from {TIME}; log:\n{log.read_text()[-2000:]}")
    return int(match.group(1)), elapsed


async def run() -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="bench-devcluster-") as tmp:
        idle_dir = Path(tempfile.mkdtemp(prefix="idle-", dir=tmp))
        loaded_dir = Path(tempfile.mkdtemp(prefix="loaded-", dir=tmp))
        idle_kib, _ = await _measure(idle_dir, 0)
        loaded_kib, seconds = await _measure(loaded_dir, PODS)
    return [
        Figure(
            f"peak RSS, emulator + kubelet, {PODS} light-mode pods",
            loaded_kib / 1024,
            "MiB",
            baseline=idle_kib / 1024,
            baseline_name="same process with no pods",
        ),
        Figure("RSS per light-mode pod", (loaded_kib - idle_kib) / PODS, "KiB"),
        Figure(f"time until {PODS} light-mode pods answer HTTP", seconds, "s"),
    ]
