"""The quotas section and the quota decision: pure functions, table tests."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from jupyterhub_platform.policy.cli import main as policy_main
from jupyterhub_platform.policy.errors import PolicyError
from jupyterhub_platform.policy.loader import policy_from_text
from jupyterhub_platform.policy.quota_decision import (
    Server,
    Usage,
    decide,
    group_use,
    usage_lines,
)
from jupyterhub_platform.profiles.access import entitlements_from_rules, offers
from jupyterhub_platform.profiles.catalogue import bundled_profiles_dir, load_catalogue
from jupyterhub_platform.profiles.form import form_view, render_form
from jupyterhub_platform.spawner.quota_gate import (
    QuotaState,
    counted_servers,
    quota_refusal,
    reserved,
    saved_usage,
)

GIB = 1024**3
GROUPS = """groups:
  users: {}
  gpu-users: {}
  big: {}
"""
QUOTAS = """quotas:
  defaults: {servers: 2, cpu: 4, memory: 8Gi, gpus: 0}
  groups:
    gpu-users:
      user: {gpus: 2, servers: 3}
      pool: {gpus: 4}
    big:
      user: {servers: 1, cpu: 16}
"""


def policy(quotas: str = QUOTAS):
    return policy_from_text(GROUPS + quotas, "policy.yaml")


def gpu(n: int = 1) -> Usage:
    return Usage(servers=1, cpu=1, memory=GIB, gpus=n)


SMALL = Usage(servers=1, cpu=1, memory=GIB)


@pytest.mark.parametrize(
    ("groups", "multi_group", "expected"),
    [
        (
            ["users"],
            None,
            {"servers": (2, "defaults"), "cpu": (4, "defaults"), "gpus": (0, "defaults")},
        ),
        (
            ["users", "gpu-users"],
            None,
            {"servers": (3, "group gpu-users"), "gpus": (2, "group gpu-users")},
        ),
        # most generous: big's 1 server loses to gpu-users' 3, big's 16 CPU beats defaults' 4
        (["gpu-users", "big"], None, {"servers": (3, "group gpu-users"), "cpu": (16, "group big")}),
        (
            ["gpu-users", "big"],
            "strictest",
            {"servers": (1, "group big"), "cpu": (16, "group big")},
        ),
    ],
)
def test_resolved_limits(groups, multi_group, expected):
    text = (
        QUOTAS
        if multi_group is None
        else QUOTAS.replace("quotas:\n", f"quotas:\n  multi_group: {multi_group}\n")
    )
    quota = policy(text).quota_for(groups)
    for field, (value, source) in expected.items():
        assert (quota.limits[field].value, quota.limits[field].source) == (value, source)
    assert [p.group for p in quota.pools] == (["gpu-users"] if "gpu-users" in groups else [])


def test_no_quotas_section_limits_nothing():
    assert policy("").quota_for(["users"]).unlimited


CASES = [
    # (name, groups, counted servers, request, members, allowed, message fragments)
    ("under the server limit", ["users"], [Server("ann", "a", SMALL)], SMALL, {}, True, []),
    (
        "at the server limit",
        ["users"],
        [Server("ann", "", SMALL), Server("ann", "b", SMALL)],
        SMALL,
        {},
        False,
        ["You are using 2 of 2 servers (defaults)", "stop your default server or 'b'"],
    ),
    (
        "other users' servers do not count against mine",
        ["users"],
        [Server("bob", "", SMALL), Server("bob", "b", SMALL)],
        SMALL,
        {},
        True,
        [],
    ),
    (
        "cpu sum",
        ["users"],
        [Server("ann", "x", Usage(1, 3.5, GIB))],
        SMALL,
        {},
        False,
        ["3.5 of 4 CPU cores (defaults) and this server requests 1", "stop 'x'"],
    ),
    (
        "memory in GiB",
        ["users"],
        [Server("ann", "x", Usage(1, 1, 7 * GIB + GIB // 2))],
        SMALL,
        {},
        False,
        ["7.5 of 8 GiB of memory (defaults)"],
    ),
    ("no gpus by default", ["users"], [], gpu(), {}, False, ["0 of 0 GPUs (defaults)", "wait"]),
    ("a gpu user may use two", ["gpu-users"], [Server("ann", "t", gpu())], gpu(), {}, True, []),
    (
        "the user's own gpu limit",
        ["gpu-users"],
        [Server("ann", "train", gpu(2))],
        gpu(),
        {},
        False,
        ["You are using 2 of 2 GPUs (group gpu-users)", "stop 'train' to start another"],
    ),
    (
        "the group pool is shared by members",
        ["gpu-users"],
        [Server("bob", "a", gpu(2)), Server("cy", "b", gpu(1)), Server("ann", "t", gpu(1))],
        gpu(),
        {"gpu-users": ["ann", "bob", "cy"]},
        False,
        ["Your group's servers are using 4 of 4 GPUs for group gpu-users", "stop 't'"],
    ),
    (
        "non-members do not use the pool",
        ["gpu-users"],
        [Server("dan", "a", gpu(2)), Server("eve", "b", gpu(2))],
        gpu(),
        {"gpu-users": ["ann", "bob"]},
        True,
        [],
    ),
    (
        "a full pool with nothing of mine to stop",
        ["gpu-users"],
        [Server("bob", "a", gpu(2)), Server("cy", "b", gpu(2))],
        gpu(),
        {"gpu-users": ["ann", "bob", "cy"]},
        False,
        ["4 of 4 GPUs for group gpu-users", "wait until other members"],
    ),
    (
        "multi-group: the generous server limit of gpu-users beats big's",
        ["gpu-users", "big"],
        [Server("ann", "a", SMALL), Server("ann", "b", SMALL)],
        SMALL,
        {},
        True,
        [],
    ),
    (
        "multi-group: the pool still applies when another group is generous",
        ["gpu-users", "big"],
        [Server("bob", "a", gpu(2)), Server("bob", "b", gpu(2))],
        gpu(),
        {"gpu-users": ["ann", "bob"]},
        False,
        ["for group gpu-users"],
    ),
]


@pytest.mark.parametrize(
    ("groups", "counted", "request_", "members", "allowed", "fragments"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_decide(groups, counted, request_, members, allowed, fragments):
    decision = decide(policy().quota_for(groups), "ann", counted, request_, members)
    assert decision.allowed is allowed
    for fragment in fragments:
        assert fragment in decision.message


@pytest.mark.parametrize(
    ("quotas", "message"),
    [
        ("quotas: [1]", "policy.yaml:5: quotas: must be a mapping"),
        (
            "quotas:\n  multi_group: sum\n",
            "policy.yaml:6: quotas.multi_group: must be one of most_generous, strictest, got 'sum'",
        ),
        (
            "quotas:\n  defaults:\n    memory: lots\n",
            "policy.yaml:7: quotas.defaults.memory: must be a memory amount",
        ),
        (
            "quotas:\n  defaults:\n    gpus: -1\n",
            "policy.yaml:7: quotas.defaults.gpus: must be an integer >= 0, got -1",
        ),
        ("quotas:\n  defaults:\n    gpu: 1\n", "policy.yaml:7: quotas.defaults.gpu: unknown field"),
        (
            "quotas:\n  groups:\n    nope:\n      user: {gpus: 1}\n",
            "policy.yaml:7: quotas.groups.nope: 'nope' is not a group of this policy",
        ),
        (
            "quotas:\n  groups:\n    users: {}\n",
            "quotas.groups.users: a group quota needs 'user' or 'pool' limits",
        ),
    ],
)
def test_bad_quotas_name_file_line_field_value(quotas, message):
    with pytest.raises(PolicyError) as caught:
        policy(quotas)
    assert message in str(caught.value)


def test_policy_explain_prints_the_users_quotas(tmp_path, capsys):
    path = tmp_path / "policy.yaml"
    path.write_text(GROUPS + QUOTAS)
    assert policy_main(["explain", "--policy", str(path), "--groups", "users,gpu-users"]) == 0
    text = capsys.readouterr().out
    assert "several groups: most generous" in text
    assert "  servers: 3  (from group gpu-users)" in text
    assert "  memory: 8 GiB  (from defaults)" in text
    assert "  pool shared by group gpu-users: gpus 4" in text
    assert policy_main(["explain", "--policy", str(path), "--groups", "big", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)["quotas"]
    assert report["user"]["servers"] == {"limit": 1, "from": "group big"}
    assert report["pools"] == {}


# -- the hub side: what a saved server requests, what counts, reservations ---------------------
SHIPPED = load_catalogue([bundled_profiles_dir()])


def fake_user(name, **spawners):
    """A JupyterHub user wrapper with spawners ``name -> (active, user_options)``."""
    made = {
        server: SimpleNamespace(
            active=active, user_options=options, orm_spawner=SimpleNamespace(user_options=None)
        )
        for server, (active, options) in spawners.items()
    }
    return SimpleNamespace(name=name, spawners=made)


def test_saved_usage_is_the_profile_sizes_requests():
    profile = SHIPPED.get("jupyterlab")
    gpu_size = next(s for s in profile.sizes if s.gpu)
    usage = saved_usage(SHIPPED, {"profile": "jupyterlab", "size": gpu_size.key})
    assert usage == Usage(1, gpu_size.resources.cpu_request, gpu_size.resources.mem_request, 1)
    default = next(s for s in profile.sizes if s.default)
    assert saved_usage(SHIPPED, {"profile": "jupyterlab"}).memory == default.resources.mem_request
    # a profile the catalogue no longer has still counts as a server
    assert saved_usage(SHIPPED, {"profile": "gone"}) == Usage(servers=1)


def test_counted_servers_are_the_active_ones_and_reservations_but_not_the_one_starting():
    ann = fake_user(
        "ann", **{"": (True, {"profile": "jupyterlab"}), "old": (False, {}), "new": (True, {})}
    )
    reservation = Server("ann", "racing", Usage(servers=1))
    with reserved(reservation):
        counted = counted_servers(SHIPPED, [ann], skip=("ann", "new"))
        assert sorted(s.name for s in counted) == ["", "racing"]
    assert [s.name for s in counted_servers(SHIPPED, [ann], skip=("ann", "new"))] == [""]
    with reserved(None):  # nothing to reserve when no quota applies
        assert len(counted_servers(SHIPPED, [ann], skip=("ann", "x"))) == 2


def test_usage_lines_show_each_limit_its_use_and_the_pools():
    quota = policy().quota_for(["gpu-users"])
    counted = [Server("ann", "t", gpu()), Server("bob", "b", gpu(2)), Server("dan", "x", gpu(3))]
    lines = usage_lines(quota, "ann", counted, {"gpu-users": ["ann", "bob"]})
    assert "Servers: 1 of 3 in use (group gpu-users)" in lines
    assert "Memory (GiB): 1 of 8 in use (defaults)" in lines
    assert "GPUs: 1 of 2 in use (group gpu-users)" in lines
    assert "GPUs shared by group gpu-users: 3 of 4 in use" in lines  # dan is no member


def test_the_spawn_page_shows_the_quota_and_marks_sizes_over_it():
    entitlements = policy().resolve(["gpu-users"])
    available = offers(SHIPPED, entitlements_from_rules(SHIPPED.rules(), ["gpu-users"]))
    assert entitlements.login_allowed and available
    only_gpus = policy("quotas:\n  groups:\n    gpu-users:\n      user: {gpus: 2}\n")
    state = QuotaState(only_gpus.quota_for(["gpu-users"]), "ann", [Server("ann", "t", gpu(2))], {})
    html = render_form(form_view(available, None, quota_refusal(state)), (), usage_lines(*state))
    assert "Your quota" in html and "GPUs: 2 of 2 in use (group gpu-users)" in html
    (lab,) = [v for v in form_view(available, None, quota_refusal(state)) if v.slug == "jupyterlab"]
    sizes = {c.key: c.label for o in lab.options if o.label == "Size" for c in o.choices}
    gpu_key = next(s.key for s in SHIPPED.get("jupyterlab").sizes if s.gpu)
    assert sizes[gpu_key].endswith("(over your quota: stop a server first)")
    assert not any("over your quota" in label for key, label in sizes.items() if key != gpu_key)
    assert "Your quota" not in render_form(form_view(available, None), ())


def test_group_use_for_the_admin_view_sums_members_servers():
    counted = [Server("ann", "t", gpu(2)), Server("bob", "", SMALL), Server("dan", "x", gpu(3))]
    report = group_use(policy().quotas, {"gpu-users": ["ann", "bob"], "big": []}, counted)
    gpu_users = report["gpu-users"]
    assert gpu_users["members"] == 2
    assert gpu_users["use"] == {"servers": 2, "cpu": 2.0, "memory": 2 * GIB, "gpus": 2}
    assert sorted(s["user"] for s in gpu_users["servers"]) == ["ann", "bob"]
    assert gpu_users["pool"] == {"gpus": 4} and gpu_users["user_limits"] == {
        "servers": 3,
        "gpus": 2,
    }
    assert report["big"]["use"]["servers"] == 0 and report["big"]["pool"] == {}
