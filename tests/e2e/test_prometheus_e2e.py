"""The shipped Grafana dashboard's queries on a real Prometheus scraping the local platform.

One platform with every service (``backups=True, credentials=True``) and the shipped
``monitoring.yaml`` overlay: its ``prometheus`` service's token (``read:metrics`` only) is what
Prometheus (Debian's binary, run here) sends, every second, to the hub's and each service's
``/metrics`` through the proxy. A little activity gives the labelled counters their series:
logins (alice and bob ok, carol refused, one with a tampered nonce: an ID token rejected), a
spawn refused for a bad option, two spawns in one profile (alice's under a short max age, which
the culler, run every second, stops; bob's stays), credentials issued and refused, a request on
another user's tokens, a backup run; credential lifetimes short enough to be renewed.

Then every dashboard query, with Grafana's ``$__rate_interval`` as a window longer than the
run, must return data through ``/api/v1/query``. A counter's first sample is its first
increment, so a ``rate()`` may be 0 (still data); a quantile must be a number, which the second
spawn and the culler's cycles (observed after their series began) give. And every metric the
dashboard names must be in what the platform's endpoints export.
"""

from __future__ import annotations

import asyncio
import math
import secrets
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import aiohttp
import pytest
import pytest_asyncio
import yaml
from hub_user import ARTIFACTS, SPAWN_TIMEOUT, credentials_get, local_platform, require_programs
from metric_names import exposition_names, selected_names
from platform_values import CULLER
from prometheus_server import PROGRAM, SCRAPE_PATHS, prometheus

from jupyterhub_platform.chart.values import load_values_file, policy_in_values
from jupyterhub_platform.devcluster.platform import shipped_values_dir
from jupyterhub_platform.devcluster.procs import wait_for
from jupyterhub_platform.observability import dashboard
from tests.backup.backup_fixtures import require_backup_programs

pytestmark = [pytest.mark.e2e, pytest.mark.jh55_only, pytest.mark.asyncio(loop_scope="session")]

MAX_AGE = 8  # seconds: alice's short-life server is culled this long after it started
LIFETIME = 20  # seconds: research-s3 credentials, renewed at 80%
WINDOW = "10m"  # $__rate_interval here: longer than the whole run, so rates see every sample


def policy_text() -> str:
    """The shipped policy; jupyterlab with the scipy image lives at most MAX_AGE seconds,
    research-s3 (alice's and bob's, as researchers) lasts LIFETIME seconds."""
    policy = yaml.safe_load(
        policy_in_values(load_values_file(shipped_values_dir() / "values.yaml")).text
    )
    # an idle timeout too: the strictest policy of a server's is the one idling out first
    policy["culling"]["policies"]["short-life"] = {"idle_timeout": 600, "max_age": MAX_AGE}
    policy["culling"]["rules"].append(
        {"profile": "jupyterlab", "choice": "image/scipy", "policy": "short-life"}
    )
    policy["credential_sets"]["research-s3"]["config"]["duration"] = f"{LIFETIME}s"
    return yaml.safe_dump(policy, sort_keys=False)


@pytest.fixture(scope="module")
def scrape_token() -> str:
    return secrets.token_hex(32)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def platform(z2jh_chart, scrape_token):
    require_backup_programs()
    require_programs(PROGRAM)  # before the platform starts
    extra = {
        "hub": {
            "extraFiles": {"platform-policy": {"stringData": policy_text()}},
            "services": {
                "culler": {"command": [CULLER, "--cull-every=1"]},
                "prometheus": {"apiToken": scrape_token},
            },
        }
    }
    values = [shipped_values_dir() / f for f in ("values.yaml", "monitoring.yaml")]
    async with local_platform(
        z2jh_chart, "prometheus-", values_files=values, backups=True, credentials=True,
        extra_values=extra,
    ) as running:  # fmt: skip
        yield running


def _other_nonce(url: str) -> str:
    """The authorization URL with another nonce than the one the hub bound to the browser."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query["nonce"] = secrets.token_urlsafe(16)
    return urlunsplit(parts._replace(query=urlencode(query)))


async def _activity(platform, hub) -> None:
    alice, bob, carol, tampered = hub("alice"), hub("bob"), hub("carol"), hub("alice")
    assert await alice.login() == 302
    assert await carol.login() == 403  # in no group that may log in
    assert await tampered.login(tamper=_other_nonce) == 403  # the ID token's nonce differs
    for size in ("huge", "tiny"):  # refused before a spawn begins, twice (a rate of the refusals)
        resp = await alice.api(
            "POST", "/users/alice/server", json={"profile": "jupyterlab", "size": size}
        )
        assert resp.status == 400, resp.status
    # short-life: culled MAX_AGE after the spawn began, once it is ready (pending is kept)
    await alice.spawn({"profile": "jupyterlab", "image": "scipy"})

    async def culled() -> bool:
        return "" not in (await alice.model()).get("servers", {})

    await wait_for(culled, timeout=SPAWN_TIMEOUT + MAX_AGE, interval=0.5, what="alice's cull")
    assert await bob.login() == 302  # an admin: the policy grants admin, a change
    await bob.spawn({"profile": "jupyterlab"})  # the second spawn in the profile, kept
    await bob.wait_ready()

    resp = await alice.api("POST", "/users/alice/tokens", json={"note": "prometheus e2e"})
    assert resp.status == 201
    token = (await resp.json())["token"]
    assert (await credentials_get(platform, token, "credentials/research-s3"))[0] == 200
    assert (await credentials_get(platform, token, "credentials/course-materials"))[0] == 403
    resp = await alice.api("POST", "/users/bob/tokens", json={"note": "not hers"})
    assert resp.status == 403  # a request on another user's tokens, refused
    admin = {"Authorization": f"token {platform.admin_token}"}
    async with (
        aiohttp.ClientSession(headers=admin) as http,
        http.post(f"{platform.hub_url}/services/backup/api/run") as resp,
    ):
        assert resp.status == 201, await resp.text()


async def _exported(platform, token: str) -> set[str]:
    """The metric names the hub's and every service's endpoint exports, through the proxy."""
    names: set[str] = set()
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        for job, path in SCRAPE_PATHS.items():
            async with http.get(f"{platform.hub_url}{path}") as resp:
                assert resp.status == 200, (job, resp.status)
                names |= exposition_names(await resp.text())
    return names


def _has_data(expr: str, result: list[dict]) -> bool:
    if not result:
        return False
    if "histogram_quantile" in expr:  # a number, not the NaN of buckets that never grew
        return any(not math.isnan(float(sample["value"][1])) for sample in result)
    return True


async def test_every_dashboard_query_has_data_on_a_real_prometheus(platform, hub, scrape_token):
    address = urlsplit(platform.hub_url).netloc
    state = ARTIFACTS / f"{platform.state_dir.name}-prometheus"
    async with prometheus(state, address, scrape_token) as prom:

        async def all_up() -> bool:
            targets = await prom.targets()
            return set(targets) == set(SCRAPE_PATHS) and all(
                t["health"] == "up" for t in targets.values()
            )

        await wait_for(all_up, timeout=30, interval=0.5, what="every scrape target up")
        await _activity(platform, hub)

        model = dashboard.dashboard()
        queries = [(title, dashboard.expand(expr, WINDOW)) for title, expr in
                   dashboard.queries(model)]  # fmt: skip
        empty: dict[str, str] = {}

        async def every_query_has_data() -> bool:
            empty.clear()
            results = await asyncio.gather(*(prom.query(expr) for _, expr in queries))
            for (title, expr), result in zip(queries, results, strict=True):
                if not _has_data(expr, result):
                    empty[expr] = title
            return not empty

        try:
            await wait_for(every_query_has_data, timeout=45, interval=1, what="data")
        except TimeoutError:
            targets = await prom.targets()
            pytest.fail(
                f"queries without data: {empty}; targets: "
                f"{ {job: (t['health'], t['lastError']) for job, t in targets.items()} }"
            )
        assert len(queries) == sum(len(p.queries) for r in dashboard.ROWS for p in r.panels)

        exported = await _exported(platform, scrape_token)
        named = set().union(*(selected_names(expr) for _, expr in dashboard.queries(model)))
        assert named <= exported, sorted(named - exported)
        # Prometheus labelled each job's samples: the CPU and memory panels show each job that
        # exports process_*
        jobs = {s["metric"]["job"] for s in await prom.query("process_resident_memory_bytes")}
        assert {"hub", "culler", "credentials", "backup"} <= jobs, jobs
