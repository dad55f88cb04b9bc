"""A scripted day on the local platform (stock hub config, culler, backup and credentials
services, the development IdP): the metrics move by exactly what happened, the audit trail
holds exactly one event per security-relevant action, and neither holds a secret.

The day: alice and bob log in, carol (in no allowed group) is refused; alice asks for a profile
that does not exist; alice starts JupyterLab (her credential sets issued at spawn) and bob, an
admin, Streamlit; alice asks the credentials service for ``research-s3`` with her own token; bob
creates an API token in alice's name and opens her JupyterLab; bob runs the backups and alice restores a file; alice's
idle server is culled (bob's policy exempts him).
"""

from __future__ import annotations

import base64
import collections
import html
import json
import re

import aiohttp
import pytest
import pytest_asyncio
import yaml
from audit_lines import audit_events
from hub_user import core_api, hub_users, local_platform
from platform_values import METRICS_ENDPOINTS, fast_culler_values, metric_values

from jupyterhub_platform.chart.values import load_values_file, policy_in_values
from jupyterhub_platform.devcluster.platform import shipped_values_dir
from jupyterhub_platform.devcluster.procs import wait_for
from tests.backup.backup_fixtures import require_backup_programs

# On JupyterHub 6 (the Prometheus e2e runs the same services on the hub image's 5.5).
pytestmark = [pytest.mark.e2e, pytest.mark.jh6_only, pytest.mark.asyncio(loop_scope="session")]

IDLE = 25  # seconds: alice's policy (standard) idles out after this
ENDPOINTS = METRICS_ENDPOINTS


def day_policy() -> str:
    policy = yaml.safe_load(
        policy_in_values(load_values_file(shipped_values_dir() / "values.yaml")).text
    )
    policy["culling"]["policies"]["standard"] = {"idle_timeout": IDLE}
    return yaml.safe_dump(policy, sort_keys=False)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def day_platform(z2jh_chart):
    require_backup_programs()
    extra = fast_culler_values(day_policy(), every=3, warn_before=5)
    async with local_platform(
        z2jh_chart, "day-", backups=True, credentials=True, extra_values=extra
    ) as running:
        yield running


async def scrape(platform) -> dict[str, dict[str, float]]:
    headers = {"Authorization": f"token {platform.admin_token}"}
    found = {}
    async with aiohttp.ClientSession(headers=headers) as http:
        for name, path in ENDPOINTS.items():
            async with http.get(platform.hub_url + path) as resp:
                assert resp.status == 200, (name, resp.status)
                found[name] = metric_values(await resp.text())
    return found


def increments(before: dict, after: dict, families: tuple[str, ...]) -> dict[str, float]:
    """Samples of ``families`` (name prefixes) that changed, with how much."""
    moved = {}
    for endpoint, samples in after.items():
        for sample, value in samples.items():
            if not sample.startswith(families) or "_created" in sample:
                continue
            delta = value - before[endpoint].get(sample, 0.0)
            if delta:
                moved[f"{endpoint}:{sample}"] = delta
    return moved


async def service(platform, method: str, path: str, token: str, **kwargs) -> tuple[int, object]:
    async with (
        aiohttp.ClientSession(headers={"Authorization": f"token {token}"}) as http,
        http.request(method, platform.hub_url + path, **kwargs) as resp,
    ):
        body = await resp.text()
        return resp.status, json.loads(body) if "json" in resp.content_type else body


async def open_as_admin(admin, owner) -> int:
    """``admin`` opens ``owner``'s JupyterLab: the hub asks them to confirm, they do."""
    async with admin.session.get(f"{owner.server_url}/lab") as resp:
        page, url = await resp.text(), resp.url
    assert url.path.endswith("/api/oauth2/authorize"), url
    fields = re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', page)
    assert "_xsrf" in dict(fields), page
    async with admin.session.post(url, data=[(k, html.unescape(v)) for k, v in fields]) as resp:
        await resp.read()
        return resp.status


async def own_token(user) -> str:
    resp = await user.api("POST", f"/users/{user.name}/tokens", json={"note": "day"})
    assert resp.status == 201, await resp.text()
    return (await resp.json())["token"]


async def test_a_scripted_day_moves_the_metrics_and_the_audit_trail_by_exactly_what_happened(
    day_platform,
):
    platform = day_platform
    before = await scrape(platform)
    async with hub_users(platform) as make, core_api(platform) as k8s:
        alice, bob, carol = make("alice"), make("bob"), make("carol")
        assert await alice.login() == 302 and await bob.login() == 302
        assert await carol.login() == 403

        refused = await alice.api("POST", "/users/alice/server", json={"profile": "no-such"})
        assert refused.status == 400
        await alice.spawn()
        await bob.spawn({"profile": "streamlit"})
        await alice.wait_ready()
        await bob.wait_ready()

        bob_token, alice_token = await own_token(bob), await own_token(alice)
        status, issued = await service(platform, "GET",
                                       "/services/credentials/api/v1/credentials/research-s3",
                                       alice_token)  # fmt: skip
        assert status == 200 and "aws_secret_access_key" in issued["values"], status
        secrets = list(issued["values"].values())

        impersonation = await bob.api("POST", "/users/alice/tokens", json={"note": "support"})
        assert impersonation.status == 201
        assert await open_as_admin(bob, alice) == 200
        status, run = await service(platform, "POST", "/services/backup/api/run", bob_token)
        assert status == 201 and len(run["jobs"]) == 2, run  # alice's and bob's homes

        async def backed_up() -> bool:
            status, users = await service(platform, "GET", "/services/backup/api/users", bob_token)
            return status == 200 and all(u["last_success"] for u in users["users"])

        await wait_for(backed_up, timeout=180, interval=1, what="both homes backed up")
        status, listed = await service(platform, "GET", "/services/backup/api/snapshots",
                                       alice_token)  # fmt: skip
        assert status == 200 and listed["snapshots"], listed
        newest = listed["snapshots"][0]
        body = {"snapshot": newest["id"], "paths": ["/"]}
        status, restore = await service(platform, "POST", "/services/backup/api/restore",
                                        alice_token, json=body)  # fmt: skip
        assert status == 201, restore

        async def culled() -> bool:
            return "" not in (await alice.model()).get("servers", {})

        await wait_for(culled, timeout=IDLE * 6, interval=1, what="alice's server culled")
        assert "" in (await bob.model())["servers"]  # admins are exempt
        secrets += [
            base64.b64decode(v).decode(errors="replace")
            for s in (await k8s.list_namespaced_secret("default")).items
            for v in (s.data or {}).values()
        ]
        after = await scrape(platform)

    log = (platform.logs_dir / "hub.log").read_text(errors="replace")
    events = audit_events(log)
    happened = collections.Counter(
        (e["action"], e["actor"], e["subject"], e["result"], e["reason"])
        for e in events
        if not (e["action"] == "credential.issue" and e["details"]["via"] == "renewal")
    )
    assert happened == collections.Counter(EXPECTED_EVENTS), json.dumps(events, indent=1)
    spawn = audit_events(log, "server.start", subject="alice")[0]["details"]
    assert (spawn["profile"], spawn["options"]["profile"]) == ("jupyterlab", "jupyterlab")

    moved = increments(before, after, COUNTED)
    assert moved == EXPECTED_INCREMENTS, json.dumps(moved, indent=1, sort_keys=True)

    exported = json.dumps(after) + json.dumps(events)
    values = {v for v in [*secrets, alice_token, bob_token, platform.admin_token] if len(v) >= 12}
    assert len(values) >= 6
    assert not [v for v in values if v in exported], "a secret in the metrics or the audit trail"


AUTH = "OIDCAuthenticator"
EXPECTED_EVENTS = [
    ("login", "alice", "alice", "ok", ""),
    ("login", "bob", "bob", "ok", ""),
    ("login", "carol", "carol", "refused", "no_allowed_group"),
    ("admin.granted", "policy", "bob", "ok", ""),
    ("roles.changed", "policy", "bob", "ok", ""),
    ("server.refused", "alice", "alice", "refused", "invalid_options"),
    ("server.start", "alice", "alice", "ok", ""),
    ("server.start", "bob", "bob", "ok", ""),
    ("credential.issue", "alice", "alice", "ok", ""),  # research-s3 at spawn
    ("credential.issue", "alice", "alice", "ok", ""),  # mlflow at spawn
    ("credential.issue", "bob", "bob", "ok", ""),
    ("credential.issue", "bob", "bob", "ok", ""),
    ("credential.issue", "alice", "alice", "ok", ""),  # research-s3 for her own token
    ("other_user.token", "bob", "alice", "ok", ""),
    ("other_user.server", "bob", "alice", "ok", ""),
    ("backup.run", "bob", "alice", "ok", ""),
    ("backup.run", "bob", "bob", "ok", ""),
    ("backup.restore", "alice", "alice", "ok", ""),
    ("server.cull", "culler", "alice", "ok", "idle"),
]
COUNTED = (
    "jupyterhub_platform_logins_total",
    "jupyterhub_platform_policy_changes_total",
    "jupyterhub_platform_spawn_refusals_total",
    "jupyterhub_platform_spawns_total",
    "jupyterhub_platform_other_user_actions_total",
    "jupyterhub_platform_credentials_issued_total",
    "culler_servers_culled_total",
    "credentials_issuances_total",
    "backup_homes",
)
EXPECTED_INCREMENTS = {
    f'hub:jupyterhub_platform_logins_total{{authenticator="{AUTH}",reason="",result="ok"}}': 2.0,
    f'hub:jupyterhub_platform_logins_total{{authenticator="{AUTH}",reason="no_allowed_group",'
    'result="refused"}': 1.0,
    'hub:jupyterhub_platform_policy_changes_total{change="admin_granted"}': 1.0,
    'hub:jupyterhub_platform_policy_changes_total{change="roles_changed"}': 1.0,
    'hub:jupyterhub_platform_spawn_refusals_total{profile="other",reason="invalid_options"}': 1.0,
    'hub:jupyterhub_platform_spawns_total{profile="jupyterlab",result="started"}': 1.0,
    'hub:jupyterhub_platform_spawns_total{profile="streamlit",result="started"}': 1.0,
    'hub:jupyterhub_platform_other_user_actions_total{action="other_user.token",result="ok"}': 1.0,
    'hub:jupyterhub_platform_other_user_actions_total{action="other_user.server",result="ok"}': 1.0,
    'hub:jupyterhub_platform_credentials_issued_total{provider="s3-sts",result="issued",'
    'set="research-s3"}': 2.0,
    'hub:jupyterhub_platform_credentials_issued_total{provider="template",result="issued",'
    'set="mlflow"}': 2.0,
    'culler:culler_servers_culled_total{dry_run="false",policy="standard",reason="idle"}': 1.0,
    'credentials:credentials_issuances_total{provider="s3-sts",result="issued",'
    'set="research-s3"}': 1.0,
    'backup:backup_homes{state="ok"}': 2.0,
}
