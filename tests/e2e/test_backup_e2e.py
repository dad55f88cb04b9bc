"""The backup service's cycle on the local platform: real hub (users' groups), emulator (claims,
Jobs, Secret), process kubelet (the Job's pod runs restic) and an S3 server (``rclone serve
s3``). A running user's home is backed up, files are changed and deleted, a restore Job brings
them back under ``~/restored/<time>/``: byte-identical, modes and symlinks kept; then the same
user's stopped volume is backed up again."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from datetime import datetime
from pathlib import Path

import pytest
import pytest_asyncio
from hub_user import launch
from kubernetes_asyncio import client as k8s_client

from jupyterhub_platform.devcluster.procs import wait_for
from jupyterhub_platform.services.backup.app import BackupApp, job_name
from jupyterhub_platform.services.backup.manifests import JobSettings, restore_job
from jupyterhub_platform.services.backup.restic import snapshot_dirname
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


async def test_backup_and_restore_a_running_then_a_stopped_users_home(
    platform, hub, k8s, batch, s3
):
    alice = hub("alice")
    await launch(alice)
    claim = next(
        p.metadata.name
        for p in (await k8s.list_namespaced_persistent_volume_claim("default")).items
        if (p.metadata.annotations or {}).get("hub.jupyter.org/username") == "alice"
    )
    home = platform.state_dir / "cluster" / "volumes" / "default" / "pvc" / claim
    work = home / "backup-e2e"
    shutil.rmtree(work, ignore_errors=True)
    (work / "deep").mkdir(parents=True)
    (work / "notes.txt").write_text("first\n")
    os.chmod(work / "notes.txt", 0o640)
    (work / "deep" / "data.bin").write_bytes(os.urandom(200_000))
    (work / "run.sh").write_text("#!/bin/sh\n")
    os.chmod(work / "run.sh", 0o755)
    os.symlink("deep/data.bin", work / "link")
    before = tree(work)

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
