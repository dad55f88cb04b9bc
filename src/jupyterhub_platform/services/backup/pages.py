"""The backup service's page and JSON API under ``/services/backup/`` (HubOAuth).

A user sees only their own backups: every request resolves *whose* backups it is about (the
caller, or with ``?user=`` / ``"user"`` another user — admins only, else 403) and from that user
the claim and the repository; nothing from the request names a repository. Admins list every
user's status (last success, failures) and trigger a run. Each restore logs one audit line.
"""

from __future__ import annotations

import json
from pathlib import PurePosixPath
from urllib.parse import urlencode

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Gauge,
    ProcessCollector,
    generate_latest,
)
from tornado import web

from jupyterhub_platform.observability.audit import audit

from ..common.web import TEMPLATES, UserHandler
from .cycle import VolumeBusyError
from .kubeio import utcnow
from .repository import RepositoryError
from .restic import RestoreRequestError, restore_target, snapshot_path
from .snapshot_files import ListingFailed, ListingPending
from .views import fleet_figures
from .volume_snapshots import SnapshotNotReady, UnknownSnapshot


class BackupHandler(UserHandler):
    def initialize(self, backup) -> None:
        self.backup = backup

    def whose(self, requested: str | None) -> str:
        """The user this request is about: the caller, or (admins only) ``requested``."""
        me = self.user["name"]
        if requested and requested != me:
            self.require_admin()
            return requested
        return me

    async def claim(self, user: str) -> str:
        claim = (await self.backup.claims()).get(user)
        if claim is None:
            raise web.HTTPError(404, f"{user} has no home volume")
        return claim

    async def guarded(self, call):
        """``call``'s result; bad requests → 400, a snapshot not the user's → 404, a volume
        whose Job runs or a snapshot not ready → 409, restic failures → 502 (message, no
        secret). A listing being prepared or failed goes to the caller."""
        try:
            return await call
        except (VolumeBusyError, SnapshotNotReady) as exc:
            raise web.HTTPError(409, str(exc)) from None
        except UnknownSnapshot as exc:
            raise web.HTTPError(404, str(exc)) from None
        except RestoreRequestError as exc:
            raise web.HTTPError(400, str(exc)) from None
        except RepositoryError as exc:
            self.backup.log.error("backup repository: %s", exc)
            raise web.HTTPError(502, "the backup repository could not be read") from None

    async def start_restore(self, user: str, snapshot_id: str, paths: list[str]) -> str:
        """Create the restore Job of ``paths`` (empty: the whole home); one audit line."""
        claim = await self.claim(user)
        job = await self.guarded(self.backup.restore(user, claim, snapshot_id, paths))
        audit("backup.restore", actor=self.user["name"], subject=user, snapshot=snapshot_id,
              paths=paths or ["/"], job=job)  # fmt: skip
        return job


class SnapshotsAPIHandler(BackupHandler):
    @web.authenticated
    async def get(self) -> None:
        user = self.whose(self.get_argument("user", None))
        claim = await self.claim(user)
        snapshots = await self.guarded(self.backup.snapshots(claim))
        self.write_json({"user": user, "snapshots": snapshots})


class FilesAPIHandler(BackupHandler):
    @web.authenticated
    async def get(self, snapshot_id: str) -> None:
        user = self.whose(self.get_argument("user", None))
        directory = self.get_argument("path", "/")
        claim = await self.claim(user)
        answer = {"user": user, "snapshot": snapshot_id, "path": directory}
        try:
            files = await self.guarded(self.backup.files(claim, snapshot_id, directory))
        except ListingPending as exc:  # the snapshot backend's first browses: poll
            self.set_status(202)
            self.write_json({**answer, "state": "preparing", "message": str(exc)})
            return
        except ListingFailed as exc:
            self.set_status(502)
            self.write_json({**answer, "state": "failed", "message": str(exc)})
            return
        self.write_json({**answer, "state": "ready", "files": files})


class RestoreAPIHandler(BackupHandler):
    @web.authenticated
    async def post(self) -> None:
        body = _json_body(self.request.body)
        user = self.whose(body.get("user"))
        snapshot_id, paths = body.get("snapshot"), body.get("paths", [])
        if not isinstance(snapshot_id, str):
            raise web.HTTPError(400, "snapshot: a restic snapshot ID is required")
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            raise web.HTTPError(400, f"paths: {paths!r} is not a list of paths")
        job = await self.start_restore(user, snapshot_id, paths)
        self.set_status(201)
        self.write_json({"user": user, "snapshot": snapshot_id, "paths": paths, "job": job})


class RestoreFormHandler(BackupHandler):
    """The page's restore button: a form POST (``snapshot``, ``path``, ``user``, ``_xsrf``),
    then the page with the restore's state. Cookie logins must send the page's ``_xsrf``
    token: HubOAuth refuses the cookie without it (the user is then none: 403), and the
    explicit check below refuses it even if that ever changed. Hub tokens need none."""

    @web.authenticated
    async def post(self) -> None:
        self.check_xsrf_cookie()
        user = self.whose(self.get_body_argument("user", None))
        snapshot_id = self.get_body_argument("snapshot", "")
        path = self.get_body_argument("path", "/")
        job = await self.start_restore(user, snapshot_id, [] if path == "/" else [path])
        back = {"user": user, "snapshot": snapshot_id, "path": parent_dir(path), "job": job}
        self.redirect(f"{self.backup.service_prefix}?{urlencode(back)}", status=303)


class UsersAPIHandler(BackupHandler):
    """Admins: every user with a home volume, their last success and failed runs."""

    @web.authenticated
    async def get(self) -> None:
        self.require_admin()
        status = await self.backup.status()
        self.write_json({"users": [s.as_json() for s in status.values()]})


class RunAPIHandler(BackupHandler):
    """Admins: run a backup cycle now (users whose Job still runs are not started twice)."""

    @web.authenticated
    async def post(self) -> None:
        self.require_admin()
        created = await self.backup.cycle(actor=self.user["name"])
        self.backup.log.info("backup run triggered by %s: %d Jobs", self.user["name"], len(created))
        self.set_status(201)
        self.write_json({"jobs": created})


class PageHandler(BackupHandler):
    """The user's snapshots; with ``?snapshot=`` a directory of one (``?path=``); with
    ``&confirm=<path>`` the restore button's confirmation (where it goes); with ``&job=`` the
    state of a restore started from the page."""

    @web.authenticated
    async def get(self) -> None:
        user = self.whose(self.get_argument("user", None))
        claim = (await self.backup.claims()).get(user)
        snapshot_id = self.get_argument("snapshot", "")
        directory = self.get_argument("path", "/")
        snapshots = await self.guarded(self.backup.snapshots(claim)) if claim else []
        files, listing = [], None
        if claim and snapshot_id:
            try:
                files = await self.guarded(self.backup.files(claim, snapshot_id, directory))
            except ListingPending as exc:
                listing = {"state": "preparing", "message": str(exc)}
            except ListingFailed as exc:
                listing = {"state": "failed", "message": str(exc)}
        confirm = self.confirmation(snapshots, snapshot_id, self.get_argument("confirm", None))
        job = self.get_argument("job", "")
        restore = await self.backup.restore_status(user, job) if job else None
        if job and restore is None:
            raise web.HTTPError(404, f"no restore {job} of {user}'s")
        status = await self.backup.status() if self.is_admin() else {}
        self.finish(
            TEMPLATES.load("backup/templates/backup.html").generate(
                user=user, me=self.user["name"], admin=self.is_admin(), claim=claim,
                snapshots=snapshots, snapshot=snapshot_id, path=directory, files=files,
                status=list(status.values()), prefix=self.backup.service_prefix,
                confirm=confirm, restore=restore, xsrf=_text(self.xsrf_token), listing=listing,
            )
        )  # fmt: skip

    @staticmethod
    def confirmation(snapshots: list[dict], snapshot_id: str, path: str | None) -> dict | None:
        """What the confirmation says: the path, the snapshot's time and the target."""
        if path is None:
            return None
        chosen = next((s for s in snapshots if s["id"] == snapshot_id), None)
        if chosen is None:
            raise web.HTTPError(400, f"snapshot: {snapshot_id!r} is not one of the listed backups")
        try:
            path = snapshot_path(path)
        except RestoreRequestError as exc:
            raise web.HTTPError(400, str(exc)) from None
        return {"path": path, "time": chosen["time"], "target": restore_target(chosen["time"])}


class MetricsHandler(UserHandler):
    """Prometheus text format for ``read:metrics`` tokens, computed from the Jobs on record.
    Figures over every home (a user's own are on the pages and in the API): no user label."""

    hub_scopes = {"read:metrics"}

    def initialize(self, backup) -> None:
        self.backup = backup

    @web.authenticated
    async def get(self) -> None:
        figures = fleet_figures((await self.backup.status()).values(), utcnow())
        registry = CollectorRegistry()
        ProcessCollector(registry=registry)  # process_*: the service's CPU and memory
        homes = Gauge("backup_homes", "Home volumes by the state of their backups (ok: the "
                      "newest finished run succeeded; failing: it failed; never: no success "
                      "on record)", ["state"], registry=registry)  # fmt: skip
        for state, count in figures.homes.items():
            homes.labels(state).set(count)
        for name, help_text, value in [
            ("backup_oldest_success_age_seconds",
             "Seconds since the oldest of the homes' last successful backups",
             figures.oldest_success_age),
            ("backup_failed_jobs", "Failed backup Jobs on record (they expire with "
             "ttlSecondsAfterFinished)", figures.failed_jobs),
            ("backup_last_bytes_added",
             "Bytes the homes' last successful backups added to the repositories",
             figures.bytes_added),
            ("backup_last_bytes_processed",
             "Bytes of the homes their last successful backups read", figures.bytes_processed),
            ("backup_longest_duration_seconds",
             "The longest run time among the homes' last successful backups",
             figures.longest_duration),
        ]:  # fmt: skip
            if value is not None:
                Gauge(name, help_text, registry=registry).set(value)
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.finish(generate_latest(registry))


def parent_dir(path: str) -> str:
    """The folder the page shows after a restore of ``path``: the one it was chosen in."""
    return str(PurePosixPath("/" + path.strip("/")).parent)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _json_body(raw: bytes) -> dict:
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        raise web.HTTPError(400, "the request body is not JSON") from None
    if not isinstance(body, dict):
        raise web.HTTPError(400, "the request body is not a JSON object")
    return body


def handlers(backup) -> list[tuple]:
    args = {"backup": backup}
    return [
        ("", PageHandler, args),
        ("api/snapshots", SnapshotsAPIHandler, args),
        # restic IDs (hex) or VolumeSnapshot names; each backend checks its own
        ("api/snapshots/([a-z0-9][-a-z0-9.]*)/files", FilesAPIHandler, args),
        ("api/restore", RestoreAPIHandler, args),
        ("restore", RestoreFormHandler, args),
        ("api/users", UsersAPIHandler, args),
        ("api/run", RunAPIHandler, args),
        ("metrics", MetricsHandler, args),
    ]
