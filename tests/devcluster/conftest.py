"""Fixtures: a started emulator and a real kubernetes_asyncio client pointed at it.

The kubelet mode defaults to "none"; a test or module picks another with
``@pytest.mark.kubelet("process")``.
"""

from __future__ import annotations

import pytest
from kubernetes_asyncio import client, config

from jupyterhub_platform.devcluster.cluster import DevCluster


def pytest_configure(config):
    config.addinivalue_line("markers", "kubelet(mode): kubelet mode for the devcluster fixture")


@pytest.fixture
async def devcluster(request, tmp_path):
    marker = request.node.get_closest_marker("kubelet")
    cluster = DevCluster(tmp_path / "devcluster", kubelet=marker.args[0] if marker else "none")
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
