"""``jupyterhub-platform-backup``: back up every user's home volume on a cron schedule.

Each scheduled time begins a round of cycles that lasts until every home is backed up since
then. Each cycle lists the home claims, the backup Jobs (or VolumeSnapshots) and the pods
(Kubernetes is the only state: a restarted service sees what is running and what is done, and
goes on), asks the hub for users' groups (the group policy's ``backup:`` section opts users
out), and starts backups while fewer than ``concurrency`` run (docs/backup.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
from datetime import datetime, timedelta

from traitlets import Bool, Enum, Float, Integer, List, Unicode

from jupyterhub_platform.observability.audit import audit

from ..common.app import ServiceApp
from ..common.hub_client import HubAPIError
from ..common.kube import KubeConfigError, KubeSource, kube_client
from ..common.policy_source import PolicyLoadError, PolicySource
from ..common.web import oauth_routes, oauth_settings
from .cycle import (
    STORAGE_SELECTOR,
    Plan,
    VolumeBusyError,
    created_since,
    home_claims,
    log_skipped,
    new_backup_jobs,
    opted_out,
    plan_cycle,
    running_claims,
)
from .kubeio import items as _items
from .kubeio import job_log, job_name, utcnow
from .kubeio import jobs as _jobs
from .manifests import (
    COMPONENT,
    COMPONENT_LABEL,
    KIND_LABEL,
    USER_ANNOTATION,
    JobSettings,
    node_of_claim,
    restore_job,
)
from .pages import handlers
from .repository import run_restic, secret_values
from .restic import RestoreRequestError, Retention, check_snapshot_id, snapshot_dirname
from .schedule import CronError, parse_cron
from .views import (
    RestoreState,
    UserStatus,
    backup_status,
    directory_listing,
    restore_state,
    snapshot_list,
)


class BackupApp(ServiceApp):
    name = "backup"
    description = "Back up users' home volumes (restic or CSI snapshots, docs/backup.md)."
    classes = [KubeSource, PolicySource]

    schedule = Unicode("0 2 * * *", help="When cycles run, in cron syntax (UTC).").tag(config=True)
    jitter = Float(
        1800.0, help="Each cycle starts up to this many seconds after its scheduled minute."
    ).tag(config=True)
    concurrency = Integer(4, help="At most this many backup Jobs run at a time.").tag(config=True)
    round_poll = Float(
        60.0,
        help="Seconds between cycles within a round (a scheduled run), while homes still wait "
        "for one of the concurrency slots.",
    ).tag(config=True)
    image = Unicode(
        "docker.io/restic/restic:0.14.0", help="The image of the Jobs (restic and sh)."
    ).tag(config=True)
    repository = Unicode(
        help="The S3 repository base, s3:https://host/bucket; each user's is <base>/<claim>."
    ).tag(config=True)
    secret_name = Unicode(
        "backup-restic",
        help="The Secret with RESTIC_PASSWORD, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.",
    ).tag(config=True)
    keep_daily = Integer(7, help="Daily snapshots kept (the newest is always kept).").tag(
        config=True
    )
    keep_weekly = Integer(4, help="Weekly snapshots kept.").tag(config=True)
    keep_monthly = Integer(6, help="Monthly snapshots kept.").tag(config=True)
    prune_every = Integer(
        7,
        help="Days between a user's prunes: every run forgets the snapshots retention drops, "
        "and one round in this many (each user on their own day, spread over the period) also "
        "prunes, freeing their data. 1: every run prunes. A missed round's prune waits for the "
        "user's next prune day (docs/backup.md).",
    ).tag(config=True)
    opt_out_groups = List(
        Unicode(),
        help="Removed: opt-outs are in the group policy (backup.opt_out_groups, "
        "backup.opt_out_profiles; docs/backup.md). Setting it stops the service with that message.",
    ).tag(config=True)
    once = Bool(False, help="Run one cycle now and exit.").tag(config=True)
    backend = Enum(
        ["restic", "snapshot"],
        "restic",
        help="How homes are backed up: 'restic' (a Job per user to an S3 repository per user) or "
        "'snapshot' (CSI VolumeSnapshots of each home claim; needs a VolumeSnapshotClass for the "
        "claims' driver, docs/backup.md).",
    ).tag(config=True)
    snapshot_class = Unicode(
        "",
        help="The VolumeSnapshotClass of the snapshot backend's VolumeSnapshots; empty: the "
        "cluster's default class for the home claims' CSI driver.",
    ).tag(config=True)
    restic = Unicode(
        "restic", help="The restic program the service runs to list and browse snapshots."
    ).tag(config=True)
    restic_timeout = Float(
        120.0, help="Seconds a listing (restic snapshots/ls) may take before it is refused."
    ).tag(config=True)

    aliases = {
        **ServiceApp.aliases,
        "schedule": "BackupApp.schedule",
        "policy": "PolicySource.policy_file",
    }
    flags = {"once": ({"BackupApp": {"once": True}}, "Run one cycle now and exit.")}

    def initialize(self, argv=None) -> None:
        super().initialize(argv)
        try:
            self.cron = parse_cron(self.schedule)
        except CronError as exc:
            self.exit_error(f"BackupApp.schedule: {exc}")
        if self.backend == "snapshot":
            from .snapshot_backend import SnapshotBackend  # imports the Kubernetes client: slow

            self.volume_snapshots = SnapshotBackend(self)
        elif not self.repository.startswith("s3:"):
            self.exit_error(f"BackupApp.repository: {self.repository!r} is not s3:<url>/<bucket>")
        if self.prune_every < 1:
            self.exit_error(
                f"BackupApp.prune_every: {self.prune_every!r} must be at least 1 (days)"
            )
        if self.opt_out_groups:
            self.exit_error(
                f"BackupApp.opt_out_groups ({', '.join(self.opt_out_groups)}) was removed: list "
                "the groups under backup.opt_out_groups in the group policy file (docs/backup.md)"
            )
        try:
            self.policy = PolicySource(parent=self).load()
        except PolicyLoadError as exc:
            self.exit_error(str(exc))
        self.kube = KubeSource(parent=self)
        self.last_plan: Plan | None = None  # the last cycle's (the round loop reads it)
        self._one_cycle = asyncio.Lock()
        self.client = self.hub_client()
        self.settings = JobSettings(
            image=self.image,
            repository=self.repository,
            secret_name=self.secret_name,
            retention=Retention(self.keep_daily, self.keep_weekly, self.keep_monthly),
        )

    def handlers(self) -> list[tuple]:
        return [*handlers(self), *oauth_routes()]

    def web_settings(self) -> dict:
        return oauth_settings(self.service_prefix, self.api_url, self.api_token)

    async def _groups(self) -> dict[str, list[str]]:
        return {u["name"]: u.get("groups", []) async for u in self.client.paged("/users")}

    @contextlib.asynccontextmanager
    async def kube_apis(self):
        """``(CoreV1Api, BatchV1Api, namespace)`` on one API client, closed afterwards."""
        api = await self.kube.api_client()
        try:
            client = kube_client()
            yield client.CoreV1Api(api), client.BatchV1Api(api), self.kube.namespace
        finally:
            await api.close()

    async def cycle(self, round_start: datetime | None = None, actor: str = "") -> list[str]:
        """One cycle; returns the Jobs (VolumeSnapshots with the snapshot backend) created.

        In a round (``round_start``: the scheduled time it began), claims backed up since then
        are done; :attr:`last_plan` says who is still waiting for a slot. One cycle at a time:
        a round's and an admin's run would both see a claim free and start it twice.
        ``actor``: who asked (an admin's name; default: the service) for the audit trail."""
        async with self._one_cycle:
            return await self._cycle(round_start, actor or self.service_name)

    @property
    def service_name(self) -> str:
        return os.environ.get("JUPYTERHUB_SERVICE_NAME", "backup")

    async def _cycle(self, round_start: datetime | None, actor: str) -> list[str]:
        if self.backend == "snapshot":
            return await self.volume_snapshots.cycle(
                await self._groups(), utcnow(), round_start, actor
            )
        async with self.kube_apis() as (core, batch, ns):
            pvcs = await _items(core.list_namespaced_persistent_volume_claim(
                ns, label_selector=STORAGE_SELECTOR, _preload_content=False))  # fmt: skip
            jobs = await _jobs(batch, ns)
            pods = await _items(core.list_namespaced_pod(ns, _preload_content=False))
            busy = running_claims(jobs)
            candidates = home_claims(pvcs)
            out = opted_out(candidates, await self._groups(), self.policy)
            slots = max(0, self.concurrency - len(busy))
            plan = plan_cycle(candidates, busy, out, slots, created_since(jobs, round_start))
            self.last_plan = plan
            log_skipped(self.log, "backup", plan)
            created = []
            for job in new_backup_jobs(plan.start, pods, self.settings, utcnow(), round_start,
                                       self.prune_every):  # fmt: skip
                await batch.create_namespaced_job(ns, job.body)
                self.log.info("backup of %s: Job %s%s%s", job.candidate.user, job.name,
                              f" on node {job.node}" if job.node else "",
                              ", with prune" if job.prune else "")  # fmt: skip
                audit("backup.run", actor=actor, subject=job.candidate.user, job=job.name,
                      backend="restic", prune=job.prune)  # fmt: skip
                created.append(job.name)
            return created

    # -- what the pages and the API read and do (the handlers check who may) --

    async def claims(self) -> dict[str, str]:
        """user → home claim."""
        async with self.kube_apis() as (core, _, ns):
            pvcs = await _items(core.list_namespaced_persistent_volume_claim(
                ns, label_selector=STORAGE_SELECTOR, _preload_content=False))  # fmt: skip
        return {c.user: c.claim for c in home_claims(pvcs)}

    async def status(self) -> dict[str, UserStatus]:
        """Every user with a home claim, and their backups as the Jobs and their pods show them."""
        claims = await self.claims()
        async with self.kube_apis() as (core, batch, ns):
            jobs = await _jobs(batch, ns)
            pods = await _items(core.list_namespaced_pod(
                ns, label_selector=f"{COMPONENT_LABEL}={COMPONENT}", _preload_content=False))  # fmt: skip
            found = backup_status(jobs, pods)
        return {user: found.get(user, UserStatus(user)) for user in sorted(claims)}

    async def _restic(self, claim: str, args: list[str]) -> str | None:
        async with self.kube_apis() as (core, _, ns):
            secret = await core.read_namespaced_secret(self.secret_name, ns)
        keys = secret_values(secret.data, self.secret_name)
        return await run_restic(
            self.restic, self.repository, claim, keys, args, self.restic_timeout
        )

    async def snapshots(self, claim: str) -> list[dict]:
        if self.backend == "snapshot":
            return await self.volume_snapshots.snapshots(claim)
        return snapshot_list(await self._restic(claim, ["snapshots", "--json"]) or "[]")

    async def files(self, claim: str, snapshot_id: str, directory: str) -> list[dict]:
        if self.backend == "snapshot":
            return await self.volume_snapshots.files(claim, snapshot_id, directory)
        listing = await self._restic(claim, ["ls", "--json", check_snapshot_id(snapshot_id)])
        return directory_listing(listing or "", directory)

    async def restore(self, user: str, claim: str, snapshot_id: str, paths: list[str]) -> str:
        """Create the restore Job of ``paths`` (empty: the whole home) from one of the claim's
        snapshots; returns its name. Never while another Job of the claim runs: a backup's
        ``unlock --remove-all`` and prune must not meet a restore reading the repository."""
        if self.backend == "snapshot":
            return await self.volume_snapshots.restore(user, claim, snapshot_id, paths)
        snapshot = next((s for s in await self.snapshots(claim) if s["id"] == snapshot_id), None)
        if snapshot is None:
            raise RestoreRequestError(f"snapshot: {snapshot_id!r} is not one of {user}'s")
        name = job_name("restore", claim, utcnow())
        async with self.kube_apis() as (core, batch, ns):
            if claim in running_claims(await _jobs(batch, ns)):
                raise VolumeBusyError(
                    f"a backup or restore of {user}'s home is running; retry later"
                )
            pods = await _items(core.list_namespaced_pod(ns, _preload_content=False))
            body = restore_job(name, user, claim, node_of_claim(claim, pods), self.settings,
                               snapshot_id=snapshot_id, snapshot_dir=snapshot_dirname(
                                   snapshot["time"]), paths=paths)  # fmt: skip
            await batch.create_namespaced_job(ns, body)
        return name

    async def restore_status(self, user: str, name: str) -> RestoreState | None:
        """The state of ``user``'s restore Job ``name``; None if there is no such restore of
        theirs (another user's Job is as absent as a missing one)."""
        async with self.kube_apis() as (core, batch, ns):
            try:
                job = await batch.read_namespaced_job(name, ns, _preload_content=False)
                job = json.loads(await job.read())
            except kube_client().ApiException as exc:
                if exc.status == 404:
                    return None
                raise
            meta = job.get("metadata") or {}
            if (meta.get("labels") or {}).get(KIND_LABEL) != "restore" or (
                meta.get("annotations") or {}
            ).get(USER_ANNOTATION) != user:
                return None
            log = await job_log(core, ns, job)
        return restore_state(job, log)

    async def run(self) -> None:
        if self.once:
            await self._guarded_cycle()
            return
        # the round the schedule is in now: one the service missed, or was in when it stopped,
        # goes on (what is done is read from Kubernetes)
        due = self.cron.last_at_or_before(utcnow())
        while True:
            await self._round(due)
            due = self.cron.next_after(utcnow())
            wait = (due - utcnow()).total_seconds() + random.uniform(0, self.jitter)
            self.log.info("next backup round at %s (+jitter), in %.0fs", due.isoformat(), wait)
            await asyncio.sleep(max(0.0, wait))

    async def _round(self, due: datetime) -> None:
        """Cycles every ``round_poll`` seconds until every home is backed up since ``due`` (at
        most ``concurrency`` Jobs at a time), or the next round is due."""
        ends = self.cron.next_after(due)
        while True:
            if await self._guarded_cycle(due) and not self.last_plan.waiting:
                self.log.info("backup round of %s: every home done", due.isoformat())
                return
            if utcnow() + timedelta(seconds=self.round_poll) >= ends:
                waiting = len(self.last_plan.waiting) if self.last_plan else "?"
                self.log.warning("backup round of %s ends with %s homes not backed up",
                                 due.isoformat(), waiting)  # fmt: skip
                return
            await asyncio.sleep(self.round_poll)

    async def _guarded_cycle(self, round_start: datetime | None = None) -> bool:
        try:
            created = await self.cycle(round_start)
        except (HubAPIError, KubeConfigError, kube_client().ApiException, OSError) as exc:
            self.log.error("backup cycle failed: %s", exc)
            return False
        self.log.info("backup cycle: %d created", len(created))
        return True


main = BackupApp.launch_instance
