"""API semantics on top of the store: create, update, patch, delete, as the real server does them.

This is the one place that decides what a write means (validation, server-owned fields, status
subresource rules, optimistic concurrency, graceful deletion, finalizers, orphaning). The HTTP
layer and the controllers both go through it, so every write follows the same rules.
"""

from __future__ import annotations

import copy
import ipaddress
import logging
import time
import uuid

from . import errors
from .defaults import (
    apply_create_defaults,
    fold_string_data,
    pod_spec_defaults,
    random_suffix,
    timestamp,
)
from .patching import PatchError, apply_patch
from .resources import NAMESPACE, POD, ResourceType
from .selectors import Selector
from .store import Store
from .validation import pod_update_causes, validation_causes

log = logging.getLogger(__name__)

# Metadata only the server writes; client values are ignored.
_SERVER_METADATA = (
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
    "selfLink",
    "managedFields",
)
PROPAGATION_POLICIES = ("Orphan", "Background", "Foreground")
FOREGROUND_FINALIZER = "foregroundDeletion"
PROTECTED_NAMESPACES = frozenset({"default", "kube-system", "kube-public"})
_SERVICE_NETWORK = ipaddress.ip_network("10.96.0.0/12")


def _spec_like(obj: dict) -> dict:
    """Everything but metadata and status: a change here bumps ``metadata.generation``."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def _without_resource_version(obj: dict) -> dict:
    metadata = {k: v for k, v in obj["metadata"].items() if k != "resourceVersion"}
    return {**obj, "metadata": metadata}


def _same_content(a: dict, b: dict) -> bool:
    return _without_resource_version(a) == _without_resource_version(b)


class Registry:
    def __init__(self, store: Store, *, clock=time.time):
        self.store = store
        self.clock = clock
        self._next_cluster_ip = 10

    # reads -------------------------------------------------------------------------------
    def get(self, rtype: ResourceType, namespace: str | None, name: str) -> dict:
        obj = self.store.get(rtype, namespace, name)
        if obj is None:
            raise errors.not_found(rtype, name)
        return obj

    def list(self, rtype: ResourceType, namespace: str | None, selector: Selector) -> list[dict]:
        return [obj for obj in self.store.list(rtype, namespace) if selector.matches(obj)]

    # checks ------------------------------------------------------------------------------
    @staticmethod
    def _check_type(rtype: ResourceType, body: object) -> dict:
        """Default apiVersion/kind from the URL as the server does, refuse a mismatch."""
        if not isinstance(body, dict):
            raise errors.bad_request("the request body must be a JSON object")
        body = copy.deepcopy(body)
        body.setdefault("apiVersion", rtype.api_version)
        body.setdefault("kind", rtype.kind)
        if body["apiVersion"] != rtype.api_version or body["kind"] != rtype.kind:
            raise errors.bad_request(
                f"the API version in the data ({body['apiVersion']}) and kind ({body['kind']}) do "
                f"not match the expected {rtype.api_version} {rtype.kind}"
            )
        if not isinstance(body.get("metadata", {}), dict):
            raise errors.bad_request("metadata must be a JSON object")
        body.setdefault("metadata", {})
        return body

    @staticmethod
    def _validate(rtype: ResourceType, obj: dict) -> None:
        causes = validation_causes(obj)
        if causes:
            meta = obj.get("metadata") or {}
            raise errors.invalid(rtype, meta.get("name") or meta.get("generateName") or "", causes)

    def _check_namespace(self, rtype: ResourceType, namespace: str | None) -> None:
        if not rtype.namespaced:
            return
        ns = self.store.get(NAMESPACE, None, namespace or "")
        if ns is None:
            raise errors.not_found(NAMESPACE, namespace or "")
        if ns["metadata"].get("deletionTimestamp"):
            raise errors.forbidden(
                rtype,
                "",
                f"unable to create new content in namespace {namespace} because it is being terminated",
            )

    # writes ------------------------------------------------------------------------------
    def create(self, rtype: ResourceType, namespace: str | None, body: object) -> dict:
        obj = self._check_type(rtype, body)
        meta = obj["metadata"]
        if rtype.namespaced:
            if meta.get("namespace") not in (None, namespace):
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
        if meta.get("resourceVersion"):
            raise errors.bad_request("resourceVersion should not be set on objects to be created")
        self._validate(rtype, obj)
        self._check_namespace(rtype, namespace)
        if not meta.get("name"):
            meta["name"] = meta["generateName"] + random_suffix()
            while self.store.get(rtype, namespace, meta["name"]) is not None:
                meta["name"] = meta["generateName"] + random_suffix()
        if self.store.get(rtype, namespace, meta["name"]) is not None:
            raise errors.already_exists(rtype, meta["name"])
        for key in (*_SERVER_METADATA, "resourceVersion"):
            meta.pop(key, None)
        now = self.clock()
        if rtype.namespaced:
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)  # the real server drops it on cluster-scoped objects
        meta.update(uid=str(uuid.uuid4()), creationTimestamp=timestamp(now), generation=1)
        apply_create_defaults(rtype, obj, now)
        if rtype.kind == "Service":
            self._allocate_cluster_ip(obj["spec"])
        return self.store.put(rtype, obj)

    def _allocate_cluster_ip(self, spec: dict) -> None:
        if spec.get("type") == "ExternalName" or spec.get("clusterIP") == "None":
            return
        if not spec.get("clusterIP"):
            spec["clusterIP"] = str(_SERVICE_NETWORK[self._next_cluster_ip])
            self._next_cluster_ip += 1
        spec["clusterIPs"] = [spec["clusterIP"]]

    def replace(
        self,
        rtype: ResourceType,
        namespace: str | None,
        name: str,
        body: object,
        *,
        subresource: str | None = None,
    ) -> dict:
        current = self.get(rtype, namespace, name)
        obj = self._check_type(rtype, body)
        if obj["metadata"].get("name") not in (None, name):
            raise errors.bad_request(
                f"the name of the object ({obj['metadata']['name']}) does not match the name on the URL ({name})"
            )
        obj["metadata"]["name"] = name
        if rtype.namespaced and obj["metadata"].get("namespace") not in (None, namespace):
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        self._check_version(rtype, current, obj)
        self._validate(rtype, obj)
        return self._update(rtype, current, obj, subresource)

    def patch(
        self,
        rtype: ResourceType,
        namespace: str | None,
        name: str,
        content_type: str,
        patch: object,
        *,
        subresource: str | None = None,
    ) -> dict:
        current = self.get(rtype, namespace, name)
        try:
            obj = apply_patch(copy.deepcopy(current), content_type, patch)
        except PatchError as exc:
            raise errors.ApiError(422, "Invalid", str(exc)) from None
        obj = self._check_type(rtype, obj)
        if obj["metadata"].get("name") != name:
            raise errors.bad_request("metadata.name cannot be changed by a patch")
        self._check_version(rtype, current, obj)
        self._validate(rtype, obj)
        return self._update(rtype, current, obj, subresource)

    @staticmethod
    def _check_version(rtype: ResourceType, current: dict, obj: dict) -> None:
        wanted = obj["metadata"].get("resourceVersion")
        if wanted and wanted != current["metadata"]["resourceVersion"]:
            raise errors.conflict(rtype, current["metadata"]["name"])

    def _update(
        self, rtype: ResourceType, current: dict, obj: dict, subresource: str | None
    ) -> dict:
        if subresource == "status":
            new = {**copy.deepcopy(current), "status": obj.get("status") or {}}
        else:
            new = obj
            meta = new["metadata"]
            for key in (*_SERVER_METADATA, "namespace"):
                meta.pop(key, None)
                if key in current["metadata"]:
                    meta[key] = current["metadata"][key]
            if rtype.has_status:
                new["status"] = copy.deepcopy(current.get("status", {}))
            if rtype.kind == "Secret":
                fold_string_data(new)
            if rtype is POD:
                pod_spec_defaults(new.setdefault("spec", {}))
                causes = pod_update_causes(current["spec"], new["spec"])
                if causes:
                    raise errors.invalid(rtype, meta["name"], causes)
            if _spec_like(new) != _spec_like(current):
                meta["generation"] = current["metadata"].get("generation", 1) + 1
            if self._releases_last_finalizer(current, new):
                self.store.put(rtype, new)
                return self.store.remove(
                    rtype, current["metadata"].get("namespace"), current["metadata"]["name"]
                )
        if _same_content(new, current):
            return current
        return self.store.put(rtype, new)

    @staticmethod
    def _releases_last_finalizer(current: dict, new: dict) -> bool:
        """A deleting object whose last finalizer goes (and whose grace period is over) goes too."""
        meta = current["metadata"]
        return bool(
            meta.get("deletionTimestamp")
            and meta.get("finalizers")
            and not new["metadata"].get("finalizers")
            and not meta.get("deletionGracePeriodSeconds")
        )

    def write_status(self, rtype: ResourceType, obj: dict, status: dict) -> dict:
        """A controller's status write (no validation round trip, no version check)."""
        return self.store.put(rtype, {**copy.deepcopy(obj), "status": status})

    # deletion ----------------------------------------------------------------------------
    def delete(
        self,
        rtype: ResourceType,
        namespace: str | None,
        name: str,
        *,
        grace: int | None = None,
        propagation: str | None = None,
        preconditions: dict | None = None,
    ) -> dict:
        current = self.get(rtype, namespace, name)
        meta = current["metadata"]
        for key in ("uid", "resourceVersion"):
            wanted = (preconditions or {}).get(key)
            if wanted and wanted != meta[key]:
                raise errors.ApiError(
                    409,
                    "Conflict",
                    f"Precondition failed: {key} in precondition: {wanted}, {key} in object meta: {meta[key]}",
                    {"name": name, "kind": rtype.plural},
                )
        propagation = propagation or rtype.default_propagation
        if propagation not in PROPAGATION_POLICIES:
            raise errors.bad_request(f"propagationPolicy: Unsupported value: {propagation!r}")
        if rtype is NAMESPACE:
            return self._delete_namespace(current)
        if propagation == "Orphan":
            self.orphan_dependents(meta["uid"])
        finalizers = list(meta.get("finalizers") or [])
        if propagation == "Foreground" and FOREGROUND_FINALIZER not in finalizers:
            finalizers.append(FOREGROUND_FINALIZER)
        grace = self._pod_grace(current, grace) if rtype is POD else 0
        if grace > 0 or finalizers:
            return self._mark_deleting(rtype, current, grace, finalizers)
        return self.store.remove(rtype, namespace, name)

    @staticmethod
    def _pod_grace(pod: dict, requested: int | None) -> int:
        """The real rule: unscheduled or finished pods go at once, others get their grace period."""
        if not pod["spec"].get("nodeName") or pod.get("status", {}).get("phase") in (
            "Succeeded",
            "Failed",
        ):
            return 0
        grace = (
            pod["spec"].get("terminationGracePeriodSeconds", 30) if requested is None else requested
        )
        current = pod["metadata"].get("deletionGracePeriodSeconds")
        return max(0, grace if current is None else min(grace, current))

    def _mark_deleting(
        self, rtype: ResourceType, current: dict, grace: int, finalizers: list[str]
    ) -> dict:
        meta = current["metadata"]
        if (
            meta.get("deletionTimestamp")
            and meta.get("deletionGracePeriodSeconds") == grace
            and finalizers == (meta.get("finalizers") or [])
        ):
            return current
        new_meta = {
            **meta,
            "deletionGracePeriodSeconds": grace,
            "deletionTimestamp": timestamp(self.clock() + grace),
        }
        if finalizers:
            new_meta["finalizers"] = finalizers
        return self.store.put(rtype, {**current, "metadata": new_meta})

    def finish_deletion(self, rtype: ResourceType, obj: dict) -> dict | None:
        """Remove an object whose grace period is over, unless finalizers still hold it."""
        meta = obj["metadata"]
        if meta.get("finalizers"):
            if meta.get("deletionGracePeriodSeconds"):
                return self.store.put(
                    rtype, {**obj, "metadata": {**meta, "deletionGracePeriodSeconds": 0}}
                )
            return None
        return self.store.remove(rtype, meta.get("namespace"), meta["name"])

    def remove_finalizer(self, rtype: ResourceType, obj: dict, finalizer: str) -> dict:
        finalizers = [f for f in obj["metadata"].get("finalizers") or [] if f != finalizer]
        new = {**obj, "metadata": {**obj["metadata"], "finalizers": finalizers}}
        if not finalizers:
            new["metadata"].pop("finalizers")
        return self._update(rtype, obj, copy.deepcopy(new), None)

    def dependents(self, owner_uid: str) -> list[tuple[ResourceType, dict]]:
        return [
            (rtype, obj)
            for rtype, obj in self.store.all_objects()
            if any(
                ref.get("uid") == owner_uid for ref in obj["metadata"].get("ownerReferences") or []
            )
        ]

    def orphan_dependents(self, owner_uid: str) -> None:
        for rtype, obj in self.dependents(owner_uid):
            refs = [r for r in obj["metadata"]["ownerReferences"] if r.get("uid") != owner_uid]
            meta = {**obj["metadata"], "ownerReferences": refs}
            if not refs:
                meta.pop("ownerReferences")
            self.store.put(rtype, {**obj, "metadata": meta})

    def _delete_namespace(self, ns: dict) -> dict:
        name = ns["metadata"]["name"]
        if name in PROTECTED_NAMESPACES:
            raise errors.forbidden(NAMESPACE, name, "this namespace may not be deleted")
        if ns["metadata"].get("deletionTimestamp"):
            return ns
        meta = {
            **ns["metadata"],
            "deletionTimestamp": timestamp(self.clock()),
            "deletionGracePeriodSeconds": 0,
        }
        return self.store.put(
            NAMESPACE, {**ns, "metadata": meta, "status": {"phase": "Terminating"}}
        )

    def delete_collection(
        self, rtype: ResourceType, namespace: str | None, selector: Selector, **options
    ) -> list[dict]:
        deleted = []
        for obj in self.list(rtype, namespace, selector):
            try:
                deleted.append(
                    self.delete(
                        rtype, obj["metadata"].get("namespace"), obj["metadata"]["name"], **options
                    )
                )
            except errors.ApiError as exc:
                log.info("deletecollection skipped %s: %s", obj["metadata"]["name"], exc)
        return deleted
