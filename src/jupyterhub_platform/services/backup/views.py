"""What the backup pages and API show, as plain data (pure): restic's JSON and the Jobs' status.

``restic snapshots --json`` and ``restic ls --json`` output become snapshot and file lists; the
backup Jobs (Kubernetes is the only state) become each user's last success, its duration and the
failed runs still on record (finished Jobs expire after ``ttlSecondsAfterFinished``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import PurePosixPath

from .manifests import KIND_LABEL, USER_ANNOTATION
from .restic import snapshot_path


def snapshot_list(output: str) -> list[dict]:
    """``restic snapshots --json``, newest first: id, time, paths, tags (nothing else)."""
    snapshots = [
        {"id": s["id"], "short_id": s.get("short_id", s["id"][:8]), "time": s["time"],
         "tags": s.get("tags") or [], "hostname": s.get("hostname", "")}
        for s in json.loads(output or "[]")
    ]  # fmt: skip
    return sorted(snapshots, key=lambda s: s["time"], reverse=True)


def directory_listing(output: str, directory: str) -> list[dict]:
    """The entries directly inside ``directory`` (``/`` = the home) of ``restic ls --json``."""
    nodes = []
    for line in output.splitlines():
        node = json.loads(line) if line.strip() else {}
        if node.get("struct_type") != "node" or "path" not in node:
            continue
        nodes.append(
            {"name": node["name"], "path": node["path"], "type": node.get("type", ""),
             "size": node.get("size"), "mtime": node.get("mtime"),
             "permissions": node.get("permissions", "")}
        )  # fmt: skip
    return directory_entries(nodes, directory)


def directory_entries(nodes: Iterable[dict], directory: str) -> list[dict]:
    """The entries (``path`` from the snapshot's root, ``name``, ``type``, ...) directly inside
    ``directory``, folders first: a browse view, whichever backend listed them."""
    parent = PurePosixPath(snapshot_path(directory))
    entries = []
    for node in nodes:
        path = PurePosixPath(node["path"])
        if path.parent != parent or path == parent:
            continue
        entries.append({**node, "path": str(path)})
    return sorted(entries, key=lambda e: (e["type"] != "dir", e["name"]))


@dataclass
class UserStatus:
    """One user's backups as the Jobs on record show them."""

    user: str
    last_success: datetime | None = None
    last_duration: float | None = None
    """Seconds the last successful backup Job ran."""
    failures: int = 0
    running: bool = False
    failed_jobs: list[str] = field(default_factory=list)
    last_bytes_added: int | None = None
    """What the last successful backup added to the repository (restic's ``data_added``)."""
    last_bytes_processed: int | None = None
    """What it read from the home (restic's ``total_bytes_processed``)."""
    last_failure: str | None = None
    """Why the newest failed Job failed: its last pod's termination message (the log's end)."""
    _last_failed_at: datetime | None = field(default=None, repr=False)

    def as_json(self) -> dict:
        return {
            "user": self.user,
            "last_success": self.last_success.isoformat() if self.last_success else None,
            "last_duration_seconds": self.last_duration,
            "failures": self.failures,
            "failed_jobs": self.failed_jobs,
            "running": self.running,
            "last_bytes_added": self.last_bytes_added,
            "last_bytes_processed": self.last_bytes_processed,
            "last_failure": self.last_failure,
        }


@dataclass(frozen=True)
class FleetFigures:
    """Every home's backups in a few numbers (metrics never carry user names)."""

    homes: dict[str, int]
    """State → homes: ``ok`` (the newest finished run succeeded), ``failing`` (it failed) and
    ``never`` (no successful run on record)."""
    oldest_success_age: float | None
    """Seconds since the oldest of the homes' last successful runs (None: no home has one)."""
    failed_jobs: int
    bytes_added: int
    bytes_processed: int
    longest_duration: float | None


def home_state(status: UserStatus) -> str:
    if status.last_success is None:
        return "never"
    failed_at = status._last_failed_at
    return "failing" if failed_at is not None and failed_at > status.last_success else "ok"


def fleet_figures(statuses: Iterable[UserStatus], now: datetime) -> FleetFigures:
    statuses = list(statuses)
    homes = {"ok": 0, "failing": 0, "never": 0}
    for status in statuses:
        homes[home_state(status)] += 1
    successes = [s.last_success for s in statuses if s.last_success]
    durations = [s.last_duration for s in statuses if s.last_duration is not None]
    return FleetFigures(
        homes=homes,
        oldest_success_age=(now - min(successes)).total_seconds() if successes else None,
        failed_jobs=sum(s.failures for s in statuses),
        bytes_added=sum(s.last_bytes_added or 0 for s in statuses),
        bytes_processed=sum(s.last_bytes_processed or 0 for s in statuses),
        longest_duration=max(durations) if durations else None,
    )


def backup_status(jobs: Iterable[dict], pods: Iterable[dict] = ()) -> dict[str, UserStatus]:
    """user → :class:`UserStatus` from the backup Jobs (restore Jobs do not count) and their pods
    (``pods``: the Jobs' own, whose termination messages carry each run's summary or failure)."""
    messages = _messages_by_job(pods)
    status: dict[str, UserStatus] = {}
    for job in jobs:
        meta = job.get("metadata") or {}
        if (meta.get("labels") or {}).get(KIND_LABEL) != "backup":
            continue
        user = (meta.get("annotations") or {}).get(USER_ANNOTATION)
        if not user:
            continue
        mine = status.setdefault(user, UserStatus(user))
        state = job.get("status") or {}
        outcome = job_outcome(state)
        said = messages.get(meta.get("uid", ""), [])
        if outcome == "Failed":
            mine.failures += 1
            mine.failed_jobs.append(meta.get("name", ""))
            failed_at = _time(_condition_time(state, "Failed"))
            if said and (
                mine._last_failed_at is None or (failed_at or _EPOCH) >= mine._last_failed_at
            ):
                mine._last_failed_at = failed_at or _EPOCH
                mine.last_failure = said[-1][1]
        elif outcome is None:
            mine.running = True
        else:
            done = _time(state.get("completionTime"))
            if done and (mine.last_success is None or done > mine.last_success):
                started = _time(state.get("startTime"))
                mine.last_success = done
                mine.last_duration = (done - started).total_seconds() if started else None
                summary = run_summary(said[-1][1]) if said else {}
                mine.last_bytes_added = summary.get("data_added")
                mine.last_bytes_processed = summary.get("total_bytes_processed")
    return status


def run_summary(message: str) -> dict:
    """restic's ``backup --json`` summary from a backup pod's termination message ({} if none)."""
    try:
        summary = json.loads(message)
    except ValueError:
        return {}
    if not isinstance(summary, dict) or summary.get("message_type") != "summary":
        return {}
    return {k: v for k, v in summary.items() if isinstance(v, (int, float, str))}


def _messages_by_job(pods: Iterable[dict]) -> dict[str, list[tuple[str, str]]]:
    """Job uid → (finish time, termination message) of its pods' terminated containers, oldest
    first."""
    found: dict[str, list[tuple[str, str]]] = {}
    for pod in pods:
        owners = (pod.get("metadata") or {}).get("ownerReferences") or []
        job_uids = [o.get("uid") for o in owners if o.get("kind") == "Job"]
        for container in (pod.get("status") or {}).get("containerStatuses") or []:
            ended = (container.get("state") or {}).get("terminated") or {}
            if ended.get("message"):
                for uid in job_uids:
                    found.setdefault(uid, []).append(
                        (ended.get("finishedAt") or "", ended["message"])
                    )
    return {uid: sorted(entries) for uid, entries in found.items()}


def _condition_time(state: dict, kind: str) -> str | None:
    for condition in state.get("conditions") or []:
        if condition.get("type") == kind:
            return condition.get("lastTransitionTime")
    return None


_EPOCH = datetime.min.replace(tzinfo=timezone.utc)


def job_outcome(state: dict) -> str | None:
    """``Complete`` or ``Failed`` once a Job (its ``status``) has finished, else None."""
    for condition in state.get("conditions") or []:
        if condition.get("type") in ("Complete", "Failed") and condition.get("status") == "True":
            return condition["type"]
    return None


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


RESTORED_LINE = re.compile(r"^restored into (?:.*/)?(restored/[^/\n]+)$", re.M)
"""The restore script's last line, naming the directory it picked (``<time>`` or ``<time>-N``)
under the home's mount (``/data`` in a pod; a process kubelet may print its own path)."""


@dataclass(frozen=True)
class RestoreState:
    """A restore Job as its page shows it: ``running``, ``succeeded`` (into ``target``, a path
    in the home such as ``~/restored/2026-12-02T09-33-04Z/``) or ``failed`` (``reason``)."""

    job: str
    state: str
    target: str = ""
    reason: str = ""


def restore_state(job: dict, log: str | None) -> RestoreState:
    """What became of a restore Job, from its ``status`` and its pod's log (``None``: no log
    yet). The reason of a failure is the Job's condition and restic's last line, not a trace."""
    name = (job.get("metadata") or {}).get("name", "")
    state = job.get("status") or {}
    outcome = job_outcome(state)
    if outcome is None:
        return RestoreState(name, "running")
    if outcome == "Complete":
        found = RESTORED_LINE.findall(log or "")
        return RestoreState(name, "succeeded", target=f"~/{found[-1]}/" if found else "")
    reason = failure_reason(state, log, "the restore Job failed", "restic")
    return RestoreState(name, "failed", reason=reason)


def failure_reason(state: dict, log: str | None, fallback: str, program: str) -> str:
    """A failed Job's reason in one line: its Failed condition (or ``fallback``) and the last
    line ``program`` logged, never a trace."""
    condition = next((c for c in state.get("conditions") or [] if c.get("type") == "Failed"), {})
    said = condition.get("message") or condition.get("reason") or fallback
    last = [line.strip() for line in (log or "").splitlines() if line.strip()]
    return f"{said}; {program} said: {last[-1][:300]}" if last else said
