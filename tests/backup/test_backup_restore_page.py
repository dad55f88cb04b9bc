"""The page's restore button, pure parts: what a restore Job's status and log become (running,
succeeded into a directory, failed with a reason), what the page renders for each (escaped, no
trace), the confirmation naming ``~/restored/<time>/``; the local store's Secret (strictly valid
Kubernetes) and values; and the shipped ``backup-restic.yaml`` and ``backup-snapshots.yaml``
overlays keeping the culler's port and network policy, which helm's list replacement would
otherwise drop."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest
from tornado.web import HTTPError

from jupyterhub_platform.chart.values import get_path, load_values_file
from jupyterhub_platform.devcluster import cli
from jupyterhub_platform.devcluster.backup_store import BackupStore
from jupyterhub_platform.devcluster.platform import LocalPlatform, shipped_values_dir
from jupyterhub_platform.services.backup.manifests import JobSettings, restore_job
from jupyterhub_platform.services.backup.pages import PageHandler, parent_dir
from jupyterhub_platform.services.backup.restic import restore_target
from jupyterhub_platform.services.backup.snapshot_files import PREPARING
from jupyterhub_platform.services.backup.views import RestoreState, restore_state
from jupyterhub_platform.services.common.web import TEMPLATES

SETTINGS = JobSettings(image="restic", repository="s3:http://s3/b", secret_name="s")
TIME = "2026-12-02T09:33:04.123456789Z"
SNAPSHOT = {"id": "ab12cd34" * 8, "short_id": "ab12cd34", "time": TIME, "tags": []}


def _job(conditions=None) -> dict:
    job = restore_job("restore-claim-alice-1", "alice", "claim-alice", None, SETTINGS,
                      snapshot_id="ab12cd34", snapshot_dir="2026-12-02T09-33-04Z", paths=[])  # fmt: skip
    job["status"] = {"startTime": "2026-12-02T10:00:00Z", "conditions": conditions or []}
    return job


FAILED = [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
           "message": "Job has reached the specified backoff limit"}]  # fmt: skip


def test_a_running_restore():
    assert restore_state(_job(), None) == RestoreState("restore-claim-alice-1", "running")


def test_a_finished_restore_names_the_directory_the_script_picked():
    log = "restoring <Snapshot ab12cd34> to /data/restored/2026-12-02T09-33-04Z-1\n" \
          "restored into /data/restored/2026-12-02T09-33-04Z-1\n"  # fmt: skip
    done = _job([{"type": "Complete", "status": "True"}])
    assert restore_state(done, log) == RestoreState(
        "restore-claim-alice-1", "succeeded", target="~/restored/2026-12-02T09-33-04Z-1/"
    )
    local = "restored into /srv/kubelet/pvc/claim-alice/restored/2026-12-02T09-33-04Z\n"
    assert restore_state(done, local).target == "~/restored/2026-12-02T09-33-04Z/"
    assert restore_state(done, None).target == ""  # no log (no pods/log permission): no guess


def test_a_failed_restore_says_why_in_words():
    log = "Fatal: unable to open config file: Stat: connection refused\n"
    state = restore_state(_job(FAILED), log)
    assert state.state == "failed"
    assert state.reason == (
        "Job has reached the specified backoff limit; restic said: Fatal: unable to open "
        "config file: Stat: connection refused"
    )
    assert restore_state(_job(FAILED), None).reason == "Job has reached the specified backoff limit"


def test_the_confirmation_says_where_the_restore_goes():
    assert PageHandler.confirmation([SNAPSHOT], SNAPSHOT["id"], None) is None
    assert PageHandler.confirmation([SNAPSHOT], SNAPSHOT["id"], "/notes/a.txt") == {
        "path": "/notes/a.txt", "time": TIME, "target": "~/restored/2026-12-02T09-33-04Z/"
    }  # fmt: skip
    assert restore_target(TIME) == "~/restored/2026-12-02T09-33-04Z/"


@pytest.mark.parametrize(
    ("snapshot_id", "path", "message"),
    [
        ("ab12cd34" * 8, "/a/../../etc/passwd", "must stay inside the home"),
        ("ff" * 32, "/a.txt", "is not one of the listed backups"),
    ],
)
def test_a_bad_confirmation_is_refused_naming_the_field(snapshot_id, path, message):
    with pytest.raises(HTTPError) as refused:
        PageHandler.confirmation([SNAPSHOT], snapshot_id, path)
    assert refused.value.status_code == 400 and message in refused.value.log_message


def _page(**kwargs) -> str:
    args = dict(
        user="alice", me="alice", admin=False, claim="claim-alice", snapshots=[SNAPSHOT],
        snapshot=SNAPSHOT["id"], path="/notes", files=[], status=[],
        prefix="/services/backup/", confirm=None, restore=None, xsrf="2|token|value",
        listing=None,
    )  # fmt: skip
    args.update(kwargs)
    return TEMPLATES.load("backup/templates/backup.html").generate(**args).decode()


def test_the_page_posts_the_confirmed_restore_with_its_xsrf_token():
    confirm = PageHandler.confirmation([SNAPSHOT], SNAPSHOT["id"], "/notes/a.txt")
    html = _page(confirm=confirm)
    form = html[html.index('<form id="confirm-restore"') : html.index("</form>")]
    assert 'method="post" action="/services/backup/restore"' in form
    assert '<input type="hidden" name="_xsrf" value="2|token|value">' in form
    assert '<input type="hidden" name="path" value="/notes/a.txt">' in form
    assert '<code id="confirm-target">~/restored/2026-12-02T09-33-04Z/</code>' in form
    assert "restore this folder" in html and "restore the whole home" in html


def test_the_page_shows_each_state_of_a_restore_escaped():
    running = _page(restore=RestoreState("restore-1", "running"))
    assert 'data-state="running"' in running and "location.reload" in running
    done = _page(restore=RestoreState("restore-1", "succeeded", target="~/restored/T/"))
    assert '<code id="target">~/restored/T/</code>' in done and "location.reload" not in done
    failed = _page(restore=RestoreState("restore-1", "failed", reason="<script>x</script>"))
    assert 'data-state="failed"' in failed
    assert "&lt;script&gt;x&lt;/script&gt;" in failed and "<script>x" not in failed


def test_the_local_store_secret_validates_strictly_and_its_values_name_the_store(tmp_path):
    store = BackupStore.create(tmp_path, 9999, lambda key: f"generated-{key}")
    kubernetes_validate.validate(store.secret(), "1.30", strict=True)
    assert store.secret()["metadata"]["name"] == "backup-restic"
    service = store.values(Path("/venv/bin"), "/usr/bin/restic", tmp_path / "kubeconfig.yaml")
    backup = service["hub"]["services"]["backup"]
    assert backup["command"] == [
        "/venv/bin/jupyterhub-platform-backup",
        "--BackupApp.repository=s3:http://127.0.0.1:9999/backups",
        "--BackupApp.restic=/usr/bin/restic",
    ]
    assert backup["environment"] == {"KUBECONFIG": str(tmp_path / "kubeconfig.yaml")}
    assert "generated" not in repr(service)  # keys and password only in the Secret
    argv = store.argv(tmp_path / "rclone")
    assert (
        argv[:3] == [str(tmp_path / "rclone"), "serve", "s3"]
        and (tmp_path / "data" / "backups").is_dir()
    )


PROXY_PODS = {"podSelector": {"matchLabels": {"component": "proxy"}}}


@pytest.mark.parametrize(
    ("overlay_file", "backend"),
    [("backup-restic.yaml", "restic"), ("backup-snapshots.yaml", "snapshot")],
)
def test_the_overlay_keeps_the_culler_reachable(overlay_file, backend):
    """helm replaces lists: the overlay's ports and ingress rules must repeat values.yaml's."""
    main = load_values_file(shipped_values_dir() / "values.yaml")
    overlay = load_values_file(shipped_values_dir() / overlay_file)
    ports = get_path(overlay, "hub.service.extraPorts")
    assert all(p in ports for p in get_path(main, "hub.service.extraPorts"))
    assert {"name": "backup", "port": 10102, "targetPort": 10102} in ports
    rules = get_path(overlay, "hub.networkPolicy.ingress")
    assert all(r in rules for r in get_path(main, "hub.networkPolicy.ingress"))
    (backup_rule,) = [r for r in rules if {"port": 10102} in r["ports"]]
    assert backup_rule == {"ports": [{"port": 10102}], "from": [PROXY_PODS]}  # the proxy only
    service = get_path(overlay, "hub.services.backup")
    assert (
        service["url"].endswith(":10102")
        and "10102" in service["environment"]["JUPYTERHUB_SERVICE_BIND_URL"]
    )
    assert get_path(overlay, "hub.loadRoles.backup.services") == ["backup"]
    options = [a for a in service["command"][1:] if a.startswith("--BackupApp.backend=")]
    assert options == ([f"--BackupApp.backend={backend}"] if backend != "restic" else [])


def test_dev_runs_backups_only_when_asked(tmp_path):
    """``./run dev`` leaves backups off (restic is not in the quick start); ``--backups`` turns
    them on and the banner names the page."""
    assert cli.parse_args([]).backups is False
    assert cli.parse_args(["--backups"]).backups is True
    platform = LocalPlatform(tmp_path, backups=True)
    assert platform.values_files[-1].name == "backup-restic.yaml"
    assert "/services/backup/" not in cli.banner(platform, 1.0)  # not started: no store yet
    platform.public_url = "http://127.0.0.1:8000"
    platform.backup_store = BackupStore.create(tmp_path, 9999, lambda key: key)
    assert "Backups: http://127.0.0.1:8000/services/backup/" in cli.banner(platform, 1.0)
    assert [f.name for f in LocalPlatform(tmp_path).values_files] == ["values.yaml"]


def test_after_a_restore_the_page_shows_the_folder_it_was_chosen_in():
    assert parent_dir("/notes/a.txt") == "/notes"
    assert parent_dir("/notes/") == "/"
    assert parent_dir("/") == "/"


def test_the_page_shows_a_listing_being_prepared_or_failed_and_each_snapshots_state():
    preparing = _page(listing={"state": "preparing", "message": PREPARING})
    assert 'id="listing" data-state="preparing"' in preparing and "location.reload" in preparing
    assert "provisioning a volume from it can take minutes" in preparing
    assert 'id="files"' not in preparing  # no directory until the listing is there
    failed = _page(listing={"state": "failed", "message": "<b>too large</b>"})
    assert 'data-state="failed"' in failed and "location.reload" not in failed
    assert "&lt;b&gt;too large&lt;/b&gt;" in failed and "<b>too large" not in failed
    states = [
        {**SNAPSHOT, "id": "s-ready", "state": "ready"},
        {**SNAPSHOT, "id": "s-pending", "state": "in progress"},
        {**SNAPSHOT, "id": "s-failed", "state": "failed: driver <down>"},
    ]
    html = _page(snapshots=states, snapshot="", listing=None)
    rows = {s["id"]: html[html.index(f'data-id="{s["id"]}"') :].split("</tr>")[0] for s in states}
    assert "browse</a>" in rows["s-ready"] and 'data-state="ready"' in rows["s-ready"]
    assert "browse</a>" not in rows["s-pending"] and "in progress" in rows["s-pending"]
    assert 'data-state="failed"' in rows["s-failed"] and "driver &lt;down&gt;" in rows["s-failed"]
    assert "browse</a>" not in rows["s-failed"]
    assert 'data-state="ready"' in _page(snapshot="")  # restic's snapshots: always complete
