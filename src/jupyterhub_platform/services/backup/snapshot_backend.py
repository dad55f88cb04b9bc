"""The ``snapshot`` backend's I/O (decisions in volume_snapshots.py and snapshot_files.py):
VolumeSnapshots of the home claims through the Kubernetes API, restores through a PVC from the
snapshot and a Job. ``BackupApp`` hands its cycle, listings, browsing and restores here when
``backend = "snapshot"``.

Browsing: a snapshot's files are only readable from a volume provisioned from it (a full copy
of the home on most CSI drivers, often minutes), so a page view never waits for one. The first
browse of a snapshot creates a listing Job on a claim from it (:class:`ListingPending`: the API
answers 202, the page reloads itself); once it finished, a browse reads its log, keeps the
listing in a ConfigMap owned by the VolumeSnapshot and removes the claim; every later browse
reads the ConfigMap. Only ready snapshots of the user's own can be browsed or restored
(docs/backup.md).
"""

from __future__ import annotations

from datetime import datetime

from kubernetes_asyncio import client

from jupyterhub_platform.observability.audit import audit

from . import snapshot_files as listings
from .cycle import (
    STORAGE_SELECTOR,
    VolumeBusyError,
    created_since,
    home_claims,
    log_skipped,
    opted_out,
    plan_cycle,
    running_claims,
)
from .kubeio import items as _items
from .kubeio import job_log, job_name, utcnow
from .kubeio import jobs as _jobs
from .manifests import COMPONENT, COMPONENT_LABEL, USER_ANNOTATION, node_of_claim
from .restic import RestoreRequestError, snapshot_dirname, snapshot_path
from .volume_snapshots import (
    SNAPSHOT_API_VERSION,
    SnapshotNotReady,
    UnknownSnapshot,
    check_snapshot_name,
    claim_selector,
    expired,
    finished_restore_claims,
    in_progress_claims,
    is_users,
    not_ready_reason,
    owned_by,
    restore_claim,
    restore_job,
    user_snapshots,
    volume_snapshot,
)

GROUP, VERSION = SNAPSHOT_API_VERSION.split("/")
PLURAL = "volumesnapshots"


class SnapshotBackend:
    """One per service; ``app`` gives the Kubernetes APIs, traits and the log."""

    def __init__(self, app):
        self.app = app

    def _custom(self, core) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(core.api_client)

    async def _list_snapshots(self, core, ns: str, selector: str) -> list[dict]:
        found = await self._custom(core).list_namespaced_custom_object(
            GROUP, VERSION, ns, PLURAL, label_selector=selector
        )
        return found.get("items", [])

    async def cycle(
        self,
        groups: dict[str, list[str]],
        now: datetime,
        round_start: datetime | None = None,
        actor: str = "backup",
    ) -> list[str]:
        """Snapshots of the claims planned now, retention on every claim, finished restore
        claims removed; returns the snapshots created (``actor``: for the audit trail)."""
        app = self.app
        async with app.kube_apis() as (core, batch, ns):
            pvcs = await _items(core.list_namespaced_persistent_volume_claim(
                ns, label_selector=STORAGE_SELECTOR, _preload_content=False))  # fmt: skip
            snapshots = await self._list_snapshots(core, ns, f"{COMPONENT_LABEL}={COMPONENT}")
            jobs = await _jobs(batch, ns)
            busy = running_claims(jobs) | in_progress_claims(snapshots)
            candidates = home_claims(pvcs)
            out = opted_out(candidates, groups, app.policy)
            slots = max(0, app.concurrency - len(busy))
            plan = plan_cycle(candidates, busy, out, slots, created_since(snapshots, round_start))
            app.last_plan = plan
            log_skipped(app.log, "snapshot", plan)
            custom = self._custom(core)
            created = []
            for candidate in plan.start:
                name = job_name("snapshot", candidate.claim, now)
                body = volume_snapshot(name, candidate.user, candidate.claim, app.snapshot_class)
                try:
                    await custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, body)
                except client.ApiException as exc:
                    if exc.status != 409:
                        raise
                    app.log.info("snapshot of %s: %s exists (a cycle this second)",
                                 candidate.user, name)  # fmt: skip
                    continue
                app.log.info("snapshot of %s: VolumeSnapshot %s", candidate.user, name)
                audit("backup.run", actor=actor, subject=candidate.user, snapshot=name,
                      backend="snapshot")  # fmt: skip
                created.append(name)
            for candidate in candidates:
                mine = [s for s in snapshots if is_users(s, candidate.user, candidate.claim)]
                for name in expired(mine, app.settings.retention):
                    await custom.delete_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, name)
                    app.log.info("snapshot %s of %s expired (retention)", name, candidate.user)
            restores = await _items(core.list_namespaced_persistent_volume_claim(
                ns, label_selector=f"{COMPONENT_LABEL}={COMPONENT}", _preload_content=False))  # fmt: skip
            for name in finished_restore_claims(restores, jobs, now):
                await core.delete_namespaced_persistent_volume_claim(name, ns)
                app.log.info("restore claim %s removed (its Job finished)", name)
        return created

    async def snapshots(self, claim: str) -> list[dict]:
        """The snapshots of ``claim`` labelled as its user's (the claim's annotation names the
        user, as for the restic backend's repository)."""
        async with self.app.kube_apis() as (core, _, ns):
            home = await core.read_namespaced_persistent_volume_claim(claim, ns)
            user = (home.metadata.annotations or {}).get(USER_ANNOTATION, "")
            items = await self._list_snapshots(core, ns, claim_selector(claim))
        return user_snapshots(items, user, claim) if user else []

    async def files(self, claim: str, snapshot_id: str, directory: str) -> list[dict]:
        """The entries directly in ``directory`` of one of the claim's user's ready snapshots,
        from its listing ConfigMap; the first browse starts the listing Job and raises
        :class:`listings.ListingPending` (so do the next ones while it runs), a failed one
        :class:`listings.ListingFailed` with its reason."""
        check_snapshot_name(snapshot_id)
        snapshot_path(directory)
        async with self.app.kube_apis() as (core, batch, ns):
            home = await core.read_namespaced_persistent_volume_claim(claim, ns)
            user = (home.metadata.annotations or {}).get(USER_ANNOTATION, "")
            items = await self._list_snapshots(core, ns, claim_selector(claim))
            snapshot = next((s for s in items if s["metadata"]["name"] == snapshot_id
                             and user and is_users(s, user, claim)), None)  # fmt: skip
            if snapshot is None:
                raise UnknownSnapshot(f"snapshot: no {snapshot_id!r} among {user}'s snapshots")
            refusal = not_ready_reason(snapshot)
            if refusal:
                raise SnapshotNotReady(refusal)
            name = listings.listing_name(snapshot_id)
            stored = await _read(core.read_namespaced_config_map(name, ns), core.api_client)
            if stored is None:
                home_body = core.api_client.sanitize_for_serialization(home)
                stored = await self._listing(core, batch, ns, user, claim, snapshot, home_body)
        return listings.snapshot_directory(listings.stored_listing(stored), directory)

    async def _listing(self, core, batch, ns, user, claim, snapshot, home) -> dict:
        """The listing ConfigMap made from the finished listing Job; starts the Job (and its
        claim) if there is none, raises while it runs or when it failed."""
        name = listings.listing_name(snapshot["metadata"]["name"])
        job = await _read(batch.read_namespaced_job(name, ns), batch.api_client)
        if job is None:
            await self._start_listing(core, batch, ns, user, claim, snapshot, home)
            raise listings.ListingPending(listings.PREPARING)
        state = listings.job_listing_state(job)
        if state == "preparing":
            raise listings.ListingPending(listings.PREPARING)
        log = await job_log(core, ns, job)
        if state == "failed":
            raise listings.ListingFailed(listings.listing_failure(job, log))
        if log is None:
            raise listings.ListingFailed(
                "the listing Job finished but its log is gone; retry in an hour"
            )
        body = listings.listing_configmap(user, claim, snapshot, log)
        try:
            await core.create_namespaced_config_map(ns, body)
        except client.ApiException as exc:
            if exc.status != 409:  # a browse at the same time stored it
                raise
        self.app.log.info("listing of snapshot %s stored (ConfigMap %s)",
                          snapshot["metadata"]["name"], name)  # fmt: skip
        await _ignore(core.delete_namespaced_persistent_volume_claim(name, ns), 404)
        return body

    async def _start_listing(self, core, batch, ns, user, claim, snapshot, home) -> None:
        """The listing claim and Job; a browse at the same time (409) already made them (a
        claim left without its Job by a stopped service gets it now)."""
        pvc = listings.listing_claim(user, claim, snapshot, home)
        name = pvc["metadata"]["name"]
        await _ignore(core.create_namespaced_persistent_volume_claim(ns, pvc), 409)
        try:
            job = await batch.create_namespaced_job(
                ns, listings.listing_job(user, claim, snapshot["metadata"]["name"], self.app.image)
            )
        except client.ApiException as exc:
            if exc.status != 409:
                raise
            return
        await core.patch_namespaced_persistent_volume_claim(name, ns, {"metadata": {
            "ownerReferences": owned_by(batch.api_client.sanitize_for_serialization(job))}})  # fmt: skip
        self.app.log.info("listing of snapshot %s of %s: Job %s",
                          snapshot["metadata"]["name"], user, name)  # fmt: skip

    async def restore(self, user: str, claim: str, snapshot_id: str, paths: list[str]) -> str:
        """A PVC from one of the user's ready snapshots of the claim, and the Job copying
        ``paths`` from it into ``~/restored/<snapshot-time>/``; returns the Job's name."""
        check_snapshot_name(snapshot_id)
        app = self.app
        async with app.kube_apis() as (core, batch, ns):
            items = await self._list_snapshots(core, ns, claim_selector(claim))
            snapshot = next((s for s in items if s["metadata"]["name"] == snapshot_id
                             and is_users(s, user, claim)), None)  # fmt: skip
            if snapshot is None:
                raise RestoreRequestError(f"snapshot: {snapshot_id!r} is not one of {user}'s")
            refusal = not_ready_reason(snapshot)
            if refusal:
                raise SnapshotNotReady(refusal)
            if claim in running_claims(await _jobs(batch, ns)):
                raise VolumeBusyError(
                    f"a backup or restore of {user}'s home is running; retry later"
                )
            home = await core.read_namespaced_persistent_volume_claim(claim, ns)
            name = job_name("restore", claim, utcnow())
            pvc = restore_claim(name, user, claim, snapshot,
                                core.api_client.sanitize_for_serialization(home))  # fmt: skip
            await core.create_namespaced_persistent_volume_claim(ns, pvc)
            pods = await _items(core.list_namespaced_pod(ns, _preload_content=False))
            body = restore_job(name, user, claim, node_of_claim(claim, pods), app.image,
                               restore_claim_name=name, paths=paths,
                               snapshot_dir=snapshot_dirname(snapshot["status"]["creationTime"]))  # fmt: skip
            job = await batch.create_namespaced_job(ns, body)
            await core.patch_namespaced_persistent_volume_claim(name, ns, {"metadata": {
                "ownerReferences": owned_by(batch.api_client.sanitize_for_serialization(job))}})  # fmt: skip
        return name


async def _read(call, api_client) -> dict | None:
    """The object ``call`` reads, as the plain dict of its manifest; None if there is none."""
    try:
        found = await call
    except client.ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return api_client.sanitize_for_serialization(found)


async def _ignore(call, status: int) -> None:
    """``call``, where an answer of ``status`` (404: gone already, 409: made already) is fine."""
    try:
        await call
    except client.ApiException as exc:
        if exc.status != status:
            raise
