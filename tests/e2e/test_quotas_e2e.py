"""Quotas on the local platform: the shipped policy with a tight quota for alice's group
(two concurrent servers), refused on the REST API and on the spawn form before any pod exists,
freed by stopping a server, not raced past by parallel spawns, and still counted after the hub
restarts. The refusals go through JupyterHub's own handlers, so this runs on both JupyterHub
matrices."""

from __future__ import annotations

import asyncio
import re

import aiohttp
import pytest
import pytest_asyncio
import yaml
from hub_user import core_api, hub_users, local_platform, user_pods

from jupyterhub_platform.chart.values import load_values_file, policy_in_values
from jupyterhub_platform.devcluster.platform import shipped_values_dir
from jupyterhub_platform.devcluster.procs import wait_for

pytestmark = [pytest.mark.jh6_only, pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]

LIMIT = 2
REFUSAL = f"You are using {LIMIT} of {LIMIT} servers (group researchers)"


def tight_policy_text() -> str:
    """The shipped policy with researchers limited to LIMIT concurrent servers each."""
    policy = yaml.safe_load(
        policy_in_values(load_values_file(shipped_values_dir() / "values.yaml")).text
    )
    quotas = policy.setdefault("quotas", {})
    quotas.setdefault("groups", {})["researchers"] = {"user": {"servers": LIMIT}}
    return yaml.safe_dump(policy, sort_keys=False)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def quota_platform(z2jh_chart):
    extra = {
        "hub": {
            "config": {"JupyterHub": {"allow_named_servers": True}},
            "extraFiles": {"platform-policy": {"stringData": tight_policy_text()}},
        }
    }
    async with local_platform(z2jh_chart, "quotas-", extra_values=extra) as running:
        yield running


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def pods_api(quota_platform):
    async with core_api(quota_platform) as api:
        yield api


@pytest_asyncio.fixture(loop_scope="session")
async def alice(quota_platform):
    async with hub_users(quota_platform) as make:
        user = make("alice")
        assert await user.login() == 302
        yield user
        await stop_all(user)


async def servers(user) -> dict:
    return (await user.model()).get("servers", {})


async def stop_all(user) -> None:
    for name in await servers(user):
        await user.api(
            "DELETE", f"/users/{user.name}/servers/{name}" if name else f"/users/{user.name}/server"
        )

    async def none_left() -> bool:
        return not await servers(user)

    await wait_for(none_left, timeout=120, interval=0.5, what="alice's servers stopped")


async def spawn(user, name: str):
    return await user.api(
        "POST", f"/users/{user.name}/servers/{name}", json={"profile": "jupyterlab"}
    )


async def wait_ready(user, names) -> None:
    async def ready() -> bool:
        model = await servers(user)
        return all(model.get(n, {}).get("ready") for n in names)

    await wait_for(ready, timeout=180, interval=0.5, what=f"alice's servers {names} ready")


async def server_names_of_pods(pods_api, user) -> set[str]:
    pods = await user_pods(pods_api, user.name)
    return {p.metadata.annotations.get("hub.jupyter.org/servername", "") for p in pods}


async def quota_use(platform) -> dict:
    """The admin view of use by group."""
    headers = {"Authorization": f"token {platform.admin_token}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.get(f"{platform.hub_api_url}/platform/quotas") as resp:
            assert resp.status == 200, await resp.text()
            return await resp.json()


async def test_at_the_limit_rest_and_form_are_refused_and_stopping_frees_it(
    alice, pods_api, quota_platform
):
    for name in ("one", "two"):
        resp = await spawn(alice, name)
        assert resp.status in (201, 202), await resp.text()
    await wait_ready(alice, ["one", "two"])

    async with alice.session.get(f"{alice.hub_url}/hub/spawn/{alice.name}/three") as page:
        shown = await page.text()
        assert page.status == 200, shown
    assert f"Servers: {LIMIT} of {LIMIT} in use (group researchers)" in shown
    researchers = (await quota_use(quota_platform))["groups"]["researchers"]
    assert researchers["use"]["servers"] == LIMIT and researchers["user_limits"] == {"servers": 2}
    assert {(s["user"], s["name"]) for s in researchers["servers"]} == {
        ("alice", "one"),
        ("alice", "two"),
    }
    async with aiohttp.ClientSession() as anonymous:
        async with anonymous.get(f"{quota_platform.hub_api_url}/platform/quotas") as resp:
            assert resp.status == 403

    resp = await spawn(alice, "three")
    body = await resp.json()
    assert resp.status == 403, body
    assert REFUSAL in body["message"] and "stop 'one' or 'two'" in body["message"]

    url = f"{alice.hub_url}/hub/spawn/{alice.name}/three"
    data = {"profile": "jupyterlab", "_xsrf": alice.xsrf_token(url) or ""}
    async with alice.session.post(url, data=data) as form:
        page = await form.text()
        assert form.status == 403, page
    assert REFUSAL in page

    assert "three" not in await servers(alice)
    assert await server_names_of_pods(pods_api, alice) == {"one", "two"}

    resp = await alice.api("DELETE", f"/users/{alice.name}/servers/one")
    assert resp.status in (202, 204), await resp.text()

    async def one_stopped() -> bool:
        return "one" not in await servers(alice)

    await wait_for(one_stopped, timeout=120, interval=0.5, what="alice's server 'one' stopped")
    resp = await spawn(alice, "three")
    assert resp.status in (201, 202), await resp.text()
    await wait_ready(alice, ["two", "three"])


async def test_ten_parallel_spawns_against_a_limit_of_two_start_exactly_two(alice, pods_api):
    names = [f"p{i}" for i in range(10)]
    responses = await asyncio.gather(*(spawn(alice, n) for n in names))
    started = [n for n, r in zip(names, responses, strict=True) if r.status in (201, 202)]
    refused = [r for r in responses if r.status == 403]
    assert len(started) == LIMIT and len(refused) == len(names) - LIMIT, [
        (r.status, r.reason) for r in responses
    ]
    for resp in refused:
        found = re.search(
            rf"{re.escape(REFUSAL)}: stop '(p\d)' or '(p\d)'", (await resp.json())["message"]
        )
        assert found and set(found.groups()) == set(started), found
    await wait_ready(alice, started)
    assert set(await servers(alice)) == set(started)
    assert await server_names_of_pods(pods_api, alice) == set(started)


async def test_use_is_still_counted_after_the_hub_restarts(alice, quota_platform):
    """Use comes from the hub's database and the servers' saved options, not from memory."""
    for name in ("one", "two"):
        resp = await spawn(alice, name)
        assert resp.status in (201, 202), await resp.text()
    await wait_ready(alice, ["one", "two"])

    await quota_platform.restart_hub()
    await wait_ready(alice, ["one", "two"])  # the new hub found both servers running
    resp = await spawn(alice, "three")
    body = await resp.json()
    assert resp.status == 403, body
    assert REFUSAL in body["message"]
    assert set(await servers(alice)) == {"one", "two"}
