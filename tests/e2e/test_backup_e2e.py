"""The backup service on the local platform started with ``backups=True``: the shipped
``backup-restic.yaml`` overlay runs it as a hub-managed service, with a local S3 server
(``rclone serve s3``) and the repository Secret in the emulator. Real hub (users' groups),
emulator (claims, Jobs, Secret), process kubelet (the Job's pod runs restic). A running user's
home is backed up, files are changed and deleted, a restore Job brings them back under
``~/restored/<time>/``: byte-identical, modes and symlinks kept; then the same user's stopped
volume is backed up again. The service's pages and API, with real hub tokens: users reach only
their own backups (403 across users), admins all. In a browser, through the proxy: alice
restores a deleted file with the page's button (CSRF-protected). The snapshot backend: a
VolumeSnapshot of a running user's home, a restore through a PVC from it and a Job, retention."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging.handlers
import os
import re
import shutil
import stat
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import aiohttp
import psutil
import pytest
import pytest_asyncio
import yaml
from audit_lines import audit_events
from browser import goto, sign_in_at_the_idp
from hub_user import core_api, launch, local_platform
from jupyterhub.services.auth import HubOAuth
from kubernetes_asyncio import client as k8s_client
from platform_values import metric_values

from jupyterhub_platform.chart.values import load_values_file, policy_in_values
from jupyterhub_platform.devcluster.backup_store import SECRET_NAME
from jupyterhub_platform.devcluster.platform import shipped_values_dir
from jupyterhub_platform.devcluster.procs import ManagedProcess, free_port, wait_for
from jupyterhub_platform.observability.audit import AUDIT_LOGGER
from jupyterhub_platform.services.backup.app import BackupApp, job_name
from jupyterhub_platform.services.backup.manifests import JobSettings, backup_job, restore_job
from jupyterhub_platform.services.backup.restic import RestoreRequestError, snapshot_dirname
from jupyterhub_platform.services.backup.snapshot_files import listing_name
from jupyterhub_platform.services.backup.volume_snapshots import volume_snapshot
from tests.backup.backup_fixtures import require_backup_programs, tree

pytestmark = [pytest.mark.e2e, pytest.mark.jh55_only, pytest.mark.asyncio(loop_scope="session")]

SECRET = SECRET_NAME


@pytest.fixture(scope="module")
def policy_file(tmp_path_factory) -> Path:
    """The shipped policy, with platform-admins (bob) opted out of backups."""
    shipped = policy_in_values(load_values_file(shipped_values_dir() / "values.yaml")).text
    policy = yaml.safe_load(shipped)
    policy["backup"] = {"opt_out_groups": ["platform-admins"]}
    path = tmp_path_factory.mktemp("policy") / "policy.yaml"
    path.write_text(yaml.safe_dump(policy, sort_keys=False))
    return path


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def platform(z2jh_chart):
    """This module's platform, with the backup service and its local store (the other e2e
    modules' platform runs neither)."""
    require_backup_programs()
    async with local_platform(z2jh_chart, "backup-", backups=True) as running:
        yield running


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def k8s(platform):
    async with core_api(platform) as api:
        yield api


@pytest.fixture(scope="module")
def s3(platform) -> str:
    """The platform's repository base (``BackupApp.repository``)."""
    return platform.backup_store.repository


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def batch(k8s):
    """BatchV1Api on the emulator (the platform put the repository Secret there)."""
    return k8s_client.BatchV1Api(k8s.api_client)


def _service_argv(platform, s3, policy: Path) -> list[str]:
    return [
        f"--BackupApp.api_url={platform.hub_api_url}",
        f"--BackupApp.api_token={platform.admin_token}",
        f"--BackupApp.repository={s3}",
        f"--BackupApp.secret_name={SECRET}",
        f"--PolicySource.policy_file={policy}",
        f"--KubeSource.kubeconfig={platform.cluster.kubeconfig_path}",
        "--KubeSource.namespace=default",
    ]


def _service(platform, s3, policy: Path) -> BackupApp:
    app = BackupApp()
    app.initialize(_service_argv(platform, s3, policy))
    return app


async def _finished(batch, name: str) -> str:
    async def done():
        job = await batch.read_namespaced_job_status(name, "default")
        for c in job.status.conditions or []:
            if c.type in ("Complete", "Failed") and c.status == "True":
                return c.type
        return None

    return await wait_for(done, timeout=180, interval=0.5, what=f"Job {name} to finish")


async def _unfinished_backups(batch, claim: str) -> list[str]:
    selector = f"backup.jupyterhub-platform/claim={claim},backup.jupyterhub-platform/kind=backup"
    jobs = (await batch.list_namespaced_job("default", label_selector=selector)).items
    return [
        j.metadata.name
        for j in jobs
        if not any(c.type in ("Complete", "Failed") and c.status == "True"
                   for c in j.status.conditions or [])
    ]  # fmt: skip


def _snapshots(platform, claim: str) -> list[dict]:
    """What restic itself lists in the claim's repository on the platform's store."""
    store = platform.backup_store
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/tmp"),
        "RESTIC_REPOSITORY": f"{store.repository}/{claim}",
        "RESTIC_PASSWORD": store.password,
        "AWS_ACCESS_KEY_ID": store.access_key,
        "AWS_SECRET_ACCESS_KEY": store.secret_key,
    }
    out = subprocess.run(
        ["restic", "snapshots", "--json", "--quiet"], env=env, capture_output=True,
        text=True, timeout=60, start_new_session=True, check=True,
    ).stdout  # fmt: skip
    return json.loads(out)


async def _backup_cycle(platform, s3, policy, batch, claim: str) -> None:
    created = await _service(platform, s3, policy).cycle()
    mine = [n for n in created if n.startswith(job_name("backup", claim, _EPOCH)[:-15])]
    assert len(mine) == 1, created
    assert not [n for n in created if "claim-bob" in n]  # bob's platform-admins opts out
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
    platform, hub, k8s, batch, s3, policy_file
):
    alice = hub("alice")
    await launch(alice)
    claim, home = await _claim_and_home(platform, k8s, "alice")
    work = home / "backup-e2e"
    before = _work_tree(work)

    await _backup_cycle(platform, s3, policy_file, batch, claim)  # the server is running
    (snapshot,) = _snapshots(platform, claim)
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
    await _backup_cycle(platform, s3, policy_file, batch, claim)  # the stopped user's volume
    (latest,) = _snapshots(platform, claim)  # retention keeps one a day: the newest
    assert latest["id"] != snapshot["id"] and latest["time"] > snapshot["time"]


@contextlib.contextmanager
def _serving(make_app):
    """The pages and API of the service ``make_app()`` builds, served from this process on a
    free port, HubOAuth checking tokens with the platform's hub; ``(base URL, log records)``."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("JUPYTERHUB_SERVICE_NAME", "backup")
        app = make_app()
        lines = logging.handlers.BufferingHandler(capacity=100_000)
        app.log.addHandler(lines)
        logging.getLogger(AUDIT_LOGGER).addHandler(lines)
        port = free_port()
        server = app.make_web_app().listen(port, "127.0.0.1")
        try:
            yield f"http://127.0.0.1:{port}{app.service_prefix}", lines.buffer
        finally:
            server.stop()
            app.log.removeHandler(lines)
            logging.getLogger(AUDIT_LOGGER).removeHandler(lines)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def backup_web(platform, s3, batch, policy_file):
    """The restic service's pages and API (the scope they require:
    ``access:services!service=backup``, which the shipped values' user role grants)."""
    try:
        with _serving(lambda: _service(platform, s3, policy_file)) as served:
            yield served
    finally:
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
            x["id"]
            for x in sorted(_snapshots(platform, claim), key=lambda x: x["time"], reverse=True)
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
        assert entry["last_bytes_processed"] >= 5000 and entry["last_bytes_added"] > 0

        (work / "kept.txt").unlink()
        status, restore = await call("POST", "api/restore", mine, json=body_of(newest))
        assert status == 201, restore
        assert await _finished(batch, restore["job"]) == "Complete"
        restored = home / "restored" / snapshot_dirname(newest["time"]) / "api-restore"
        assert tree(restored) == before
        audit = [json.loads(r.getMessage()) for r in log if r.name == AUDIT_LOGGER]
        assert ("backup.run", "alice") in {(e["action"], e["subject"]) for e in audit}
        audit = [e for e in audit if e["action"] == "backup.restore"]
        assert [(e["action"], e["actor"], e["subject"], e["details"]) for e in audit] == [
            ("backup.restore", "alice", "alice", {"snapshot": newest["id"],
             "paths": ["/api-restore/kept.txt"], "job": restore["job"]})]  # fmt: skip
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
        figures = metric_values(metrics)
        assert (
            figures['backup_homes{state="ok"}'] >= 1
            and "backup_oldest_success_age_seconds" in figures
        )
        assert figures["backup_last_bytes_added"] > 0  # restic's summary, via the pod
        assert figures["backup_last_bytes_processed"] > 0
        assert "alice" not in metrics  # no user label
        assert (await call("GET", "metrics", mine))[0] == 403  # read:metrics only
        status, page = await call("GET", "", mine)
        assert status == 200 and f'data-id="{newest["id"]}"' in page
        status, page = await call("GET", f"?snapshot={newest['id']}&path=/api-restore", mine)
        assert status == 200 and 'data-path="/api-restore/kept.txt"' in page
    await alice.stop()


async def _alice_claim(platform, hub, k8s) -> str:
    """alice's home claim (her first server creates it), her server stopped."""
    alice = hub("alice")
    await launch(alice)
    await alice.stop()
    return (await _claim_and_home(platform, k8s, "alice"))[0]


async def _api(http, base: str, method: str, path: str, token: str):
    headers = {"Authorization": f"token {token}"}
    async with http.request(method, base + path, headers=headers) as resp:
        body = await resp.text()
        return resp.status, json.loads(body) if "json" in resp.content_type else body


def _mine(names, claim: str) -> list[str]:
    return [n for n in names if n.startswith(job_name("backup", claim, _EPOCH)[:-15])]


async def test_s3_down_fails_the_run_visibly_and_the_next_cycle_succeeds(
    platform, hub, k8s, batch, backup_web
):
    """S3 down while the Job runs: each of its pods fails at once (restic cannot open the
    repository), backoffLimit retries it twice, the Job fails with restic's reason in the admin
    API and the failure metric; the next cycle, S3 back, succeeds and reports its bytes."""
    base, _ = backup_web
    claim = await _alice_claim(platform, hub, k8s)
    token = platform.admin_token
    async with aiohttp.ClientSession() as http:
        await platform.stop_backup_store()
        try:
            status, run = await _api(http, base, "POST", "api/run", token)
            assert status == 201, run
            (job,) = _mine(run["jobs"], claim)
            assert await _finished(batch, job) == "Failed"
        finally:
            await platform.start_backup_store()
        failed = await batch.read_namespaced_job_status(job, "default")
        assert failed.status.failed == 3  # the first run and backoffLimit's 2 retries
        assert failed.status.conditions[-1].reason == "BackoffLimitExceeded"
        status, users = await _api(http, base, "GET", "api/users", token)
        (alice,) = [u for u in users["users"] if u["user"] == "alice"]
        assert job in alice["failed_jobs"]
        # restic's own words, e.g. "Fatal: create repository at s3:http://127.0.0.1:P/backups/
        # claim-alice failed: ... Connection closed by foreign host" (the pod's port forward)
        assert alice["last_failure"].startswith("Fatal: "), alice
        assert f"127.0.0.1:{platform.backup_store.port}" in alice["last_failure"]
        status, metrics = await _api(http, base, "GET", "metrics", token)
        assert metric_values(metrics)["backup_failed_jobs"] >= 1

        status, run = await _api(http, base, "POST", "api/run", token)  # the next cycle
        (retry,) = _mine(run["jobs"], claim)
        assert await _finished(batch, retry) == "Complete"
        status, users = await _api(http, base, "GET", "api/users", token)
        (alice,) = [u for u in users["users"] if u["user"] == "alice"]
        assert alice["last_bytes_processed"] > 0 and job in alice["failed_jobs"]


def _pod_processes(pod) -> list[psutil.Process]:
    """The processes of a running pod's container: the kubelet's child and everything under it."""
    (status,) = pod.status.container_statuses
    top = psutil.Process(int(status.container_id.removeprefix("process://")))
    return [top, *top.children(recursive=True)]


async def _running_pod(k8s, job: str):
    async def running():
        for pod in (await k8s.list_namespaced_pod("default")).items:
            owners = [o.name for o in pod.metadata.owner_references or []]
            statuses = pod.status.container_statuses or []
            if job in owners and statuses and statuses[0].state.running:
                return pod
        return None

    return await wait_for(running, timeout=120, interval=0.2, what=f"a running pod of {job}")


async def test_a_service_restarted_mid_run_starts_no_second_job_and_reports_the_result(
    platform, hub, k8s, batch, s3, policy_file, tmp_path
):
    """The service is a process (``jupyterhub-platform-backup``) stopped while its Job runs (its
    pod held with SIGSTOP, so "mid-run" is certain); a new one sees the Job running, starts no
    second one for the volume, and reports the run once it is done (Kubernetes is the state)."""
    claim = await _alice_claim(platform, hub, k8s)
    token = platform.admin_token
    port = free_port()
    base = f"http://127.0.0.1:{port}/services/backup/"
    env = {**os.environ, "JUPYTERHUB_SERVICE_NAME": "backup",
           "JUPYTERHUB_SERVICE_URL": f"http://127.0.0.1:{port}",
           "JUPYTERHUB_SERVICE_PREFIX": "/services/backup/"}  # fmt: skip
    program = str(Path(sys.executable).parent / "jupyterhub-platform-backup")

    def service(n: int) -> ManagedProcess:
        return ManagedProcess([program, *_service_argv(platform, s3, policy_file)],
                              name=f"backup-{n}", log_path=tmp_path / f"service-{n}.log",
                              env=env)  # fmt: skip

    async def serving(http, proc):
        async def up():
            assert proc.running(), proc.log_tail()
            try:
                async with http.get(base + "health") as resp:
                    return resp.status == 200
            except aiohttp.ClientError:
                return False

        await wait_for(up, timeout=60, interval=0.2, what="the backup service")

    first, second, held = service(1), None, []
    try:
        async with aiohttp.ClientSession() as http:
            await serving(http, first)
            status, run = await _api(http, base, "POST", "api/run", token)
            assert status == 201, run
            # the service's start-up round may have started it before the run did: either way,
            # exactly one backup Job of the volume runs
            (job,) = await _unfinished_backups(batch, claim)
            assert _mine(run["jobs"], claim) in ([job], [])
            held = _pod_processes(await _running_pod(k8s, job))
            for proc in held:
                proc.suspend()  # restic (or the script before it) stops where it is
            assert await first.astop() is not None  # the service is gone, its Job runs on

            second = service(2)
            await serving(http, second)
            status, run = await _api(http, base, "POST", "api/run", token)
            assert status == 201 and _mine(run["jobs"], claim) == [], run  # no duplicate
            assert (
                "backup of alice skipped: a Job for this volume is still running"
                in (tmp_path / "service-2.log").read_text()
            )
            status, users = await _api(http, base, "GET", "api/users", token)
            (alice,) = [u for u in users["users"] if u["user"] == "alice"]
            assert alice["running"] is True

            for proc in held:
                proc.resume()
            held = []
            assert await _finished(batch, job) == "Complete"
            done = await batch.read_namespaced_job_status(job, "default")
            status, users = await _api(http, base, "GET", "api/users", token)
            (alice,) = [u for u in users["users"] if u["user"] == "alice"]
            assert alice["running"] is False
            assert alice["last_success"] == done.status.completion_time.isoformat()
            assert alice["last_bytes_processed"] > 0
            jobs = (await batch.list_namespaced_job(
                "default", label_selector=f"backup.jupyterhub-platform/claim={claim}")).items  # fmt: skip
            started = [j.metadata.name for j in jobs if j.metadata.creation_timestamp >=
                       done.metadata.creation_timestamp and j.metadata.labels.get(
                           "backup.jupyterhub-platform/kind") == "backup"]  # fmt: skip
            assert started == [job]  # one Job for the volume across both services
    finally:
        for proc in held:
            with contextlib.suppress(psutil.Error):
                proc.resume()
        for proc in (first, second):
            if proc is not None:
                await proc.astop()


async def test_a_user_restores_a_deleted_file_from_the_page_in_a_browser(
    platform, hub, k8s, batch, browser, tmp_path
):
    """alice signs in at the IdP's form and starts her server in Chromium; a file of hers is
    backed up (an admin's ``POST api/run`` to the hub-managed service, through the proxy) and
    deleted; on /services/backup/ she picks the snapshot, the folder and the file, confirms
    where it goes, and finds it byte-identical in ``~/restored/<time>/``. A POST without the
    page's XSRF token, or with a wrong one, creates no Job."""
    service = f"{platform.hub_url}/services/backup/"
    hub("alice")  # her server is stopped after the test
    context = await browser.new_context()
    page = await context.new_page()
    try:
        await sign_in_at_the_idp(page, platform.hub_url, "alice")
        await page.wait_for_url(re.compile(r"/hub/spawn"))
        form = page.get_by_role("group", name="Choose a server profile")
        await form.get_by_role("radio", name="JupyterLab").click()
        await page.get_by_role("button", name="Start").click()
        await page.wait_for_url(re.compile(r"/user/alice/"), timeout=120_000, wait_until="commit")

        claim, home = await _claim_and_home(platform, k8s, "alice")
        work = home / "browser-restore"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        data = os.urandom(300_000)
        (work / "thesis.bin").write_bytes(data)
        os.chmod(work / "thesis.bin", 0o640)
        before = tree(work)
        admin = {"Authorization": f"token {platform.admin_token}"}
        async with aiohttp.ClientSession() as http:
            async with http.post(service + "api/run", headers=admin) as resp:
                assert resp.status == 201, await resp.text()
                jobs = (await resp.json())["jobs"]
        (job,) = [n for n in jobs if n.startswith(job_name("backup", claim, _EPOCH)[:-15])]
        assert await _finished(batch, job) == "Complete"
        (work / "thesis.bin").unlink()
        newest = max(_snapshots(platform, claim), key=lambda s: s["time"])
        dirname = snapshot_dirname(newest["time"])
        shutil.rmtree(home / "restored" / dirname, ignore_errors=True)

        await goto(page, service)  # HubOAuth: through the hub and back, no confirmation
        row = page.locator(f'tr.snapshot[data-id="{newest["id"]}"]')
        await row.get_by_role("link", name="browse").click()
        await page.get_by_role("link", name="browser-restore/").click()
        file_row = page.locator('tr.file[data-path="/browser-restore/thesis.bin"]')
        await file_row.get_by_role("link", name="restore…").click()
        confirm = page.locator("#confirm-restore")
        assert f"~/restored/{dirname}/" in await confirm.inner_text()
        assert await page.locator("#confirm-target").inner_text() == f"~/restored/{dirname}/"

        # the same form without the page's XSRF token, or with a forged one: refused, no Job
        jobs_before = len((await batch.list_namespaced_job("default")).items)
        form = {"snapshot": newest["id"], "path": "/browser-restore/thesis.bin", "user": "alice"}
        for extra in ({}, {"_xsrf": "2|forged|token"}):
            resp = await context.request.post(service + "restore", form={**form, **extra},
                                              max_redirects=0)  # fmt: skip
            assert resp.status == 403, (extra, resp.status, await resp.text())
        assert len((await batch.list_namespaced_job("default")).items) == jobs_before

        await confirm.get_by_role("button", name="Restore").click()
        result = page.locator('#restore[data-state="succeeded"]')
        await result.wait_for(timeout=180_000)  # the page reloads itself while the Job runs
        assert await page.locator("#target").inner_text() == f"~/restored/{dirname}/"
        assert "/browser-restore" in await page.locator("h2").first.inner_text()  # her folder
        await page.screenshot(path=str(tmp_path / "backup-restore.png"), full_page=True)
        html = await page.content()
        store = platform.backup_store
        for secret in (store.password, store.secret_key, platform.admin_token):
            assert secret not in html
        assert "Traceback" not in html
    finally:
        await context.close()
    restored = home / "restored" / dirname / "browser-restore"
    assert tree(restored) == before
    assert (restored / "thesis.bin").read_bytes() == data
    assert not (work / "thesis.bin").exists()  # restored beside, never in place
    hub_log = (platform.logs_dir / "hub.log").read_text()
    (event,) = audit_events(hub_log, "backup.restore", subject="alice", snapshot=newest["id"])
    assert event["actor"] == "alice" and event["details"]["paths"] == [
        "/browser-restore/thesis.bin"
    ]
    assert event["details"]["job"].startswith("restore-")


def _snapshot_service(platform, policy: Path) -> BackupApp:
    app = BackupApp()
    app.initialize(
        [
            f"--BackupApp.api_url={platform.hub_api_url}",
            f"--BackupApp.api_token={platform.admin_token}",
            "--BackupApp.backend=snapshot",
            f"--PolicySource.policy_file={policy}",
            f"--KubeSource.kubeconfig={platform.cluster.kubeconfig_path}",
            "--KubeSource.namespace=default",
        ]
    )
    return app


async def _ready_snapshot(app: BackupApp, claim: str, name: str) -> dict:
    async def ready():
        return next((s for s in await app.snapshots(claim) if s["id"] == name and s["ready"]), None)

    return await wait_for(ready, timeout=60, interval=0.2, what=f"snapshot {name} ready")


async def test_snapshot_backend_snapshots_a_running_home_and_restores_it(
    platform, hub, k8s, policy_file
):
    app = _snapshot_service(platform, policy_file)
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
    await _browse_a_snapshot_through_the_service(platform, k8s, policy_file, claim, snapshot,
                                                 before)  # fmt: skip

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

    async def listing_gone():  # its ConfigMap went with the snapshot (its ownerReference)
        names = {c.metadata.name for c in (await k8s.list_namespaced_config_map("default")).items}
        return listing_name(snapshot["id"]) not in names

    await wait_for(listing_gone, timeout=30, interval=0.2, what="the listing's ConfigMap gone")
    await alice.stop()


async def _browse_a_snapshot_through_the_service(platform, k8s, policy_file, claim, snapshot,
                                                 before):  # fmt: skip
    """With real hub tokens: alice's first browse of her snapshot starts its listing (202, the
    page says so and reloads), then lists the directory as it was; the listing is kept in a
    ConfigMap owned by the snapshot, its claim gone. Another user's snapshot is absent for her;
    an admin browses hers. A snapshot that failed shows its error in the list, and browse and
    restore of it are refused (409)."""
    failed = volume_snapshot(job_name("snapshot", claim, datetime.now()), "alice", claim,
                             "no-such-class")  # fmt: skip
    custom = k8s_client.CustomObjectsApi(k8s.api_client)
    await custom.create_namespaced_custom_object(
        "snapshot.storage.k8s.io", "v1", "default", "volumesnapshots", failed
    )
    bad = failed["metadata"]["name"]
    foreign = f"{bad}-mallory"
    await custom.create_namespaced_custom_object(
        "snapshot.storage.k8s.io",
        "v1",
        "default",
        "volumesnapshots",
        volume_snapshot(foreign, "mallory", claim, ""),
    )
    admin = platform.admin_token
    shared = HubOAuth.initialized()  # backup_web's, if it ran: the same hub's
    with contextlib.ExitStack() as stack:
        if not shared:
            stack.callback(HubOAuth.clear_instance)
        base, _ = stack.enter_context(_serving(lambda: _snapshot_service(platform, policy_file)))
        async with aiohttp.ClientSession() as http:
            alice = (await _user_token(http, platform, "alice"))["Authorization"][6:]
            files = f"api/snapshots/{snapshot['id']}/files?path=/snapshot-e2e"

            async def failed_listed():
                status, listed = await _api(http, base, "GET", "api/snapshots", alice)
                assert status == 200, listed
                states = {s["id"]: s["state"] for s in listed["snapshots"]}
                return listed if states.get(bad, "").startswith("failed") else None

            listed = await wait_for(failed_listed, timeout=30, interval=0.2, what="failed state")
            states = {s["id"]: s["state"] for s in listed["snapshots"]}
            assert states[snapshot["id"]] == "ready"
            assert "no-such-class" in states[bad] and "not found" in states[bad]
            status, page = await _api(http, base, "GET", "", alice)
            assert f'data-id="{bad}" data-state="failed"' in page and "no-such-class" in page
            for method, path in (("GET", f"api/snapshots/{bad}/files"), ("POST", "api/restore")):
                kwargs = {"json": {"snapshot": bad}} if method == "POST" else {}
                status, refused = await _call(http, base, method, path, alice, **kwargs)
                assert status == 409 and "failed" in refused and "no-such-class" in refused, path

            status, page = await _api(http, base, "GET", f"?snapshot={snapshot['id']}", alice)
            assert status == 200 and 'id="listing" data-state="preparing"' in page
            assert "provisioning a volume from it can take minutes" in page
            assert "location.reload" in page

            async def browsed():
                status, body = await _api(http, base, "GET", files, alice)
                assert status in (200, 202), body
                return body if status == 200 else None

            body = await wait_for(browsed, timeout=120, interval=0.5, what="the listing")
            seen = {
                f["name"]: (f["type"], f["permissions"], f.get("target")) for f in body["files"]
            }
            want = {name: entry for name, entry in before.items() if "/" not in name}
            assert set(seen) == set(want), (seen, want)
            assert seen["dangling"] == ("symlink", "lrwxrwxrwx", "nowhere")
            assert all(seen[n][1][1:] == stat.filemode(e[-1])[1:] for n, e in want.items())
            status, page = await _api(http, base, "GET", f"?snapshot={snapshot['id']}"
                                      "&path=/snapshot-e2e", alice)  # fmt: skip
            assert status == 200 and 'data-path="/snapshot-e2e/notes.txt"' in page
            assert "restore this folder" in page and 'id="listing"' not in page

            # alice never reaches another user's snapshot: one labelled as mallory's (of
            # alice's claim, even) is absent for her (404), mallory's view refused (403); an
            # admin browses alice's
            assert foreign not in {s["id"] for s in listed["snapshots"]}
            for path, refused in ((f"api/snapshots/{foreign}/files", 404),
                                  (f"api/snapshots/{foreign}/files?user=mallory", 403),
                                  (f"?snapshot={foreign}", 404),
                                  (f"?snapshot={foreign}&user=mallory", 403)):  # fmt: skip
                status, said = await _call(http, base, "GET", path, alice)
                assert status == refused, (path, said)
            assert (await _api(http, base, "GET", f"{files}&user=alice", admin))[0] == 200
    name = listing_name(snapshot["id"])
    kept = await k8s.read_namespaced_config_map(name, "default")
    (owner,) = kept.metadata.owner_references
    assert (owner.kind, owner.name) == ("VolumeSnapshot", snapshot["id"]) and kept.binary_data
    claims = {p.metadata.name for p in
              (await k8s.list_namespaced_persistent_volume_claim("default")).items}  # fmt: skip
    assert name not in claims  # the listing claim (a whole copy) went once stored
    for name in (bad, foreign):
        await custom.delete_namespaced_custom_object(
            "snapshot.storage.k8s.io", "v1", "default", "volumesnapshots", name
        )


async def _call(http, base: str, method: str, path: str, token: str, **kwargs):
    headers = {"Authorization": f"token {token}"}
    async with http.request(method, base + path, headers=headers, **kwargs) as resp:
        return resp.status, await resp.text()
