"""Unmodified KubeSpawner against the emulator: start, poll, stop, PVCs, services, watch recovery.

The hub and user are minimal stand-ins, as in KubeSpawner's own test suite. With no kubelet the
test plays its part: it marks the pod Running with a pod IP once the pod exists.
"""

from __future__ import annotations

import asyncio
import logging
from unittest.mock import Mock

import pytest
from jupyterhub.objects import Hub, Server
from kubernetes_asyncio import client
from kubernetes_asyncio.client import Configuration
from kubernetes_asyncio.config import kube_config
from kubespawner import KubeSpawner
from kubespawner.clients import load_config
from traitlets.config import Config

from jupyterhub_platform.devcluster.procs import wait_for


class FakeUser(Mock):
    """The parts of a JupyterHub user KubeSpawner reads."""

    name = "alice"
    id = 7
    server = Server()

    @property
    def escaped_name(self):
        return self.name

    @property
    def url(self):
        return self.server.url


@pytest.fixture
async def spawner_factory(devcluster, monkeypatch):
    """Builds KubeSpawners wired to this emulator; resets KubeSpawner's process-wide state.

    KubeSpawner caches its client configuration (``load_config`` is lru-cached) and shares its
    pod/event reflectors at class level; both must be reset between independent emulators.
    """
    monkeypatch.setattr(
        kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(devcluster.kubeconfig_path)
    )
    load_config.cache_clear()
    KubeSpawner.reflectors = {}

    def make(**traits) -> KubeSpawner:
        config = Config()
        config.KubeSpawner.update(
            {"start_timeout": 20, "image": "quay.io/jupyter/base-notebook:2025", **traits}
        )
        return KubeSpawner(
            config=config,
            hub=Hub(),
            user=FakeUser(),
            api_token="token",
            oauth_client_id="unused",
            _mock=True,
        )

    yield make
    for reflector in list(KubeSpawner.reflectors.values()):
        await reflector.stop()
    KubeSpawner.reflectors = {}
    load_config.cache_clear()
    Configuration.set_default(None)


async def mark_running(core, name: str, ip: str = "10.1.2.3") -> None:
    """Do what a kubelet would: report the pod Running and ready, with an IP."""

    async def exists():
        try:
            return await core.read_namespaced_pod(name, "default")
        except client.ApiException:
            return None

    await wait_for(exists, timeout=10, what=f"pod {name}")
    status = {
        "phase": "Running",
        "podIP": ip,
        "podIPs": [{"ip": ip}],
        "conditions": [{"type": "Ready", "status": "True"}],
        "containerStatuses": [
            {
                "name": "notebook",
                "ready": True,
                "restartCount": 0,
                "image": "img",
                "imageID": "",
                "started": True,
                "state": {"running": {"startedAt": "2025-01-01T00:00:00Z"}},
            }
        ],
    }
    await core.patch_namespaced_pod_status(name, "default", {"status": status})


async def start_with_fake_kubelet(spawner: KubeSpawner, core) -> str:
    start = asyncio.ensure_future(spawner.start())
    await mark_running(core, spawner.pod_name)
    return await asyncio.wait_for(start, 20)


async def test_start_poll_stop(spawner_factory, core):
    spawner = spawner_factory()
    url = await start_with_fake_kubelet(spawner, core)
    assert url == "http://10.1.2.3:8888"
    assert await spawner.poll() is None
    pod = await core.read_namespaced_pod(spawner.pod_name, "default")
    assert pod.metadata.labels["component"] == "singleuser-server"
    await spawner.stop()  # returns once the reflector saw the pod DELETED
    with pytest.raises(client.ApiException) as info:
        await core.read_namespaced_pod(spawner.pod_name, "default")
    assert info.value.status == 404
    assert await spawner.poll() == 1
    # the events reflector collected the scheduler's event for this pod
    messages = [e["message"] for e in spawner.events]
    assert any("Successfully assigned" in m for m in messages)


async def test_start_with_pvc(spawner_factory, core):
    spawner = spawner_factory(
        storage_pvc_ensure=True, storage_capacity="1Gi", pvc_name_template="claim-{username}"
    )
    await start_with_fake_kubelet(spawner, core)
    pvc = await core.read_namespaced_persistent_volume_claim("claim-alice", "default")
    assert pvc.spec.resources.requests["storage"] == "1Gi" and pvc.status.phase == "Bound"
    await spawner.stop()
    # a second start finds the existing claim (409 is fine for KubeSpawner)
    await start_with_fake_kubelet(spawner, core)
    await spawner.stop()


async def test_services_and_secret_are_collected_with_the_pod(spawner_factory, core, tmp_path):
    for name in ("key", "cert", "ca"):
        (tmp_path / name).write_text(f"not a real {name}")
    spawner = spawner_factory(services_enabled=True)
    spawner.internal_ssl = True
    spawner.cert_paths = {
        "keyfile": str(tmp_path / "key"),
        "certfile": str(tmp_path / "cert"),
        "cafile": str(tmp_path / "ca"),
    }
    spawner.internal_trust_bundles = {"hub-ca": str(tmp_path / "ca")}
    url = await start_with_fake_kubelet(spawner, core)
    assert url.startswith("https://")
    service = await core.read_namespaced_service(spawner.pod_name, "default")
    secret = await core.read_namespaced_secret(spawner.secret_name, "default")
    pod = await core.read_namespaced_pod(spawner.pod_name, "default")
    for owned in (service, secret):
        assert owned.metadata.owner_references[0].uid == pod.metadata.uid
    assert service.spec.cluster_ip
    await spawner.stop()

    async def collected():
        services = await core.list_namespaced_service("default")
        secrets = await core.list_namespaced_secret("default")
        return not services.items and not secrets.items

    await wait_for(collected, timeout=5, what="service and secret garbage collection")


async def test_reflector_recovers_from_expiry_and_timeouts(
    spawner_factory, core, devcluster, caplog
):
    spawner = spawner_factory()
    await spawner._start_watching_pods()
    reflector = spawner.pod_reflector
    reflector.timeout_seconds = 1  # from the next watch on, time out every second
    caplog.set_level(logging.DEBUG)
    # the controllers and the snapshot controller hold one subscription each; the reflector's
    # watch is the third
    await wait_for(
        lambda: devcluster.store.subscriber_count >= 3, timeout=5, what="reflector watch"
    )
    devcluster.store.expire_watches()  # the open watch ends with an ERROR 410 event
    await wait_for(
        lambda: any("Error when watching resources" in r.getMessage() for r in caplog.records),
        timeout=5,
        what="the reflector to notice the 410",
    )
    url = await start_with_fake_kubelet(spawner, core)
    assert url == "http://10.1.2.3:8888"
    # after watch timeouts the reflector has reconnected and still follows changes

    def watches_started() -> int:  # the reflector logs each (re)connection at debug level
        return len([r for r in caplog.records if r.getMessage() == "Connecting pods watcher"])

    before = watches_started()
    await wait_for(
        lambda: watches_started() >= before + 2,
        timeout=10,
        what="two reconnects after 1-second watch timeouts",
    )
    await core.patch_namespaced_pod(
        spawner.pod_name, "default", {"metadata": {"labels": {"seen": "yes"}}}
    )
    key = f"default/{spawner.pod_name}"
    await wait_for(
        lambda: reflector.pods[key]["metadata"]["labels"].get("seen") == "yes",
        timeout=10,
        what="reflector to see the label change",
    )
    assert not reflector.watch_task.done()
    await spawner.stop()


@pytest.mark.kubelet("light")
async def test_start_stop_with_the_light_kubelet(spawner_factory, core):
    """With a kubelet running the pod, KubeSpawner's whole cycle needs no help from the test."""
    spawner = spawner_factory(delete_grace_period=1)
    url = await asyncio.wait_for(spawner.start(), 20)
    pod = await core.read_namespaced_pod(spawner.pod_name, "default")
    assert url == f"http://{pod.status.pod_ip}:8888"
    assert await spawner.poll() is None
    await spawner.stop()
    assert await spawner.poll() == 1
