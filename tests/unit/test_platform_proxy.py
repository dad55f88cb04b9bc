"""``platform-chp`` against a real configurable-http-proxy: CHP's traffic-based activity is gone.

The stock ConfigurableHTTPProxy, on the same CHP and route, is the control: it does report
``last_activity`` after a request goes through, which JupyterHub would copy to the server.
"""

from __future__ import annotations

import os

import aiohttp
import pytest
from aiohttp import web
from jupyterhub.proxy import ConfigurableHTTPProxy

from jupyterhub_platform.devcluster import proxy as chp
from jupyterhub_platform.devcluster.procs import ProcessGroupSet, free_port, port_is_open, wait_for
from jupyterhub_platform.proxy import PlatformProxy, without_traffic_activity

LOOPBACK = "127.0.0.1"
ROUTE = "/user/alice/"


def test_without_traffic_activity_keeps_everything_else():
    routes = {
        ROUTE: {
            "routespec": ROUTE,
            "target": "http://10.0.0.5:8888",
            "data": {"user": "alice", "server_name": "", "last_activity": "2026-01-01T00:00:00Z"},
        },
        "/": {"routespec": "/", "target": "http://hub:8081", "data": {"hub": True}},
    }
    stripped = without_traffic_activity(routes)
    assert stripped[ROUTE]["data"] == {"user": "alice", "server_name": ""}
    assert stripped[ROUTE]["target"] == "http://10.0.0.5:8888"
    assert stripped["/"] == routes["/"]
    assert "last_activity" in routes[ROUTE]["data"]  # the input is left alone


@pytest.fixture
async def chp_api(tmp_path):
    binary = chp.find_chp(tmp_path)
    if binary is None:
        pytest.skip("configurable-http-proxy is not installed (./run nox installs it)")
    port, api_port, token = free_port(LOOPBACK), free_port(LOOPBACK), "test-proxy-token"
    procs = ProcessGroupSet()
    argv = chp.chp_argv(
        binary,
        ip=LOOPBACK,
        port=port,
        api_ip=LOOPBACK,
        api_port=api_port,
        hub_url=f"http://{LOOPBACK}:{free_port(LOOPBACK)}",
    )
    env = {"CONFIGPROXY_AUTH_TOKEN": token, "PATH": os.environ["PATH"]}
    proc = procs.start(argv, name="proxy", log_path=tmp_path / "chp.log", env=env)
    try:
        await wait_for(
            lambda: port_is_open(LOOPBACK, api_port), timeout=30, interval=0.1, what="CHP's API"
        )
        yield f"http://{LOOPBACK}:{port}", f"http://{LOOPBACK}:{api_port}", token
    finally:
        proc.stop()


@pytest.fixture
async def backend():
    async def hello(_request):
        return web.Response(text="hello")

    app = web.Application()
    app.router.add_get("/{tail:.*}", hello)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port(LOOPBACK)
    await web.TCPSite(runner, LOOPBACK, port).start()
    yield f"http://{LOOPBACK}:{port}"
    await runner.cleanup()


@pytest.mark.processes  # the real configurable-http-proxy
async def test_routes_carry_no_traffic_activity(chp_api, backend):
    public, api_url, token = chp_api
    stock = ConfigurableHTTPProxy(api_url=api_url, auth_token=token, should_start=False)
    ours = PlatformProxy(api_url=api_url, auth_token=token, should_start=False)
    await ours.add_route(ROUTE, backend, {"user": "alice", "server_name": ""})
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{public}{ROUTE}lab") as resp:
            assert resp.status == 200 and await resp.text() == "hello"

    seen_by_stock = (await stock.get_all_routes())[ROUTE]
    assert "last_activity" in seen_by_stock["data"]  # CHP counted the proxied request
    seen_by_ours = (await ours.get_all_routes())[ROUTE]
    assert seen_by_ours["target"] == backend
    assert seen_by_ours["data"] == {"user": "alice", "server_name": ""}
