"""The backup service's page and JSON API under ``/services/backup/`` (HubOAuth).

A user sees only their own backups: every request resolves *whose* backups it is about (the
caller, or with ``?user=`` / ``"user"`` another user — admins only, else 403) and from that user
the claim and the repository; nothing from the request names a repository. Admins list every
user's status (last success, failures) and trigger a run. Each restore logs one audit line.
"""

from __future__ import annotations

import json

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest
from tornado import web

from ..common.web import TEMPLATES, UserHandler
from .cycle import VolumeBusyError
from .repository import RepositoryError
from .restic import RestoreRequestError


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
        """``call``'s result; bad requests → 400, a volume whose Job runs → 409, restic
        failures → 502 (message, no secret)."""
        try:
            return await call
        except VolumeBusyError as exc:
            raise web.HTTPError(409, str(exc)) from None
        except RestoreRequestError as exc:
            raise web.HTTPError(400, str(exc)) from None
        except RepositoryError as exc:
            self.backup.log.error("backup repository: %s", exc)
            raise web.HTTPError(502, "the backup repository could not be read") from None


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
        files = await self.guarded(self.backup.files(claim, snapshot_id, directory))
        self.write_json({"user": user, "snapshot": snapshot_id, "path": directory,
                         "files": files})  # fmt: skip


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
        claim = await self.claim(user)
        job = await self.guarded(self.backup.restore(user, claim, snapshot_id, paths))
        self.backup.log.info(
            "audit: restore user=%s by=%s snapshot=%s paths=%s job=%s",
            user, self.user["name"], snapshot_id, json.dumps(paths or ["/"]), job,
        )  # fmt: skip
        self.set_status(201)
        self.write_json({"user": user, "snapshot": snapshot_id, "paths": paths, "job": job})


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
        created = await self.backup.cycle()
        self.backup.log.info("backup run triggered by %s: %d Jobs", self.user["name"], len(created))
        self.set_status(201)
        self.write_json({"jobs": created})


class PageHandler(BackupHandler):
    """The user's snapshots; with ``?snapshot=`` a directory of one (``?path=``)."""

    @web.authenticated
    async def get(self) -> None:
        user = self.whose(self.get_argument("user", None))
        claim = (await self.backup.claims()).get(user)
        snapshot_id = self.get_argument("snapshot", "")
        directory = self.get_argument("path", "/")
        snapshots = await self.guarded(self.backup.snapshots(claim)) if claim else []
        files = (
            await self.guarded(self.backup.files(claim, snapshot_id, directory))
            if claim and snapshot_id
            else []
        )
        status = await self.backup.status() if self.is_admin() else {}
        self.finish(
            TEMPLATES.load("backup/templates/backup.html").generate(
                user=user, me=self.user["name"], admin=self.is_admin(), claim=claim,
                snapshots=snapshots, snapshot=snapshot_id, path=directory, files=files,
                status=list(status.values()), prefix=self.backup.service_prefix,
            )
        )  # fmt: skip


class MetricsHandler(UserHandler):
    """Prometheus text format for ``read:metrics`` tokens, computed from the Jobs on record."""

    hub_scopes = {"read:metrics"}

    def initialize(self, backup) -> None:
        self.backup = backup

    @web.authenticated
    async def get(self) -> None:
        registry = CollectorRegistry()
        last = Gauge("backup_last_success_timestamp_seconds",
                     "When the user's last successful backup finished", ["user"],
                     registry=registry)  # fmt: skip
        duration = Gauge("backup_last_duration_seconds",
                         "How long the user's last successful backup ran", ["user"],
                         registry=registry)  # fmt: skip
        failures = Gauge("backup_failed_jobs", "Failed backup Jobs on record, per user",
                         ["user"], registry=registry)  # fmt: skip
        added = Gauge("backup_last_bytes_added",
                      "Bytes the user's last successful backup added to the repository",
                      ["user"], registry=registry)  # fmt: skip
        processed = Gauge("backup_last_bytes_processed",
                          "Bytes of the home the user's last successful backup read", ["user"],
                          registry=registry)  # fmt: skip
        for user, status in (await self.backup.status()).items():
            failures.labels(user).set(status.failures)
            if status.last_success:
                last.labels(user).set(status.last_success.timestamp())
            if status.last_duration is not None:
                duration.labels(user).set(status.last_duration)
            if status.last_bytes_added is not None:
                added.labels(user).set(status.last_bytes_added)
            if status.last_bytes_processed is not None:
                processed.labels(user).set(status.last_bytes_processed)
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.finish(generate_latest(registry))


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
        ("api/snapshots/([0-9a-f]+)/files", FilesAPIHandler, args),
        ("api/restore", RestoreAPIHandler, args),
        ("api/users", UsersAPIHandler, args),
        ("api/run", RunAPIHandler, args),
        ("metrics", MetricsHandler, args),
    ]
