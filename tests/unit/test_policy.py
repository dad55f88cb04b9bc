"""The group policy: loading with clear errors, normalisation, merging with profile rules, explain."""

from __future__ import annotations

import functools
import json
import textwrap
from pathlib import Path
from types import MappingProxyType

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jupyterhub_platform.policy import (
    Policy,
    PolicyError,
    ProfileRule,
    load_policy,
    policy_from_text,
)
from jupyterhub_platform.policy.cli import main as policy_main
from jupyterhub_platform.policy.scopes import scope_problem
from jupyterhub_platform.testing import shipped_policy_file

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = shipped_policy_file()  # the policy inline in chart-values/values.yaml

POLICY = """\
group_names:
  strip_prefix: /
  case_fold: true
  map:
    - {match: "hpc-(.*)", replace: "\\\\1"}
    - {match: "old-.*", replace: ""}
roles:
  instructors:
    scopes: ["admin:servers!group=students", "access:servers!group=students"]
groups:
  admins: {admin: true, profiles: ["*"], culling_policy: relaxed}
  teachers: {roles: [instructors], profiles: [lab/size/big]}
  researchers: {profiles: [gpu, lab/image/*], credential_sets: [s3], culling_policy: long}
  students: {credential_sets: [course]}
  banned: {login: false, admin: true}
defaults: {culling_policy: standard}
culling:
  policies: {relaxed: {idle_timeout: 8h}, long: {idle_timeout: 1d}, standard: {idle_timeout: 1h}}
credential_sets:
  s3: {provider: template, config: {values: {bucket: "s3://research/{username}"}}}
  course: {provider: template, config: {values: {share: /srv/course}}}
"""

RULES = (
    ProfileRule(
        "lab",
        choices=MappingProxyType(
            {
                "image": MappingProxyType({"base": None, "custom": frozenset({"researchers"})}),
                "size": MappingProxyType({"small": None, "big": frozenset({"bigmem"})}),
            }
        ),
    ),
    ProfileRule(
        "gpu",
        allowed_groups=frozenset({"gpu-users"}),
        choices=MappingProxyType(
            {
                "size": MappingProxyType({"one": None, "four": frozenset({"admins"})}),
            }
        ),
    ),
    ProfileRule("secret", allowed_groups=frozenset({"nobody-has-this"})),
    ProfileRule(
        "no-choice",
        choices=MappingProxyType(
            {
                "size": MappingProxyType({"only": frozenset({"x-only"})}),
            }
        ),
    ),
)


def policy(text: str = POLICY, rules=RULES) -> Policy:
    return policy_from_text(text, "policy.yaml", rules)


@functools.cache
def example() -> Policy:
    """The policy above, parsed once: property tests check its decisions, not its parsing."""
    return policy()


def error(text: str, rules=()) -> str:
    with pytest.raises(PolicyError) as info:
        policy(text, rules)
    return str(info.value)


# --- resolve ----------------------------------------------------------------------------------


def test_no_allowed_group_gets_nothing():
    p = policy()
    for groups in ([], ["visitors"], ["banned"], ["/old-admins"]):
        e = p.resolve(groups)
        assert not e.login_allowed and not e.admin and not e.profiles and not e.roles


def test_admin_only_from_a_group_that_may_log_in():
    p = policy()
    assert not p.resolve(["banned", "visitors"]).admin
    assert p.resolve(["/Admins"]).admin


def test_researcher_profiles_merge_profile_rules_and_policy_grants():
    e = policy().resolve(["/hpc-Researchers"])
    assert e.groups == {"researchers"} and e.login_allowed and not e.admin
    assert set(e.profiles) == {"lab", "gpu"}  # gpu by the policy, lab open; secret/no-choice not
    assert e.profiles["lab"] == {"image": {"base", "custom"}, "size": {"small"}}
    assert e.profiles["gpu"] == {"size": {"one"}}  # a slug grant keeps the choice restrictions
    assert e.may_use_choice("lab", "image", "custom") and not e.may_use_choice("lab", "size", "big")
    assert e.credential_sets == {"s3"} and e.culling_policy == "long"


def test_choice_grant_and_star():
    p = policy()
    teacher = p.resolve(["teachers"])
    assert teacher.profiles["lab"]["size"] == {"small", "big"}
    assert teacher.roles == {"instructors"} and teacher.culling_policy == "standard"
    admin = p.resolve(["admins"])
    assert set(admin.profiles) == {"lab", "gpu", "secret", "no-choice"}
    assert admin.profiles["gpu"]["size"] == {"one", "four"}


def test_culling_policy_first_group_in_file_order_wins():
    assert policy().resolve(["researchers", "admins"]).culling_policy == "relaxed"


def test_resolve_normalised_names_skips_normalisation():
    p = policy()
    assert p.resolve(["researchers"], normalised=True).login_allowed
    assert not p.resolve(["/hpc-researchers"], normalised=True).login_allowed


def test_role_dicts_for_jupyterhub():
    assert policy().role_dicts({"instructors"}) == [
        {
            "name": "instructors",
            "scopes": ["admin:servers!group=students", "access:servers!group=students"],
        }
    ]


GROUPS = st.lists(
    st.sampled_from(
        ["admins", "/teachers", "Researchers", "students", "banned", "hpc-x", "old-admins", "zz"]
    ),
    max_size=6,
)


@given(GROUPS, GROUPS)
def test_grants_are_additive(groups, more):
    p = example()
    small, big = p.resolve(groups), p.resolve(groups + more)
    assert big.login_allowed >= small.login_allowed
    assert big.admin >= small.admin
    assert big.roles >= small.roles and big.credential_sets >= small.credential_sets
    for slug, options in small.profiles.items():
        assert all(options[o] <= big.profiles[slug][o] for o in options)


@given(GROUPS)
def test_resolve_ignores_order_and_case(groups):
    p = example()
    assert p.resolve(groups) == p.resolve(list(reversed(groups)))
    assert p.resolve(groups) == p.resolve([g.upper() for g in groups])


@given(st.lists(st.text(max_size=12), max_size=5))
def test_normaliser_never_yields_empty_names(groups):
    assert all(example().normaliser(groups))


def test_empty_policy_lets_nobody_in():
    p = load_policy(None, RULES)
    assert not p.resolve(["admins"]).login_allowed


def test_example_policy_loads_with_the_shipped_profiles():
    from jupyterhub_platform.profiles import load_profile_rules

    p = load_policy(EXAMPLE, load_profile_rules(REPO / "profiles"))
    alice = p.resolve(["researchers"])
    assert alice.login_allowed and not alice.admin
    assert "ml-gpu" in alice.profiles["jupyterlab"]["size"]
    assert not p.resolve(["visitors"]).login_allowed
    bob = p.resolve(["/platform-admins", "/researchers"])
    assert bob.admin and bob.roles == {"platform-operators"}


# --- validation errors name file, field and value -----------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "grups: {}",
            "policy.yaml:1: grups: unknown field (allowed: backup, credential_sets, culling, defaults, group_names,",
        ),
        ("groups: {a: {adm: true}}", "groups.a.adm: unknown field (allowed: admin,"),
        (
            "groups: {a: {admin: yes please}}",
            "groups.a.admin: must be true or false, got the string 'yes please'",
        ),
        ("groups: {a: {roles: [nope]}}", "groups.a.roles[0]: unknown role 'nope'"),
        ("groups: {a: {profiles: [a/b]}}", "groups.a.profiles[0]: 'a/b' is not"),
        ("groups: {a: {}, A: {}}\ngroup_names: {case_fold: true}", "groups.A: same group as 'a'"),
        ("roles: {r1: {scopes: [read:users]}}", "roles.r1: role names are 3-255"),
        (
            "roles: {admin: {scopes: [read:users]}}",
            "roles.admin: 'admin' is a JupyterHub default role",
        ),
        ("roles: {abc: {scopes: []}}", "roles.abc.scopes: a role needs at least one scope"),
        (
            "roles: {abc: {scopes: [admin:server]}}",
            "roles.abc.scopes[0]: unknown scope 'admin:server'",
        ),
        ("roles: {abc: {scopes: [all]}}", "scope 'all' is called 'inherit'"),
        (
            "roles: {abc: {scopes: ['read:users!team=x']}}",
            "roles.abc.scopes[0]: unknown filter 'team'",
        ),
        (
            "group_names: {map: [{match: '(', replace: x}]}",
            "group_names.map[0].match: bad regex '('",
        ),
        (
            "group_names: {map: [{match: 'a', replace: '\\\\1'}]}",
            "group_names.map[0].replace: refers to group",
        ),
        (
            "defaults: {culling_policy: 3}",
            "defaults.culling_policy: must be a non-empty string, got int 3",
        ),
    ],
)
def test_invalid_policy_errors(text, expected):
    assert expected in error(text)


def test_errors_carry_the_line_of_the_field():
    text = POLICY.replace("credential_sets: [course]", "credential_sets: [course], colour: red")
    assert error(text) == (
        "policy.yaml:14: groups.students.colour: unknown field (allowed: admin, credential_sets, "
        "culling_policy, login, profiles, roles)"
    )
    assert error("groups:\n  a:\n    roles:\n      - ghost\n").startswith(
        "policy.yaml:4: groups.a.roles[0]: unknown role 'ghost'"
    )
    assert error("groups:\n  a: {profiles: [nope]}\n", RULES).startswith(
        "policy.yaml:2: groups.a.profiles[0]: no profile 'nope'"
    )


def test_embedded_policy_lines_count_from_the_embedding_file():
    with pytest.raises(PolicyError) as info:
        policy_from_text("groups:\n  a: {admin: maybe}\n", "values.yaml", first_line=40)
    assert (info.value.file, info.value.line, info.value.field) == (
        "values.yaml",
        41,
        "groups.a.admin",
    )


def test_grants_must_name_existing_profiles_and_choices():
    assert "groups.a.profiles[0]: no profile 'nope'" in error(
        "groups: {a: {profiles: [nope]}}", RULES
    )
    assert "profile 'lab' has no option 'colour'" in error(
        "groups: {a: {profiles: [lab/colour/red]}}", RULES
    )
    assert "option lab/size has no choice 'huge'" in error(
        "groups: {a: {profiles: [lab/size/huge]}}", RULES
    )


def test_file_errors(tmp_path):
    with pytest.raises(PolicyError, match="missing.yaml: cannot read file: No such file"):
        load_policy(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("groups: [")
    with pytest.raises(PolicyError, match=f"{bad}:1: invalid YAML"):
        load_policy(bad)


@pytest.mark.parametrize(
    ("scope", "ok"),
    [
        ("read:users", True),
        ("admin:servers!group=students", True),
        ("access:servers!server=alice/lab", True),
        ("read:users!user", True),
        ("custom:grading:read", True),
        ("access:servers!server=alice", False),
        ("read:users!group", False),
        ("read:users!group=", False),
        ("nonsense", False),
        ("", False),
    ],
)
def test_scope_grammar(scope, ok):
    assert (scope_problem(scope) is None) is ok


# --- the CLI ------------------------------------------------------------------------------------


def test_explain_text(tmp_path, capsys):
    path = tmp_path / "policy.yaml"
    path.write_text(textwrap.dedent(POLICY))
    assert policy_main(["explain", "--policy", str(path), "--groups", "/teachers,students"]) == 0
    out = capsys.readouterr().out
    assert "login allowed:   yes" in out and "admin:           no" in out
    assert (
        "  instructors:\n    - admin:servers!group=students\n    - access:servers!group=students"
        in out
    )
    assert "credential sets: course" in out and "culling policy:  standard" in out
    assert "lab/size/big  (policy grants" in out


def test_explain_json_with_shipped_profiles(capsys):
    argv = [
        "explain",
        "--policy",
        str(EXAMPLE),
        "--profiles",
        str(REPO / "profiles"),
        "--groups",
        "/platform-admins",
        "--json",
    ]
    assert policy_main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["admin"] is True
    assert report["roles"] == {"platform-operators": ["read:users", "read:servers", "read:metrics"]}
    assert "ml-gpu" in report["profiles"]["jupyterlab"]["size"]
    assert report["culling_policy"] == "admins"
    lab = next(c for c in report["culling"] if c["spawn"] == {"profile": "jupyterlab"})
    assert lab["policy"] == "admins" and lab["exempt"] is True


def test_explain_refused_user_and_bad_file(tmp_path, capsys):
    assert policy_main(["explain", "--policy", str(EXAMPLE), "--groups", "visitors"]) == 0
    assert "login allowed:   no" in capsys.readouterr().out
    bad = tmp_path / "p.yaml"
    bad.write_text("groups: {a: {roles: [ghost]}}")
    assert policy_main(["explain", "--policy", str(bad), "--groups", "a"]) == 1
    assert f"{bad}:1: groups.a.roles[0]: unknown role 'ghost'" in capsys.readouterr().err
