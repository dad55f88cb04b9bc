"""The policy's ``backup:`` section: who is backed up and why, errors naming file, line, field and
value, and ``policy explain`` showing it. Pure, table tests."""

from __future__ import annotations

import json

import pytest

from jupyterhub_platform.policy import PolicyError, ProfileRule, policy_from_text
from jupyterhub_platform.policy.cli import main as policy_main

GROUPS = """\
group_names: {case_fold: true}
groups:
  researchers: {}
  students: {}
  guests: {}
  staff: {profiles: ["*"]}
  visitors: {login: false}
"""
BACKUP = """\
backup:
  opt_out_groups: [guests, visitors]
  opt_out_profiles: [streamlit, scratch]
"""
RULES = (
    ProfileRule("jupyterlab", allowed_groups=frozenset({"researchers"})),
    ProfileRule("streamlit"),  # open to anyone who may log in
    ProfileRule("scratch", allowed_groups=frozenset({"students"})),
)


def policy(backup: str = BACKUP, rules=RULES):
    return policy_from_text(GROUPS + backup, "policy.yaml", rules)


@pytest.mark.parametrize(
    ("groups", "backup", "rules", "backed_up", "reason"),
    [
        (["researchers"], BACKUP, RULES, True,
         "profile jupyterlab does not opt out, and every profile mounts the one home"),
        (["students"], BACKUP, RULES, False,
         "every profile they may use opts out: scratch, streamlit (backup.opt_out_profiles)"),
        (["students", "researchers"], BACKUP, RULES, True, "profile jupyterlab does not opt out"),
        (["staff"], BACKUP, RULES, True, "profile jupyterlab does not opt out"),  # "*"
        # any opted-out group wins, whatever the user's other groups give
        (["researchers", "guests"], BACKUP, RULES, False,
         "group guests opts out (backup.opt_out_groups)"),
        (["GUESTS"], BACKUP, RULES, False, "group guests opts out"),  # names are normalised
        # a refused user's home still exists: their groups still opt out, or not
        (["visitors"], BACKUP, RULES, False, "group visitors opts out"),
        (["unknown"], BACKUP, RULES, True, "no opt-out applies; they may use no profile"),
        (["students"], BACKUP, (), True,
         "no group opts out; backup.opt_out_profiles is not weighed without the profiles"),
        (["students"], "", RULES, True, "no opt-out applies"),
        (["guests"], "backup: {}\n", RULES, True, "no opt-out applies"),
        (["students"], "backup:\n  opt_out_profiles: [scratch]\n", RULES, True,
         "profile streamlit does not opt out"),
    ],
)  # fmt: skip
def test_who_is_backed_up_and_why(groups, backup, rules, backed_up, reason):
    decision = policy(backup, rules).backup_for(groups)
    assert decision.backed_up is backed_up
    assert reason in decision.reason


def test_hub_groups_are_taken_as_already_normalised():
    mapped = policy_from_text(
        "group_names:\n  map:\n    - {match: 'x-(.*)', replace: '\\1'}\n"
        + GROUPS.split("\n", 1)[1]
        + BACKUP,
        "policy.yaml",
        RULES,
    )
    assert mapped.backup_for(["x-guests"]).backed_up is False  # as the IdP sends it
    assert mapped.backup_for(["guests"], normalised=True).backed_up is False  # as the hub has it


@pytest.mark.parametrize(
    ("backup", "rules", "message"),
    [
        ("backup: [1]\n", RULES, "policy.yaml:8: backup: must be a mapping, got a list"),
        ("backup:\n  opt_out_group: [guests]\n", RULES,
         "policy.yaml:9: backup.opt_out_group: unknown field (allowed: opt_out_groups, "
         "opt_out_profiles)"),
        ("backup:\n  opt_out_groups: guests\n", RULES,
         "policy.yaml:9: backup.opt_out_groups: must be a list of strings, got the string "
         "'guests'"),
        ("backup:\n  opt_out_groups: [guests, '']\n", RULES,
         "backup.opt_out_groups[1]: must be a non-empty string, got the string ''"),
        ("backup:\n  opt_out_groups: [gusts]\n", RULES,
         "policy.yaml:9: backup.opt_out_groups[0]: 'gusts' is not a group of this policy "
         "(groups: researchers, students, guests, staff, visitors)"),
        ("backup:\n  opt_out_groups: [guests, GUESTS]\n", RULES,
         "backup.opt_out_groups[1]: 'GUESTS' is listed twice"),
        ("backup:\n  opt_out_profiles: [streamlt]\n", RULES,
         "policy.yaml:9: backup.opt_out_profiles[0]: no profile 'streamlt' (profiles: "
         "jupyterlab, scratch, streamlit)"),
    ],
)  # fmt: skip
def test_bad_backup_sections_name_file_line_field_and_value(backup, rules, message):
    with pytest.raises(PolicyError) as caught:
        policy(backup, rules)
    assert message in str(caught.value)


def test_profile_opt_outs_are_checked_once_the_profiles_are_known():
    lenient = policy("backup:\n  opt_out_profiles: [streamlt]\n", ())  # no profile files given
    assert lenient.backup.opt_out_profiles == ("streamlt",)


def _explain(path, capsys, groups: str, *flags: str) -> str:
    """``policy explain``'s output for ``groups`` (it must succeed)."""
    assert policy_main(["explain", "--policy", str(path), "--groups", groups, *flags]) == 0
    return capsys.readouterr().out


def test_policy_explain_says_whether_the_home_is_backed_up_and_why(tmp_path, capsys):
    (tmp_path / "policy.yaml").write_text(GROUPS + BACKUP)
    text = _explain(tmp_path / "policy.yaml", capsys, "researchers,guests")
    assert "home backed up:  no: group guests opts out (backup.opt_out_groups)" in text
    report = json.loads(_explain(tmp_path / "policy.yaml", capsys, "students", "--json"))
    assert report["backup"] == {
        "backed_up": True,
        "reason": "no group opts out; backup.opt_out_profiles is not weighed without the profiles",
    }
