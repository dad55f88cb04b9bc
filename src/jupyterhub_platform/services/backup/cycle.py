"""One backup cycle's decisions (pure): which users' volumes get a Job now.

Candidates are the users' home claims (z2jh's ``claim-<user>`` PVCs, labelled
``component=singleuser-storage`` by KubeSpawner, the user's name in the
``hub.jupyter.org/username`` annotation): users with no PVC are never candidates, stopped users'
volumes are. A claim with an active backup Job is not started again (at most one Job per
repository); users the group policy opts out (its ``backup:`` section, docs/backup.md) are
skipped; at most ``slots`` Jobs start.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from jupyterhub_platform.policy.cull_decision import parse_time
from jupyterhub_platform.policy.model import Policy

from .kubeio import job_name
from .manifests import (
    CLAIM_LABEL,
    KIND_LABEL,
    USER_ANNOTATION,
    JobSettings,
    backup_job,
    node_of_claim,
)
from .restic import prune_due
from .views import job_outcome

STORAGE_SELECTOR = "component=singleuser-storage"
DONE = "backed up in this round"


class VolumeBusyError(RuntimeError):
    """A backup or restore Job of this volume has not finished (one Job per repository)."""


@dataclass(frozen=True)
class Candidate:
    user: str
    claim: str


@dataclass(frozen=True)
class Plan:
    start: tuple[Candidate, ...]
    skipped: Mapping[str, str]
    """user → why no Job starts (opted out, already running, done this round, no slot)."""
    waiting: tuple[Candidate, ...] = ()
    """Not backed up in this round yet and not started now (no slot, or an older Job still
    runs): the round goes on while any are left."""


def home_claims(pvcs: Iterable[dict]) -> list[Candidate]:
    found = []
    for pvc in pvcs:
        meta = pvc.get("metadata", {})
        user = (meta.get("annotations") or {}).get(USER_ANNOTATION)
        if user and not meta.get("deletionTimestamp"):
            found.append(Candidate(user=user, claim=meta["name"]))
    return sorted(found, key=lambda c: c.claim)


def running_claims(jobs: Iterable[dict]) -> set[str]:
    """Claims whose backup or restore Job has not finished (one Job per repository; a
    snapshot's listing Job reads a copy, not the home nor a repository: it does not count)."""
    busy = set()
    for job in jobs:
        done = job_outcome(job.get("status") or {}) is not None
        labels = job.get("metadata", {}).get("labels") or {}
        if not done and labels.get(KIND_LABEL) not in (None, "", "listing"):
            busy.add(labels.get(CLAIM_LABEL, ""))
    return busy


def opted_out(
    candidates: Iterable[Candidate], groups: Mapping[str, Iterable[str]], policy: Policy
) -> dict[str, str]:
    """user → why the policy does not back up their home; ``groups`` are the hub's (already
    normalised) group names of each user."""
    found = {}
    for candidate in candidates:
        decision = policy.backup_for(groups.get(candidate.user, ()), normalised=True)
        if not decision.backed_up:
            found[candidate.user] = f"opted out: {decision.reason}"
    return found


def created_since(items: Iterable[dict], since: datetime | None) -> set[str]:
    """Claims with a backup (a backup Job or a VolumeSnapshot: ``items``) created at or after
    ``since``, the start of the current round (None: no round, nothing counts as done)."""
    if since is None:
        return set()
    done = set()
    for item in items:
        meta = item.get("metadata", {})
        labels = meta.get("labels") or {}
        created = parse_time(meta.get("creationTimestamp"))
        if labels.get(KIND_LABEL, "backup") == "backup" and created and created >= since:
            done.add(labels.get(CLAIM_LABEL, ""))
    return done


def plan_cycle(
    candidates: Iterable[Candidate],
    busy: set[str],
    opted_out: Mapping[str, str],
    slots: int,
    done: set[str] = frozenset(),
) -> Plan:
    """``opted_out``: user → why the policy does not back them up (:func:`opted_out`);
    ``done``: claims already backed up in this round (:func:`created_since`)."""
    start: list[Candidate] = []
    waiting: list[Candidate] = []
    skipped: dict[str, str] = {}
    for candidate in candidates:
        if candidate.user in opted_out:
            skipped[candidate.user] = opted_out[candidate.user]
        elif candidate.claim in done:
            skipped[candidate.user] = DONE
        elif candidate.claim in busy:
            skipped[candidate.user] = "a Job for this volume is still running"
            waiting.append(candidate)
        elif len(start) >= slots:
            skipped[candidate.user] = "concurrency limit reached; when a slot frees"
            waiting.append(candidate)
        else:
            start.append(candidate)
    return Plan(tuple(start), skipped, tuple(waiting))


@dataclass(frozen=True)
class NewJob:
    """A backup Job the cycle creates: its manifest and what the log line says of it."""

    candidate: Candidate
    name: str
    node: str | None
    prune: bool
    body: dict


def new_backup_jobs(
    start: Iterable[Candidate],
    pods: list[dict],
    settings: JobSettings,
    now: datetime,
    round_start: datetime | None,
    prune_every: int,
) -> list[NewJob]:
    """The Jobs of the claims a cycle starts: on the node of a running server that mounts the
    claim (ReadWriteOnce), pruning if the round's date is the claim's prune day
    (:func:`~.restic.prune_due`; no round, e.g. an admin's run: today's date). The round's
    date, not the cycle's: a round that began at 23:50 decides the same after midnight."""
    day = (round_start or now).date()
    jobs = []
    for candidate in start:
        node = node_of_claim(candidate.claim, pods)
        name = job_name("backup", candidate.claim, now)
        prune = prune_due(candidate.claim, day, prune_every)
        body = backup_job(name, candidate.user, candidate.claim, node, settings, prune=prune)
        jobs.append(NewJob(candidate, name, node, prune, body))
    return jobs


def log_skipped(log: logging.Logger, what: str, plan: Plan) -> None:
    """Why each user got nothing: INFO, but DEBUG for those done this round (every cycle of a
    round would repeat them)."""
    for user, why in sorted(plan.skipped.items()):
        log.log(
            logging.DEBUG if why == DONE else logging.INFO, "%s of %s skipped: %s", what, user, why
        )
