"""Fixtures of the credentials tests: a test issuer we hold the keys of, and the local STS + S3
stand-in as a process."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "auth"))  # the test issuer's home

from oidc_test_issuer import StaticIssuer  # noqa: E402

from jupyterhub_platform.devcluster import object_store  # noqa: E402
from jupyterhub_platform.devcluster.procs import ProcessGroupSet, free_port  # noqa: E402

CLIENT_ID = "jupyterhub"
BUCKET = "research"
ROLE = "jupyter-research"


@pytest.fixture
def issuer():
    """The issuer, with a userinfo endpoint for the access tokens a test registers."""
    with StaticIssuer(CLIENT_ID) as issuer:
        issuer.extra_metadata["userinfo_endpoint"] = f"{issuer.issuer}/userinfo"
        yield issuer


class Store:
    """The running object store: its ready file's contents and its log."""

    def __init__(self, proc, ready: dict):
        self.proc, self.url, self.role_arn = proc, ready["url"], ready["role_arn"]
        self.bucket, self.region = ready["bucket"], ready["region"]

    def assume_requests(self) -> int:
        """How many AssumeRoleWithWebIdentity requests the store has been sent."""
        return self.proc.log_path.read_text().count(f"request: sts {object_store.ASSUME}")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("object-store")
    procs = ProcessGroupSet()
    ready_file = tmp / "ready.json"
    argv = object_store.command(free_port(), ready_file, BUCKET, ROLE)
    proc = procs.start(argv, name="object-store", log_path=tmp / "object-store.log")
    try:
        yield Store(proc, asyncio.run(object_store.wait_ready(proc, ready_file)))
    finally:
        procs.stop_all()
