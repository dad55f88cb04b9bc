"""The services' hub client against a small HTTP server playing the hub's failure modes (the
real hub is in tests/e2e/test_culler_e2e.py), and the culler's pure views."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta, timezone

import pytest
from tornado import web
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets

from jupyterhub_platform.policy.cull_decision import CULL, Decision
from jupyterhub_platform.services.common.hub_client import PAGINATION, HubAPIError, HubClient
from jupyterhub_platform.services.common.policy_source import PolicyLoadError, PolicySource
from jupyterhub_platform.services.culler.views import ServerView, user_is_idle
from jupyterhub_platform.testing.shipped import shipped_policy_file

USERS = [{"name": f"u{i}"} for i in range(7)]


class Users(web.RequestHandler):
    """GET /users, paginated as JupyterHub 5/6 does when asked with the pagination media type."""

    offsets: list[int] = []  # of the pages served
    served: asyncio.Event

    def get(self):
        assert self.request.headers["Authorization"] == "token secret"
        offset, limit = int(self.get_argument("offset", "0")), int(self.get_argument("limit"))
        Users.offsets.append(offset)
        Users.served.set()
        items = USERS[offset : offset + limit]
        following = None
        if offset + limit < len(USERS):
            base = f"{self.request.protocol}://{self.request.host}/hub/api/users"
            following = {"url": f"{base}?offset={offset + limit}&limit={limit}"}
        if self.request.headers.get("Accept") == PAGINATION:
            self.finish({"items": items, "_pagination": {"next": following}})
        else:
            self.finish(json.dumps(items))


class Flaky(web.RequestHandler):
    calls = 0

    def get(self, status):
        Flaky.calls += 1
        if Flaky.calls <= 2:
            raise web.HTTPError(int(status))
        self.finish({"ok": True})


@pytest.fixture
async def hub():
    app = web.Application([("/hub/api/users", Users), (r"/hub/api/flaky/(\d+)", Flaky)])
    sockets = bind_sockets(0, "127.0.0.1")
    server = HTTPServer(app)
    server.add_sockets(sockets)
    Flaky.calls = 0
    Users.offsets, Users.served = [], asyncio.Event()
    yield f"http://127.0.0.1:{sockets[0].getsockname()[1]}/hub/api"
    server.stop()


async def test_paged_follows_next_links(hub):
    client = HubClient(hub, "secret", page_size=3)
    assert [u async for u in client.paged("/users")] == USERS
    assert client.requests == 3  # 3 + 3 + 1 items


async def test_paged_asks_for_the_next_page_before_handing_out_this_one(hub):
    client = HubClient(hub, "secret", page_size=3)
    pages = client.paged("/users")
    assert await anext(pages) == USERS[0]
    Users.served.clear()
    await asyncio.wait_for(Users.served.wait(), 10)  # served while we hold page one
    assert Users.offsets == [0, 3]
    assert [await anext(pages) for _ in range(3)] == USERS[1:4]
    await pages.aclose()  # stopping early drops the prefetch of the last page
    assert client.requests <= 3 and client.errors == 0


async def test_retries_with_backoff_on_hub_errors(hub):
    client = HubClient(hub, "secret", backoff=0.01)
    assert await client.request("GET", "/flaky/503") == (200, {"ok": True})
    assert (client.requests, client.errors) == (3, 2)


async def test_client_errors_are_not_retried_and_retries_end(hub):
    client = HubClient(hub, "secret", backoff=0.01)
    with pytest.raises(HubAPIError, match="GET /flaky/403: 403") as info:
        await client.request("GET", "/flaky/403")
    assert info.value.status == 403 and client.requests == 1
    Flaky.calls = -10
    with pytest.raises(HubAPIError, match="502"):
        await HubClient(hub, "secret", retries=2, backoff=0.01).request("GET", "/flaky/502")


async def test_unreachable_hub_is_an_error_after_retries():
    client = HubClient("http://127.0.0.1:9/hub/api", "secret", retries=1, backoff=0.01)
    with pytest.raises(HubAPIError, match="599"):
        await client.request("GET", "/users")
    assert client.errors == 2


NOW = datetime(2026, 12, 2, 12, tzinfo=timezone.utc)


def test_audit_line_names_user_server_profile_policy_and_reason():
    view = ServerView("alice", "", "jupyterlab", Decision(CULL, "idle", "standard", 3605.2, 7200))
    assert view.summary(dry_run=False) == (
        "culling user=alice server=(default) profile=jupyterlab policy=standard reason=idle "
        "idle=3605s age=7200s"
    )
    assert view.summary(dry_run=True).startswith("would cull user=alice")
    event = view.audit_event(dry_run=True, actor="culler")
    assert (event["action"], event["actor"], event["subject"], event["result"]) == (
        "server.cull", "culler", "alice", "dry_run")  # fmt: skip
    assert (event["reason"], event["details"]["policy"], event["details"]["idle_seconds"]) == (
        "idle", "standard", 3605)  # fmt: skip


@pytest.mark.parametrize(
    ("user", "idle"),
    [
        ({"servers": {}, "last_activity": (NOW - timedelta(days=8)).isoformat()}, True),
        ({"servers": {}, "last_activity": (NOW - timedelta(days=6)).isoformat()}, False),
        ({"servers": {"": {}}, "last_activity": (NOW - timedelta(days=8)).isoformat()}, False),
        ({"admin": True, "last_activity": (NOW - timedelta(days=8)).isoformat()}, False),
        ({"last_activity": None, "created": (NOW - timedelta(days=9)).isoformat()}, True),
        ({"last_activity": None, "created": None}, False),
    ],
)
def test_users_without_servers(user, idle):
    assert user_is_idle(user, NOW, 7 * 86400, cull_admins=False) is idle


def test_policy_source_loads_the_shipped_policy_with_the_bundled_profiles(monkeypatch):
    monkeypatch.setenv("JUPYTERHUB_PLATFORM_POLICY", str(shipped_policy_file()))
    monkeypatch.delenv("JUPYTERHUB_PLATFORM_PROFILES", raising=False)
    policy = PolicySource().load()
    assert set(policy.culling.policies) >= {"standard", "gpu", "desktop"}
    assert {r.slug for r in policy.profile_rules} >= {"jupyterlab", "desktop"}


def test_policy_source_names_file_line_and_field_of_a_bad_policy(tmp_path):
    bad = tmp_path / "policy.yaml"
    bad.write_text("groups:\n  researchers: {culling_policy: standrd}\n")
    with pytest.raises(PolicyLoadError, match=r"policy.yaml:2: groups.researchers.culling_policy"):
        PolicySource(policy_file=str(bad)).load()
