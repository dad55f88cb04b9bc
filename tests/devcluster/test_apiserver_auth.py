"""The API server answers only holders of the kubeconfig's token, over TLS; its files are private."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import ssl
import stat

import aiohttp
import kubernetes
import pytest
import yaml
from kubernetes_asyncio import client, config

UNAUTHORIZED = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "Unauthorized", "reason": "Unauthorized", "code": 401}  # fmt: skip


def anonymous(cluster, headers: dict | None = None) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        headers=headers or {}, connector=aiohttp.TCPConnector(ssl=cluster.access.ssl_context())
    )


@pytest.mark.parametrize("path", ["/api/v1/namespaces/default/pods", "/version", "/api", "/apis",
                                  "/api/v1/namespaces/default/pods/x/log"])  # fmt: skip
async def test_requests_without_the_token_get_401(devcluster, path):
    async with anonymous(devcluster) as http, http.get(devcluster.url + path) as resp:
        assert resp.status == 401 and await resp.json() == UNAUTHORIZED
    wrong = {"Authorization": "Bearer " + "x" * len(devcluster.token)}
    async with anonymous(devcluster, wrong) as http, http.get(devcluster.url + path) as resp:
        assert resp.status == 401 and await resp.json() == UNAUTHORIZED


async def test_writes_without_the_token_change_nothing(devcluster, core):
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "intruder"}}
    async with (
        anonymous(devcluster) as http,
        http.post(f"{devcluster.url}/api/v1/namespaces", json=body) as resp,
    ):
        assert resp.status == 401
    names = {ns.metadata.name for ns in (await core.list_namespace()).items}
    assert "intruder" not in names


async def test_health_checks_stay_public_and_the_token_opens_the_rest(devcluster):
    for path in ("/healthz", "/livez", "/readyz"):
        async with anonymous(devcluster) as http, http.get(devcluster.url + path) as resp:
            assert resp.status == 200 and await resp.text() == "ok"
    async with devcluster.access.session() as http, http.get(f"{devcluster.url}/version") as resp:
        assert resp.status == 200 and (await resp.json())["major"] == "1"


async def test_the_server_speaks_only_tls_with_the_kubeconfigs_ca(devcluster):
    assert devcluster.url.startswith("https://127.0.0.1:")
    plain = devcluster.url.replace("https://", "http://")
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientError):
            async with http.get(plain + "/healthz") as resp:
                await resp.read()
        # a client that does not trust the cluster's CA refuses the certificate
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            async with http.get(
                devcluster.url + "/healthz", ssl=ssl.create_default_context()
            ) as resp:
                await resp.read()


async def test_the_kubeconfig_and_state_directory_are_private(devcluster):
    config = yaml.safe_load(devcluster.kubeconfig_path.read_text())
    cluster = config["clusters"][0]["cluster"]
    assert cluster["server"] == devcluster.url
    assert base64.b64decode(cluster["certificate-authority-data"]) == devcluster.certificate.ca_pem
    assert config["users"][0]["user"] == {"token": devcluster.token}
    assert stat.S_IMODE(devcluster.kubeconfig_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(devcluster.state_dir.stat().st_mode) == 0o700


async def test_both_official_clients_are_refused_without_the_token(devcluster, tmp_path):
    text = devcluster.kubeconfig_path.read_text().replace(devcluster.token, "not-the-token")
    wrong = tmp_path / "kubeconfig"
    wrong.write_text(text)
    api = await config.new_client_from_config(config_file=str(wrong))
    async with api:
        with pytest.raises(client.ApiException) as info:
            await client.CoreV1Api(api).list_namespaced_pod("default")
    assert info.value.status == 401 and json.loads(info.value.body) == UNAUTHORIZED

    def sync_list() -> None:
        with kubernetes.config.new_client_from_config(config_file=str(wrong)) as sync_api:
            kubernetes.client.CoreV1Api(sync_api).list_namespaced_pod("default")

    with pytest.raises(kubernetes.client.ApiException) as sync_info:
        await asyncio.to_thread(sync_list)
    assert sync_info.value.status == 401 and json.loads(sync_info.value.body) == UNAUTHORIZED


async def test_metrics_count_requests_by_client_and_method_and_need_the_token(devcluster, core):
    async with anonymous(devcluster) as http, http.get(f"{devcluster.url}/metrics") as resp:
        assert resp.status == 401

    async def kubernetes_client_gets() -> int:
        async with devcluster.access.session() as http:
            async with http.get(f"{devcluster.url}/metrics") as resp:
                assert resp.status == 200
                text = await resp.text()
        sample = re.search(
            r'^devcluster_requests_total\{client="OpenAPI-Generator",method="GET"\} (\d+)$',
            text,
            re.MULTILINE,
        )
        return int(sample.group(1)) if sample else 0

    before = await kubernetes_client_gets()
    for _ in range(3):
        await core.list_namespaced_pod("default")
    assert await kubernetes_client_gets() == before + 3
