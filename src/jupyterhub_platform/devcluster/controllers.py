"""The control loops a real cluster runs beside its API server, reduced to what clients notice.

- scheduler: binds new pods to the node (spec.nodeName, PodScheduled, a ``Scheduled`` event);
  node selection is not modelled, every pod goes to the one node.
- graceful deletion: removes a terminating pod once its grace period is over when no kubelet
  does it (with a kubelet, only as a safety net well after the grace period).
- garbage collector: ownerReferences (background and foreground propagation, absent owners).
- namespace controller: empties a terminating namespace, then removes it.
- job controller: one pod at a time from the template, status, conditions, backoffLimit,
  ttlSecondsAfterFinished.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import uuid

from . import errors
from .defaults import timestamp
from .registry import FOREGROUND_FINALIZER, Registry
from .resources import EVENT, JOB, NAMESPACE, NODE, POD, PVC, ResourceType
from .store import Change, Expired
from .validation import KUBERNETES_VERSION

log = logging.getLogger(__name__)

NODE_NAME = "devcluster"
# How long after a pod's grace period the server removes it itself when a kubelet is running.
KUBELET_SAFETY_SECONDS = 30.0


def node_manifest(name: str = NODE_NAME) -> dict:
    """The single node pods are bound to; the kubelet may update its status."""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"},
        },
        "spec": {},
        "status": {
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "KubeletReady",
                    "message": "devcluster node",
                }
            ],
            "nodeInfo": _node_info(),
        },
    }


def _node_info() -> dict:
    version = f"v{KUBERNETES_VERSION}"
    return {"kubeletVersion": version, "kubeProxyVersion": version, "operatingSystem": "linux",
            "architecture": "amd64", "containerRuntimeVersion": "devcluster://process",
            "kernelVersion": "", "osImage": "", "machineID": "", "systemUUID": "", "bootID": ""}  # fmt: skip


def _owner_uids(obj: dict) -> list[str]:
    return [ref["uid"] for ref in obj["metadata"].get("ownerReferences") or [] if ref.get("uid")]


def _condition(type_: str, reason: str, message: str, now: str) -> dict:
    return {
        "type": type_,
        "status": "True",
        "reason": reason,
        "message": message,
        "lastProbeTime": now,
        "lastTransitionTime": now,
    }


class Controllers:
    def __init__(
        self, registry: Registry, *, node_name: str = NODE_NAME, kubelet_manages_pods: bool = False
    ):
        self.registry = registry
        self.store = registry.store
        self.node_name = node_name
        self.kubelet_manages_pods = kubelet_manages_pods
        self._task: asyncio.Task | None = None
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._job_counted: dict[str, dict[str, set[str]]] = {}

    async def start(self) -> None:
        subscription = self.store.subscribe()
        self._task = asyncio.create_task(self._run(subscription))

    async def stop(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self, subscription) -> None:
        try:
            while (change := await subscription.get()) is not None:
                if isinstance(change, Expired):
                    continue  # controllers live in-process and miss nothing
                try:
                    self.handle(change)
                except Exception:
                    log.exception("controller failed on %s %s", change.type, change.rtype.kind)
        finally:
            subscription.close()

    def handle(self, change: Change) -> None:
        """React to one change; acts on the object's current state, since changes queue up."""
        rtype, obj = change.rtype, change.new
        meta = obj["metadata"]
        if change.type == "DELETED":
            self._cancel_timer(meta["uid"])
            self._collect_dependents(obj)
            self._release_foreground_owners(obj)
            self._maybe_finish_namespace(meta.get("namespace"))
            self._job_counted.pop(meta["uid"], None)
        else:
            current = self.store.get(rtype, meta.get("namespace"), meta["name"])
            if current is None or current["metadata"]["uid"] != meta["uid"]:
                return
            if not self._check_owners(rtype, current):
                return
            if current["metadata"].get("deletionTimestamp"):
                self._on_deleting(rtype, current)
            elif rtype is POD:
                self._schedule(current)
            elif rtype is JOB:
                self._reconcile_job(current)
            elif rtype is PVC and (current.get("status") or {}).get("phase") == "Bound":
                self._schedule_waiting(meta.get("namespace"))
        if rtype is POD:
            for ref in meta.get("ownerReferences") or []:
                if ref.get("kind") == "Job" and ref.get("controller"):
                    job = self.store.by_uid(ref["uid"])
                    if job is not None:
                        self._reconcile_job(job[1])

    # events ------------------------------------------------------------------------------
    def record_event(
        self,
        rtype: ResourceType,
        obj: dict,
        reason: str,
        message: str,
        component: str,
        type_: str = "Normal",
    ) -> None:
        meta = obj["metadata"]
        namespace = meta.get("namespace") or "default"
        now = timestamp()
        body = {
            "metadata": {"name": f"{meta['name']}.{uuid.uuid4().hex[:16]}", "namespace": namespace},
            "involvedObject": {
                "apiVersion": rtype.api_version,
                "kind": rtype.kind,
                "name": meta["name"],
                "namespace": meta.get("namespace"),
                "uid": meta["uid"],
                "resourceVersion": meta.get("resourceVersion"),
            },
            "reason": reason,
            "message": message,
            "type": type_,
            "source": {"component": component},
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "reportingComponent": component,
        }
        with contextlib.suppress(errors.ApiError):  # the namespace may be going away
            self.registry.create(EVENT, namespace, body)

    # scheduler ---------------------------------------------------------------------------
    def _schedule(self, pod: dict) -> None:
        spec = pod["spec"]
        if (
            spec.get("nodeName")
            or spec.get("schedulerName", "default-scheduler") != "default-scheduler"
        ):
            return
        if self.store.get(NODE, None, self.node_name) is None:
            return
        pending = self._pending_claims(pod)
        if pending:
            self._unschedulable(pod, pending)
            return
        now = timestamp()
        new = copy.deepcopy(pod)
        new["spec"]["nodeName"] = self.node_name
        conditions = [c for c in new["status"].get("conditions", []) if c["type"] != "PodScheduled"]
        scheduled = _condition("PodScheduled", "", "", now)
        del scheduled["reason"], scheduled["message"]
        new["status"]["conditions"] = [*conditions, scheduled]
        self.store.put(POD, new)
        meta = pod["metadata"]
        self.record_event(
            POD,
            new,
            "Scheduled",
            f"Successfully assigned {meta['namespace']}/{meta['name']} to {self.node_name}",
            "default-scheduler",
        )

    def _pending_claims(self, pod: dict) -> list[str]:
        """Claims of the pod still being provisioned (from a snapshot): the pod waits for them."""
        namespace = pod["metadata"].get("namespace")
        pending = []
        for volume in pod["spec"].get("volumes") or []:
            name = (volume.get("persistentVolumeClaim") or {}).get("claimName")
            claim = self.store.get(PVC, namespace, name) if name else None
            if claim is not None and (claim.get("status") or {}).get("phase") == "Pending":
                pending.append(name)
        return pending

    def _unschedulable(self, pod: dict, claims: list[str]) -> None:
        message = "0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims."
        conditions = pod["status"].get("conditions") or []
        if any(c.get("message") == message for c in conditions):
            return
        condition = {**_condition("PodScheduled", "Unschedulable", message, timestamp()),
                     "status": "False"}  # fmt: skip
        del condition["lastProbeTime"]
        status = {**pod["status"], "conditions": [
            *(c for c in conditions if c["type"] != "PodScheduled"), condition]}  # fmt: skip
        self.registry.write_status(POD, pod, status)
        self.record_event(POD, pod, "FailedScheduling", message, "default-scheduler", "Warning")
        log.info("pod %s waits for claims %s", pod["metadata"]["name"], ", ".join(claims))

    def _schedule_waiting(self, namespace: str | None) -> None:
        """A claim bound: pods that waited for it are scheduled now."""
        for pod in self.store.list(POD, namespace):
            if not pod["spec"].get("nodeName") and not pod["metadata"].get("deletionTimestamp"):
                self._schedule(pod)

    # deletion ----------------------------------------------------------------------------
    def _on_deleting(self, rtype: ResourceType, obj: dict) -> None:
        meta = obj["metadata"]
        if rtype is NAMESPACE:
            self._empty_namespace(meta["name"])
            return
        if FOREGROUND_FINALIZER in (meta.get("finalizers") or []):
            self._delete_foreground_dependents(rtype, obj)
        grace = meta.get("deletionGracePeriodSeconds") or 0
        if rtype is POD and grace > 0 and meta["uid"] not in self._timers:
            delay = grace + (KUBELET_SAFETY_SECONDS if self.kubelet_manages_pods else 0)
            self._timers[meta["uid"]] = asyncio.get_running_loop().call_later(
                delay, self._grace_over, meta["namespace"], meta["name"], meta["uid"]
            )

    def _grace_over(self, namespace: str, name: str, uid: str) -> None:
        self._timers.pop(uid, None)
        pod = self.store.get(POD, namespace, name)
        if pod is not None and pod["metadata"]["uid"] == uid:
            self.registry.finish_deletion(POD, pod)

    def _cancel_timer(self, uid: str) -> None:
        timer = self._timers.pop(uid, None)
        if timer is not None:
            timer.cancel()

    # garbage collector -------------------------------------------------------------------
    def _delete(self, rtype: ResourceType, obj: dict, propagation: str = "Background") -> None:
        meta = obj["metadata"]
        with contextlib.suppress(errors.ApiError):  # already gone
            self.registry.delete(
                rtype, meta.get("namespace"), meta["name"], propagation=propagation
            )

    def _check_owners(self, rtype: ResourceType, obj: dict) -> bool:
        """Delete an object none of whose owners exist (any more); True if it was kept."""
        owners = _owner_uids(obj)
        if not owners or any(self.store.by_uid(uid) for uid in owners):
            return True
        if not obj["metadata"].get("deletionTimestamp"):
            self._delete(rtype, obj)
        return False

    def _collect_dependents(self, owner: dict) -> None:
        for rtype, dependent in self.registry.dependents(owner["metadata"]["uid"]):
            self._check_owners(rtype, dependent)

    def _delete_foreground_dependents(self, rtype: ResourceType, owner: dict) -> None:
        dependents = self.registry.dependents(owner["metadata"]["uid"])
        for dep_type, dependent in dependents:
            if not dependent["metadata"].get("deletionTimestamp"):
                self._delete(dep_type, dependent)
        if not self.registry.dependents(owner["metadata"]["uid"]):
            current = self.store.get(
                rtype, owner["metadata"].get("namespace"), owner["metadata"]["name"]
            )
            if current is not None:
                self.registry.remove_finalizer(rtype, current, FOREGROUND_FINALIZER)

    def _release_foreground_owners(self, dependent: dict) -> None:
        for uid in _owner_uids(dependent):
            found = self.store.by_uid(uid)
            if found and FOREGROUND_FINALIZER in (found[1]["metadata"].get("finalizers") or []):
                if not self.registry.dependents(uid):
                    self.registry.remove_finalizer(found[0], found[1], FOREGROUND_FINALIZER)

    # namespaces --------------------------------------------------------------------------
    def _empty_namespace(self, namespace: str) -> None:
        for rtype, obj in list(self.store.namespaced_objects(namespace)):
            if not obj["metadata"].get("deletionTimestamp"):
                self._delete(rtype, obj)
        self._maybe_finish_namespace(namespace)

    def _maybe_finish_namespace(self, namespace: str | None) -> None:
        ns = self.store.get(NAMESPACE, None, namespace or "")
        if ns is None or not ns["metadata"].get("deletionTimestamp"):
            return
        if next(self.store.namespaced_objects(namespace), None) is None:
            self.store.remove(NAMESPACE, None, namespace)

    # jobs --------------------------------------------------------------------------------
    def _reconcile_job(self, job: dict) -> None:
        meta, spec = job["metadata"], job["spec"]
        if meta.get("deletionTimestamp"):
            return
        status = copy.deepcopy(job.get("status") or {})
        conditions = status.get("conditions") or []
        if any(c["type"] in ("Complete", "Failed") and c["status"] == "True" for c in conditions):
            return
        pods = [p for p in self.store.list(POD, meta["namespace"]) if meta["uid"] in _owner_uids(p)]
        counted = self._job_counted.setdefault(meta["uid"], {"Succeeded": set(), "Failed": set()})
        for pod in pods:
            phase = pod.get("status", {}).get("phase")
            if phase in counted:
                counted[phase].add(pod["metadata"]["uid"])
        succeeded, failed = len(counted["Succeeded"]), len(counted["Failed"])
        active = [
            p
            for p in pods
            if p.get("status", {}).get("phase") not in counted
            and not p["metadata"].get("deletionTimestamp")
        ]
        now = timestamp()
        status.setdefault("startTime", now)
        finished = None
        if succeeded >= spec.get("completions", 1):
            finished = ("Complete", "SuccessCriteriaMet", "CompletionsReached", "Job completed")
        elif failed > spec.get("backoffLimit", 6):
            finished = (
                "Failed",
                "FailureTarget",
                "BackoffLimitExceeded",
                "Job has reached the specified backoff limit",
            )
        elif not active and not spec.get("suspend"):
            active.append(self._create_job_pod(job))
        if finished:
            for pod in active:
                self._delete(POD, pod)
            active = []
            type_, target, reason, message = finished
            status["conditions"] = [
                *conditions,
                _condition(target, reason, message, now),
                _condition(type_, reason, message, now),
            ]
            if type_ == "Complete":
                status["completionTime"] = now
        status.update(
            active=len(active),
            succeeded=succeeded,
            failed=failed,
            ready=sum(1 for p in active if _pod_ready(p)),
        )
        for key in ("active", "succeeded", "failed"):
            if not status[key]:
                del status[key]
        if status != (job.get("status") or {}):
            job = self.registry.write_status(JOB, job, status)
        if finished:
            self.record_event(
                JOB,
                job,
                finished[0] if finished[0] == "Complete" else finished[2],
                finished[3],
                "job-controller",
                "Normal" if finished[0] == "Complete" else "Warning",
            )
            ttl = spec.get("ttlSecondsAfterFinished")
            if ttl is not None:
                asyncio.get_running_loop().call_later(
                    ttl, self._expire_job, meta["namespace"], meta["name"], meta["uid"]
                )

    def _create_job_pod(self, job: dict) -> dict:
        meta, template = job["metadata"], job["spec"]["template"]
        pod_meta = copy.deepcopy(template.get("metadata") or {})
        pod_meta.pop("name", None)
        pod_meta["generateName"] = f"{meta['name']}-"
        pod_meta["ownerReferences"] = [
            {
                "apiVersion": JOB.api_version,
                "kind": "Job",
                "name": meta["name"],
                "uid": meta["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
        body = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": pod_meta,
            "spec": copy.deepcopy(template.get("spec") or {}),
        }
        pod = self.registry.create(POD, meta["namespace"], body)
        self.record_event(
            JOB,
            job,
            "SuccessfulCreate",
            f"Created pod: {pod['metadata']['name']}",
            "job-controller",
        )
        return pod

    def _expire_job(self, namespace: str, name: str, uid: str) -> None:
        job = self.store.get(JOB, namespace, name)
        if job is not None and job["metadata"]["uid"] == uid:
            self._delete(JOB, job)


def _pod_ready(pod: dict) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in pod.get("status", {}).get("conditions") or []
    )
