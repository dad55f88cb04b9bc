"""Culling policies: parsing with file/field/value errors, which policy applies, and the decision."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from types import MappingProxyType

import pytest

from jupyterhub_platform.policy import PolicyError, ProfileRule, policy_from_text
from jupyterhub_platform.policy.cli import main as policy_main
from jupyterhub_platform.policy.cull_decision import (
    CULL,
    EXEMPT,
    IDLE,
    KEEP,
    MAX_AGE,
    applicable,
    decide,
    parse_time,
)
from jupyterhub_platform.policy.culling import format_duration, parse_duration

POLICY = """\
groups:
  admins: {culling_policy: exempt}
  students: {culling_policy: strict}
  researchers: {}
  night-owls: {}
culling:
  policies:
    standard: {idle_timeout: 1h}
    strict: {idle_timeout: 20m, max_age: 8h}
    gpu: {idle_timeout: 30m, max_age: 8h}
    desktop: {idle_timeout: 2h, exempt_groups: [night-owls]}
    exempt: {exempt_groups: [admins], override: true}
  rules:
    - {profile: lab, choice: size/gpu, policy: gpu}
    - {kind: desktop, policy: desktop}
defaults: {culling_policy: standard}
"""

RULES = (
    ProfileRule(
        "lab",
        choices=MappingProxyType({"size": MappingProxyType({"small": None, "gpu": None})}),
        kind="jupyterlab",
        culling_policy="standard",
    ),
    ProfileRule("remote", kind="desktop"),
)

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=timezone.utc)
H = 3600


def policy(text: str = POLICY, rules=RULES):
    return policy_from_text(text, "policy.yaml", rules)


def ago(seconds: float) -> str:
    return (NOW - timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


STARTED, LAST = ago(3 * H), ago(10 * 60)


def server(started=STARTED, last=LAST, pending=None, name="", **options):
    return {
        "name": name,
        "started": started,
        "last_activity": last,
        "pending": pending,
        "ready": pending is None,
        "user_options": options,
    }


# (case, groups, server model, expected action, reason, policy)
CASES = [
    ("active lab", ["researchers"], server(profile="lab"), KEEP, "within its limits", "standard"),
    ("idle lab", ["researchers"], server(last=ago(H + 1), profile="lab"), CULL, IDLE, "standard"),
    (
        "idle exactly at the limit is kept",
        ["researchers"],
        server(last=ago(H), profile="lab"),
        KEEP,
        "within its limits",
        "standard",
    ),
    (
        "gpu choice: stricter rule wins",
        ["researchers"],
        server(last=ago(31 * 60), profile="lab", size="gpu"),
        CULL,
        IDLE,
        "gpu",
    ),
    (
        "gpu max age culls a used server",
        ["researchers"],
        server(started=ago(8 * H + 1), last=ago(5), profile="lab", size="gpu"),
        CULL,
        MAX_AGE,
        "gpu",
    ),
    (
        "student's group policy is stricter than the profile's",
        ["students"],
        server(last=ago(21 * 60), profile="lab"),
        CULL,
        IDLE,
        "strict",
    ),
    (
        "desktop by kind: 2h",
        ["researchers"],
        server(last=ago(90 * 60), profile="remote"),
        KEEP,
        "within its limits",
        "desktop",
    ),
    (
        "exempt group of the winning policy",
        ["night-owls"],
        server(last=ago(30 * H), profile="remote"),
        EXEMPT,
        "member of an exempt group",
        "desktop",
    ),
    (
        "exempt_groups of a policy that does not win do not apply",
        ["night-owls"],
        server(last=ago(H + 1), profile="lab"),
        CULL,
        IDLE,
        "standard",
    ),
    (
        "override policy beats stricter ones",
        ["admins", "students"],
        server(last=ago(30 * H), profile="lab", size="gpu"),
        EXEMPT,
        "member of an exempt group",
        "exempt",
    ),
    (
        "named server is decided like the default one",
        ["researchers"],
        server(last=ago(2 * H), name="analysis", profile="lab"),
        CULL,
        IDLE,
        "standard",
    ),
    (
        "pending server is never culled",
        ["researchers"],
        server(last=ago(30 * H), pending="spawn", profile="lab"),
        KEEP,
        "pending spawn",
        "standard",
    ),
    (
        "missing last_activity: idle since started",
        ["researchers"],
        server(started=ago(H + 5), last=None, profile="lab"),
        CULL,
        IDLE,
        "standard",
    ),
    (
        "missing both times: kept",
        ["researchers"],
        server(started=None, last=None, profile="lab"),
        KEEP,
        "no start or activity time",
        "standard",
    ),
    (
        "activity in the future (clock skew) is not idle",
        ["researchers"],
        server(last=(NOW + timedelta(minutes=5)).isoformat(), profile="lab"),
        KEEP,
        "within its limits",
        "standard",
    ),
    (
        "unknown profile falls back to the defaults",
        ["researchers"],
        server(last=ago(H + 1), profile="removed-profile"),
        CULL,
        IDLE,
        "standard",
    ),
    (
        "no user_options at all: defaults",
        ["researchers"],
        {"name": "", "started": ago(H), "last_activity": ago(2 * H), "pending": None},
        CULL,
        IDLE,
        "standard",
    ),
]


@pytest.mark.parametrize(
    ("groups", "model", "action", "reason", "name"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_decision_table(groups, model, action, reason, name):
    p = policy()
    decision = decide(model, applicable(p, groups, model.get("user_options")), NOW)
    assert (decision.action, decision.reason, decision.policy) == (action, reason, name)


def test_countdown_is_the_earlier_of_idle_and_max_age():
    p = policy()
    model = server(started=ago(7 * H + 50 * 60), last=ago(5 * 60), profile="lab", size="gpu")
    decision = decide(model, applicable(p, ["researchers"], model["user_options"]), NOW)
    assert decision.action == KEEP
    assert decision.cull_at == NOW + timedelta(minutes=10)  # max age 8h beats idle 30m - 5m
    assert decision.due == MAX_AGE
    assert decision.idle_seconds == 300
    model = server(started=ago(60 * 60), last=ago(5 * 60), profile="lab", size="gpu")
    decision = decide(model, applicable(p, ["researchers"], model["user_options"]), NOW)
    assert (decision.cull_at, decision.due) == (NOW + timedelta(minutes=25), IDLE)


def test_no_policy_at_all_keeps_everything():
    p = policy("groups: {researchers: {}}\n", rules=())
    decision = decide(server(last=ago(100 * H)), applicable(p, ["researchers"], {}), NOW)
    assert (decision.action, decision.policy) == (KEEP, None)


def test_group_names_compare_like_the_policy():
    text = "group_names: {case_fold: true}\n" + POLICY
    p = policy(text)
    assert applicable(p, ["Admins"], {"profile": "lab"}).exempt


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(90, 90), ("30m", 1800), ("8h", 28800), ("1h30m", 5400), ("2d", 172800), ("45s", 45)],
)
def test_durations(value, seconds):
    assert parse_duration(value) == seconds
    assert parse_duration(format_duration(seconds)) == seconds


def test_parse_time_forms():
    assert parse_time("2026-12-02T12:00:00Z") == NOW
    assert parse_time("2026-12-02T12:00:00") == NOW  # naive: UTC
    assert parse_time("2026-12-02T13:00:00+01:00") == NOW
    assert parse_time("yesterday") is None and parse_time(None) is None


def errors(text: str, rules=RULES) -> str:
    with pytest.raises(PolicyError) as info:
        policy(text, rules)
    return str(info.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "groups: {a: {culling_policy: standrd}}\nculling: {policies: {standard: {}}}\n",
            "policy.yaml:1: groups.a.culling_policy: unknown culling policy 'standrd' "
            "(defined under culling.policies: standard)",
        ),
        (
            "defaults: {culling_policy: x}\n",
            "defaults.culling_policy: unknown culling policy 'x'",
        ),
        (
            "culling: {policies: {p: {idle_timeout: 10 min}}}\n",
            "culling.policies.p.idle_timeout: expected a positive duration "
            "(seconds, or like 30m, 8h, 1h30m, 2d), got '10 min'",
        ),
        ("culling: {policies: {p: {idle_timeout: 0}}}\n", "culling.policies.p.idle_timeout"),
        (
            "culling: {policies: {p: {idle: 1h}}}\n",
            "policy.yaml:1: culling.policies.p.idle: unknown field (allowed: description, "
            "exempt_groups, idle_timeout, max_age, override)",
        ),
        (
            "culling: {policies: {p: {exempt_groups: [ghosts]}}}\ngroups: {a: {}}\n",
            "culling.policies.p.exempt_groups: 'ghosts' is not a group of this policy (groups: a)",
        ),
        (
            "culling: {policies: {p: {}}, rules: [{kind: desktop, policy: q}]}\n",
            "culling.rules[0].policy: unknown culling policy 'q'",
        ),
        (
            "culling: {policies: {p: {}}, rules: [{policy: p}]}\n",
            "culling.rules[0]: a rule needs at least one of",
        ),
        (
            "culling: {policies: {p: {}}, rules: [{choice: gpu, policy: p}]}\n",
            "culling.rules[0].choice: expected '<option>/<choice>', got 'gpu'",
        ),
        (
            "culling: {policies: {p: {override: yes please}}}\n",
            "culling.policies.p.override: expected true or false",
        ),
        (
            "groups: {a: {credential_sets: [s4]}}\n"
            "credential_sets: {s3: {provider: template, config: {values: {k: v}}}}\n",
            "groups.a.credential_sets[0]: unknown credential set 's4' "
            "(declared under credential_sets: s3)",
        ),
    ],
)
def test_policy_errors_name_file_field_and_value(text, expected):
    assert expected in errors(text, rules=())


def test_profile_references_are_checked():
    base = "culling: {policies: {standard: {}}, rules: [%s]}\n"
    assert "culling.rules[0].profile: no profile 'labb' (profiles: lab, remote)" in errors(
        base % "{profile: labb, policy: standard}"
    )
    assert "culling.rules[0].choice: no profile 'lab' has choice 'huge' for option 'size'" in (
        errors(base % "{profile: lab, choice: size/huge, policy: standard}")
    )
    missing = "culling: {policies: {other: {}}}\n"
    assert "profile 'lab' has culling_policy 'standard': unknown culling policy" in errors(missing)
    creds = (ProfileRule("lab", credential_sets=("s3",)),)
    assert "profile 'lab' credential_sets[0]: unknown credential set 's3'" in errors("{}", creds)


def test_explain_shows_the_culling_policy_of_a_spawn(tmp_path, capsys):
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY.replace("{profile: lab, ", "{"))  # no profile files: rules by choice
    argv = ["explain", "--policy", str(path), "--groups", "researchers"]
    assert policy_main([*argv, "--spawn", "lab,size=gpu", "--spawn", "lab"]) == 0
    out = capsys.readouterr().out
    assert "  lab,size=gpu: gpu (idle 30m, max age 8h; candidates: gpu from culling.rules[0]" in out
    assert "  lab: standard (idle 1h, max age never; candidates: standard from defaults" in out
    assert policy_main([*argv, "--spawn", "lab,size"]) == 2
    assert "expected SLUG[,OPTION=CHOICE...]" in capsys.readouterr().err
