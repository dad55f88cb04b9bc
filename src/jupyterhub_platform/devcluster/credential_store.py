"""What the credentials service needs on the local platform (``LocalPlatform(credentials=True)``):
an STS + S3 server (:mod:`.object_store`, moto's, with IAM auth on) and a policy whose ``s3-sts``
sets point at it. Without it the local policy grants no ``s3-sts`` or ``secret`` set: there would
be nothing to issue them from, and every spawn would try; ``template`` and ``oidc-token`` sets need
nothing local and stay. Pure, except :meth:`CredentialStore.argv`."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from jupyterhub_platform.chart.values import get_path, policy_in_values

OVERLAY = "credentials.yaml"
BUCKET = "research"
ROLE = "jupyter-research"
ACCOUNT = "123456789012"
"""moto's default account: the role's ARN is known before the store runs (values come first)."""
SERVICE = "credentials"
RENEW_EVERY = 5
"""Seconds between the local service's renewal rounds: short lifetimes can be tried locally."""


@dataclass(frozen=True)
class CredentialStore:
    """The local STS + S3 server: where it listens and its ready file."""

    root: Path
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def role_arn(self) -> str:
        return f"arn:aws:iam::{ACCOUNT}:role/{ROLE}"

    @property
    def ready_file(self) -> Path:
        return self.root / "ready.json"

    def argv(self) -> list[str]:
        self.root.mkdir(parents=True, exist_ok=True)
        self.ready_file.unlink(missing_ok=True)
        return [
            sys.executable, "-m", "jupyterhub_platform.devcluster.object_store",
            "--port", str(self.port), "--ready-file", str(self.ready_file),
            "--bucket", BUCKET, "--role", ROLE,
        ]  # fmt: skip

    def point_sets(self, policy: dict[str, Any]) -> dict[str, Any]:
        """The policy with every ``s3-sts`` set's endpoints and role on this store."""
        for spec in (policy.get("credential_sets") or {}).values():
            if isinstance(spec, dict) and spec.get("provider") == "s3-sts":
                config = spec.setdefault("config", {})
                config.update(sts_endpoint=self.url, s3_endpoint=self.url, role_arn=self.role_arn)
        return policy


NEEDS_STORE = ("s3-sts", "secret")


def without_grants(policy: dict[str, Any]) -> dict[str, Any]:
    """The policy with no group granting a set whose provider is in :data:`NEEDS_STORE` (the
    declarations stay)."""
    sets = policy.get("credential_sets") or {}
    dropped = {
        n for n, s in sets.items() if isinstance(s, dict) and s.get("provider") in NEEDS_STORE
    }
    for spec in (policy.get("groups") or {}).values():
        if isinstance(spec, dict) and spec.get("credential_sets"):
            spec["credential_sets"] = [n for n in spec["credential_sets"] if n not in dropped]
    return policy


def local_policy_values(values: Mapping[str, Any], store: CredentialStore | None) -> dict:
    """Chart values replacing the policy in ``values`` (the merged values) with its local form."""
    found = policy_in_values(values)
    if found.keys[-1] != "stringData":
        return {}  # a policy given as data/binaryData is taken as it is
    policy = yaml.safe_load(found.text) or {}
    policy = store.point_sets(policy) if store is not None else without_grants(policy)
    text = yaml.safe_dump(policy, sort_keys=False)
    overlay: dict[str, Any] = {}
    node = overlay
    for key in found.keys[:-1]:
        node = node.setdefault(key, {})
    node[found.keys[-1]] = text
    return overlay


def service_values(values: Mapping[str, Any], issuer: str, kubeconfig: Path) -> dict[str, Any]:
    """The credentials service verifies tokens from the local identity provider and renews
    every :data:`RENEW_EVERY` seconds, on the emulator's ``kubeconfig``."""
    command = get_path(values, f"hub.services.{SERVICE}.command") or []
    ours = ("--CredentialsApp.oidc_issuer=", "--CredentialsApp.renew_every=")
    kept = [a for a in command if not a.startswith(ours)]
    command = [
        *kept,
        f"--CredentialsApp.oidc_issuer={issuer}",
        f"--CredentialsApp.renew_every={RENEW_EVERY}",
    ]
    environment = {
        "KUBECONFIG": str(kubeconfig)
    }  # a hub passes its services no variable of its own
    return {"hub": {"services": {SERVICE: {"command": command, "environment": environment}}}}
