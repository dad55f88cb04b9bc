"""The backup service's cycle on the local platform: real hub (users' groups), emulator (claims,
Jobs, Secret), process kubelet (the Job's pod runs restic) and an S3 server (``rclone serve
s3``). A running user's home is backed up, files are changed and deleted, a restore Job brings
them back under ``~/restored/<time>/``: byte-identical, modes and symlinks kept; then the same
user's stopped volume is backed up again. The service's pages and API, with real hub tokens:
users reach only their own backups (403 across users), admins all. The snapshot backend: a
VolumeSnapshot of a running user's home, a restore through a PVC from it and a Job, retention."""

from __future__ import annotations

import asyncio
import base64
import json
import logging.handlers
import os
import shutil
import subprocess
from datetime import datetime
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
from hub_user import launch
from jupyterhub.services.auth import HubOAuth
from kubernetes_asyncio import client as k8s_client

from jupyterhub_platform.devcluster.procs import free_port, wait_for
from jupyterhub_platform.services.backup.app import BackupApp, job_name
from jupyterhub_platform.services.backup.manifests import JobSettings, backup_job, restore_job
from jupyterhub_platform.services.backup.restic import RestoreRequestError, snapshot_dirname
from tests.backup.backup_fixtures import (
    ACCESS_KEY,
    PASSWORD,
    SECRET_KEY,
    restic_env,
    s3_server,
    tree,
)

pytestmark = [pytest.mark.e2e, pytest.mark.jh55_only, pytest.mark.asyncio(loop_scope="session")]

SECRET = "backup-restic"


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    with s3_server(tmp_path_factory.mktemp("s3")) as server:
        yield server["url"]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def batch(k8s, s3):
    """BatchV1Api, with the repository Secret in the hub's namespace."""
    body = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": SECRET},
        "data": {
            k: base64.b64encode(v.encode()).decode()
            for k, v in (
                ("RESTIC_PASSWORD", PASSWORD),
                ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
                ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
            )
        },  # fmt: skip
    }
    await k8s.create_namespaced_secret("default", body)
    yield k8s_client.BatchV1Api(k8s.api_client)
    await k8s.delete_namespaced_secret(SECRET, "default")


def _service(platform, s3) -> BackupApp:
    app = BackupApp()
    app.initialize(
        [
            f"--BackupApp.api_url={platform.hub_api_url}",
            f"--BackupApp.api_token={platform.admin_token}",
            f"--BackupApp.repository={s3}",
            f"--BackupApp.secret_name={SECRET}",
            "--BackupApp.opt_out_groups=platform-admins",
            f"--KubeSource.kubeconfig={platform.cluster.kubeconfig_path}",
            "--KubeSource.namespace=default",
        ]
    )
    return app


async def _finished(batch, name: str) -> str:
    async def done():
        job = await batch.read_namespaced_job_status(name, "default")
        for c in job.status.conditions or []:
            if c.type in ("Complete", "Failed") and c.status == "True":
                return c.type
        return None

    return await wait_for(done, timeout=180, interval=0.5, what=f"Job {name} to finish")


def _snapshots(s3: str, claim: str) -> list[dict]:
    env = restic_env({"url": s3}, claim, Path(os.environ.get("HOME", "/tmp")))
    out = subprocess.run(
        ["restic", "snapshots", "--json", "--quiet"], env=env, capture_output=True,
        text=True, timeout=60, start_new_session=True, check=True,
    ).stdout  # fmt: skip
    return json.loads(out)


async def _backup_cycle(platform, s3, batch, claim: str) -> None:
    created = await _service(platform, s3).cycle()
    mine = [n for n in created if n.startswith(job_name("backup", claim, _EPOCH)[:-15])]
    assert len(mine) == 1, created
    assert not [n for n in created if "claim-bob" in n]  # bob is in an opted-out group
    assert await _finished(batch, mine[0]) == "Complete"


_EPOCH = datetime(2000, 1, 1)


def _work_tree(work: Path) -> dict:
    """A fresh tree in the home to back up (modes, a binary file, a symlink); its picture."""
    shutil.rmtree(work, ignore_errors=True)
    (work / "deep").mkdir(parents=True)
    (work / "notes.txt").write_text("first\n")
    os.chmod(work / "notes.txt", 0o640)
    (work / "deep" / "data.bin").write_bytes(os.urandom(200_000))
    (work / "run.sh").write_text("#!/bin/sh\n")
    os.chmod(work / "run.sh", 0o755)
    os.symlink("deep/data.bin", work / "link")
    return tree(work)


async def _claim_and_home(platform, k8s, user: str) -> tuple[str, Path]:
    """The user's home claim and the kubelet's directory behind it."""
    claim = next(
        p.metadata.name
        for p in (await k8s.list_namespaced_persistent_volume_claim("default")).items
        if (p.metadata.annotations or {}).get("hub.jupyter.org/username") == user
    )
    return claim, platform.state_dir / "cluster" / "volumes" / "default" / "pvc" / claim


async def test_backup_and_restore_a_running_then_a_stopped_users_home(
    platform, hub, k8s, batch, s3
):
    alice = hub("alice")
    await launch(alice)
    claim, home = await _claim_and_home(platform, k8s, "alice")
    work = home / "backup-e2e"
    before = _work_tree(work)

    await _backup_cycle(platform, s3, batch, claim)  # the server is running
    (snapshot,) = _snapshots(s3, claim)
    (work / "notes.txt").write_text("changed\n")
    (work / "deep" / "data.bin").unlink()
    (work / "link").unlink()

    dirname = snapshot_dirname(snapshot["time"])
    settings = JobSettings(image="restic", repository=s3, secret_name=SECRET)
    name = job_name("restore", claim, datetime.now())
    body = restore_job(name, "alice", claim, None, settings, snapshot_id=snapshot["id"],
                       snapshot_dir=dirname, paths=["backup-e2e"])  # fmt: skip
    await batch.create_namespaced_job("default", body)
    assert await _finished(batch, name) == "Complete"
    restored = home / "restored" / dirname / "backup-e2e"
    assert tree(restored) == before
    assert (work / "notes.txt").read_text() == "changed\n"  # nothing overwritten

    await alice.stop()
    await _backup_cycle(platform, s3, batch, claim)  # the stopped user's volume
    (latest,) = _snapshots(s3, claim)  # retention keeps one a day: the newest
    assert latest["id"] != snapshot["id"] and latest["time"] > snapshot["time"]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def backup_web(platform, s3, batch):
    """The service's pages and API served from this process on a free port, HubOAuth checking
    tokens with the platform's hub (the scope it requires: ``access:services!service=backup``,
    which the shipped values' user role grants); its log lines collected."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("JUPYTERHUB_SERVICE_NAME", "backup")
        app = _service(platform, s3)
        lines = logging.handlers.BufferingHandler(capacity=100_000)
        app.log.addHandler(lines)
        port = free_port()
        server = app.make_web_app().listen(port, "127.0.0.1")
        try:
            yield f"http://127.0.0.1:{port}{app.service_prefix}", lines.buffer
        finally:
            server.stop()
            app.log.removeHandler(lines)
            HubOAuth.clear_instance()  # the process-wide singleton holds this hub's URL and token


async def _user_token(http, platform, name: str, scopes=None) -> dict[str, str]:
    """A real hub API token of ``name`` (the owner's permissions, or ``scopes``), as headers."""
    admin = {"Authorization": f"token {platform.admin_token}"}
    url = f"{platform.hub_api_url}/users/{name}/tokens"
    body = {"note": "backup e2e", **({"scopes": scopes} if scopes else {})}
    async with http.post(url, headers=admin, json=body) as resp:
        assert resp.status == 201, await resp.text()
        return {"Authorization": f"token {(await resp.json())['token']}"}


async def test_a_user_lists_browses_and_restores_only_their_own_backups(
    platform, hub, k8s, batch, s3, backup_web
):
    base, log = backup_web
    alice = hub("alice")
    await launch(alice)
    claim, home = await _claim_and_home(platform, k8s, "alice")
    work = home / "api-restore"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    (work / "kept.txt").write_bytes(os.urandom(5000))
    os.chmod(work / "kept.txt", 0o600)
    before = tree(work)
    admin = {"Authorization": f"token {platform.admin_token}"}
    async with aiohttp.ClientSession() as http:
        mine = await _user_token(http, platform, "alice")

        async def call(method, path, headers, **kwargs):
            async with http.request(method, base + path, headers=headers, **kwargs) as resp:
                body = await resp.text()
                return resp.status, json.loads(body) if "json" in resp.content_type else body

        def body_of(snapshot):
            return {"snapshot": snapshot["id"], "paths": ["/api-restore/kept.txt"]}

        status, run = await call("POST", "api/run", admin)  # an admin triggers a run
        assert status == 201, run
        (job,) = [n for n in run["jobs"] if n.startswith(job_name("backup", claim, _EPOCH)[:-15])]
        assert await _finished(batch, job) == "Complete"
        assert (await call("POST", "api/run", mine))[0] == 403  # users do not

        status, listed = await call("GET", "api/snapshots", mine)
        assert status == 200 and listed["user"] == "alice", listed
        newest = listed["snapshots"][0]
        assert [x["id"] for x in listed["snapshots"]] == [
            x["id"] for x in sorted(_snapshots(s3, claim), key=lambda x: x["time"], reverse=True)
        ]  # what restic itself lists in alice's repository
        status, files = await call(
            "GET", f"api/snapshots/{newest['id']}/files?path=/api-restore", mine
        )
        assert status == 200, files
        assert [(f["name"], f["permissions"]) for f in files["files"]] == [
            ("kept.txt", "-rw-------")
        ]

        # alice (no admin) never reaches another user's backups, nor admins' views
        for method, path, kwargs in (
            ("GET", "api/snapshots?user=bob", {}),
            ("GET", f"api/snapshots/{newest['id']}/files?user=bob", {}),
            ("POST", "api/restore", {"json": {"user": "bob", "snapshot": newest["id"]}}),
            ("GET", "api/users", {}),
            ("GET", "?user=bob", {}),
        ):
            assert (await call(method, path, mine, **kwargs))[0] == 403, path
        # a real token of alice's without the service's access scope
        narrow = await _user_token(http, platform, "alice", ["read:users:name!user=alice"])
        assert (await call("POST", "api/restore", narrow, json=body_of(newest)))[0] == 403
        forged = {"Authorization": "token not-a-token"}
        assert (await call("POST", "api/restore", forged, json=body_of(newest)))[0] == 403

        status, seen = await call("GET", "api/snapshots?user=alice", admin)  # an admin sees all
        assert status == 200 and seen["snapshots"] == listed["snapshots"]
        status, users = await call("GET", "api/users", admin)
        assert status == 200
        (entry,) = [u for u in users["users"] if u["user"] == "alice"]
        assert entry["last_success"] and entry["last_duration_seconds"] is not None

        (work / "kept.txt").unlink()
        status, restore = await call("POST", "api/restore", mine, json=body_of(newest))
        assert status == 201, restore
        assert await _finished(batch, restore["job"]) == "Complete"
        restored = home / "restored" / snapshot_dirname(newest["time"]) / "api-restore"
        assert tree(restored) == before
        audit = [r.getMessage() for r in log if r.getMessage().startswith("audit: restore")]
        assert audit == [f'audit: restore user=alice by=alice snapshot={newest["id"]} '
                         f'paths=["/api-restore/kept.txt"] job={restore["job"]}']  # fmt: skip
        # a Job of alice's volume that has not finished (suspended: it never runs) → 409
        busy = backup_job(job_name("backup", claim, datetime.now()), "alice", claim, None,
                          JobSettings(image="restic", repository=s3, secret_name=SECRET))  # fmt: skip
        busy["spec"]["suspend"] = True
        await batch.create_namespaced_job("default", busy)
        try:
            status, refused = await call("POST", "api/restore", mine, json=body_of(newest))
            assert status == 409 and "is running" in refused, refused
        finally:
            await batch.delete_namespaced_job(busy["metadata"]["name"], "default")
        bad = {"snapshot": "0" * 64, "paths": ["/x"]}
        status, refused = await call("POST", "api/restore", mine, json=bad)
        assert status == 400 and "is not one of alice's" in refused, refused

        status, metrics = await call("GET", "metrics", admin)
        assert status == 200
        assert 'backup_last_success_timestamp_seconds{user="alice"}' in metrics
        assert (await call("GET", "metrics", mine))[0] == 403  # read:metrics only
        status, page = await call("GET", "", mine)
        assert status == 200 and f'data-id="{newest["id"]}"' in page
        status, page = await call("GET", f"?snapshot={newest['id']}&path=/api-restore", mine)
        assert status == 200 and 'data-path="/api-restore/kept.txt"' in page
    await alice.stop()


def _snapshot_service(platform) -> BackupApp:
    app = BackupApp()
    app.initialize(
        [
            f"--BackupApp.api_url={platform.hub_api_url}",
            f"--BackupApp.api_token={platform.admin_token}",
            "--BackupApp.backend=snapshot",
            "--BackupApp.opt_out_groups=platform-admins",
            f"--KubeSource.kubeconfig={platform.cluster.kubeconfig_path}",
            "--KubeSource.namespace=default",
        ]
    )
    return app


async def _ready_snapshot(app: BackupApp, claim: str, name: str) -> dict:
    async def ready():
        return next((s for s in await app.snapshots(claim) if s["id"] == name and s["ready"]), None)

    return await wait_for(ready, timeout=60, interval=0.2, what=f"snapshot {name} ready")


async def test_snapshot_backend_snapshots_a_running_home_and_restores_it(platform, hub, k8s):
    app = _snapshot_service(platform)
    batch = k8s_client.BatchV1Api(k8s.api_client)
    alice = hub("alice")
    await launch(alice)
    claim, home = await _claim_and_home(platform, k8s, "alice")
    work = home / "snapshot-e2e"
    _work_tree(work)
    os.symlink("nowhere", work / "dangling")
    before = tree(work)

    created = await app.cycle()  # the server is running; bob is in an opted-out group
    mine = [n for n in created if n.startswith(job_name("snapshot", claim, _EPOCH)[:-15])]
    assert len(mine) == 1 and not [n for n in created if "claim-bob" in n], created
    snapshot = await _ready_snapshot(app, claim, mine[0])
    (work / "notes.txt").write_text("changed\n")
    (work / "deep" / "data.bin").unlink()
    (work / "link").unlink()

    name = await app.restore("alice", claim, snapshot["id"], ["/snapshot-e2e"])
    assert await _finished(batch, name) == "Complete"
    restored = home / "restored" / snapshot_dirname(snapshot["time"]) / "snapshot-e2e"
    assert tree(restored) == before
    assert (work / "notes.txt").read_text() == "changed\n"  # nothing overwritten
    with pytest.raises(RestoreRequestError, match="is not one of alice's"):
        await app.restore("alice", claim, "snapshot-of-someone-else", [])

    # the next cycles: the restore claim goes (its Job finished); retention keeps one a day,
    # the newest ready one
    await asyncio.sleep(1.1)  # snapshot names carry the second: a new one, not the first's
    (second,) = [n for n in await app.cycle() if n.startswith(mine[0][:-15])]
    claims = [p.metadata.name for p in
              (await k8s.list_namespaced_persistent_volume_claim("default")).items]  # fmt: skip
    assert name not in claims and claim in claims
    await _ready_snapshot(app, claim, second)
    await app.cycle()  # retention: one a day, the newest ready one (a same-second name: skipped)
    listed = [s["id"] for s in await app.snapshots(claim)]
    assert second in listed and snapshot["id"] not in listed, listed
    await alice.stop()
