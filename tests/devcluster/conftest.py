"""Fixtures: a started emulator and a real kubernetes_asyncio client pointed at it.

The kubelet mode defaults to "none"; a test or module picks another with
``@pytest.mark.kubelet("process")``, and how process pods are isolated with
``@pytest.mark.isolation("none")`` (default "auto": namespaces when the tests run as root;
"namespaces" fails under CI and skips elsewhere when pods cannot be isolated).
"""

from __future__ import annotations

import kubernetes
import pytest
from kubelet_helpers import needs_namespaces
from kubernetes_asyncio import client, config

from jupyterhub_platform.devcluster.cluster import DevCluster


def pytest_configure(config):
    config.addinivalue_line("markers", "kubelet(mode): kubelet mode for the devcluster fixture")
    config.addinivalue_line("markers", "isolation(mode): pod isolation for the devcluster fixture")


@pytest.fixture
def private_paths() -> list:
    """Directories the devcluster hides from pods besides its state (a test may override this)."""
    return []


@pytest.fixture
async def devcluster(request, tmp_path, private_paths):
    marker = request.node.get_closest_marker("kubelet")
    isolation = request.node.get_closest_marker("isolation")
    isolation = isolation.args[0] if isolation else "auto"
    if isolation == "namespaces":
        needs_namespaces()
    cluster = DevCluster(
        tmp_path / "devcluster",
        kubelet=marker.args[0] if marker else "none",
        isolation=isolation,
        private_paths=private_paths,
    )
    await cluster.start()
    try:
        yield cluster
    finally:
        await cluster.stop()


@pytest.fixture
async def k8s(devcluster):
    api = await config.new_client_from_config(config_file=str(devcluster.kubeconfig_path))
    async with api:
        yield api


@pytest.fixture
def core(k8s):
    return client.CoreV1Api(k8s)


@pytest.fixture
def sync_core(devcluster):
    """The official synchronous client (``kubernetes``) on the same emulator, from its kubeconfig.

    Its calls block: run them with ``asyncio.to_thread`` so the emulator keeps serving.
    """
    api = kubernetes.config.new_client_from_config(config_file=str(devcluster.kubeconfig_path))
    with api:
        yield kubernetes.client.CoreV1Api(api)
