"""Every Kubernetes call the backup service's code makes is granted: the stock chart's hub Role
plus the backend's shipped manifest (chart-values/manifests/backup-*-rbac.yaml) cover each
``<verb>_namespaced_<resource>`` call found in the service's modules, and the manifests grant
nothing the code never calls (read from the source, so a new call without its rule fails)."""

from __future__ import annotations

import re
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

import jupyterhub_platform.services.backup as backup_package
from jupyterhub_platform.devcluster.platform import shipped_values_dir
from jupyterhub_platform.services.backup.snapshot_backend import GROUP, PLURAL

CALL = re.compile(r"\.(create|read|list|patch|delete|replace)_namespaced_([a-z_]+?)(?:_status)?\(")
VERBS = {"read": "get"}
GROUPS = {"jobs": "batch", PLURAL: GROUP}
SHARED = ("app.py", "kubeio.py")
READS = ("get", "list", "watch")
KEPT = {("batch", "jobs", "delete")}
"""Granted though the service never calls it: both manifests have always let the hub's account
delete the backup Jobs (an operator's cleanup, ``kubectl --as``); finished ones expire by TTL."""
BACKENDS = {"restic": SHARED, "snapshot": (*SHARED, "snapshot_backend.py")}


def _resource(snake: str) -> str:
    if snake == "custom_object":  # the only custom objects it touches: VolumeSnapshots
        return PLURAL
    if snake == "pod_log":
        return "pods/log"
    return snake.replace("_", "") + "s"


def calls(modules) -> set[tuple[str, str, str]]:
    """(API group, resource, verb) of every call in the backup package's ``modules``."""
    found = set()
    for module in modules:
        text = (Path(backup_package.__file__).parent / module).read_text()
        for verb, snake in CALL.findall(text):
            resource = _resource(snake)
            found.add((GROUPS.get(resource, ""), resource, VERBS.get(verb, verb)))
    return found


def _granted(rules) -> set[tuple[str, str, str]]:
    return {(g, r, v) for rule in rules for g in rule["apiGroups"] for r in rule["resources"]
            for v in rule["verbs"]}  # fmt: skip


def _stock_hub_role(chart: Path) -> list[dict]:
    """The stock chart's hub Role's rules (its template, the Helm lines left out)."""
    text = (chart / "templates" / "hub" / "rbac.yaml").read_text()
    plain = "\n".join(line for line in text.splitlines() if "{{" not in line)
    role = next(d for d in yaml.safe_load_all(plain) if d and d["kind"] == "Role")
    return role["rules"]


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_the_stock_role_and_the_backends_manifest_cover_every_call(backend, z2jh_chart):
    name = {"restic": "backup-restic-rbac.yaml", "snapshot": "backup-snapshots-rbac.yaml"}[backend]
    docs = list(yaml.safe_load_all((shipped_values_dir() / "manifests" / name).read_text()))
    for doc in docs:
        kubernetes_validate.validate(doc, "1.30", strict=True)
    manifest = _granted(next(d for d in docs if d["kind"] == "Role")["rules"])
    stock = _granted(_stock_hub_role(z2jh_chart))
    used = calls(BACKENDS[backend])
    assert ("", "pods/log", "get") in used and ("batch", "jobs", "create") in used  # not vacuous
    assert used - stock - manifest == set(), "calls no Role grants"
    # the manifest adds no write the code never makes (reads: get/list/watch granted together)
    unused = {(g, r, v) for g, r, v in manifest - used - stock if v not in READS}
    assert unused == KEPT, "granted but never called"


def test_the_snapshot_backend_reads_and_keeps_listings_in_configmaps():
    used = calls(BACKENDS["snapshot"])
    assert {("", "configmaps", "get"), ("", "configmaps", "create")} <= used
    assert ("", "configmaps", "delete") not in used  # the ownerReference removes them
