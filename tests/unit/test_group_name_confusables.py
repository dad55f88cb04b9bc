"""Whoever can create a group at the identity provider must not become admin by its name.

The shipped policy (in ``chart-values/values.yaml``: ``strip_prefix: /``, ``case_fold: true``, the
``hpc-(.*)`` mapping) is attacked with look-alikes of its privileged group names: Unicode case
folding specials, dotted and dotless I, Unicode dashes and spaces, fullwidth forms, invisible
characters, and names that a ``map`` rule turns into a privileged group.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from jupyterhub_platform.policy import PolicyError, load_policy, policy_from_text
from jupyterhub_platform.policy.cli import main as policy_main
from jupyterhub_platform.testing import shipped_policy_file

SHIPPED = shipped_policy_file()
POLICY = load_policy(SHIPPED)
ADMIN_GROUPS = ["platform-admins"]
PRIVILEGED_GROUPS = ["platform-admins", "instructors"]  # admin, or roles

# Characters that Unicode case folding, NFKC or a careless eye turns into ASCII letters or "-".
LOOKALIKES = {
    "s": ["ſ", "ｓ", "ѕ", "ꜱ"],  # U+017F long s (casefolds to s), fullwidth, Cyrillic dze
    "k": ["K", "ｋ", "κ"],  # U+212A Kelvin sign (casefolds to k)
    "i": ["ı", "İ", "ｉ", "і", "\u0130"],  # dotless i, dotted capital I, fullwidth, Cyrillic
    "a": ["а", "ａ", "ɑ"],  # Cyrillic a, fullwidth, Latin alpha
    "o": ["о", "ｏ", "ο"],
    "p": ["р", "ｐ"],
    "l": ["ǀ", "ｌ", "ⅼ"],  # U+2170 small roman numeral fifty (NFKC -> l)
    "n": ["ｎ", "ո"],
    "m": ["ｍ", "ⅿ"],
    "d": ["ｄ", "ԁ"],
    "t": ["ｔ"],
    "f": ["ｆ"],
    "r": ["ｒ", "г"],
    "c": ["с", "ｃ"],
    "u": ["ｕ", "υ"],
    "e": ["е", "ｅ"],
    "-": ["\u2010", "\u2011", "\u2012", "\u2013", "\u2014", "\u2212", "\ufe63", "\uff0d", "\u00ad"],
}
INVISIBLE = [
    "\u200b",
    "\u200c",
    "\u200d",
    "\u2060",
    "\ufeff",
    "\u00a0",
    "\u2007",
    "\u202f",
    "\u3000",
]
PREFIXES = ["", "/", "hpc-", "/hpc-", "HPC-", "offboarded-", "\uff0f"]


def is_admin(groups: list[str]) -> bool:
    return POLICY.resolve(groups).admin


def exact_spelling(raw: str) -> bool:
    """The one way to name the admin group: its own ASCII name, optionally with the prefix."""
    name = raw[1:] if raw.startswith("/") else raw
    return name.isascii() and name.lower() in ADMIN_GROUPS


@st.composite
def lookalike_names(draw) -> str:
    """An admin group name with some characters swapped for look-alikes or padded invisibly."""
    target = draw(st.sampled_from(PRIVILEGED_GROUPS))
    chars = []
    for ch in target:
        variants = LOOKALIKES.get(ch, [])
        choice = draw(st.sampled_from([ch, ch.upper(), *variants]))
        chars.append(choice)
        if draw(st.integers(0, 9)) == 0:
            chars.append(draw(st.sampled_from(INVISIBLE)))
    return (
        draw(st.sampled_from(PREFIXES)) + "".join(chars) + draw(st.sampled_from(["", *INVISIBLE]))
    )


@given(st.lists(lookalike_names(), min_size=1, max_size=4))
@example(["platform-adminſ"])
@example(["/PLATFORM-ADMINſ"])
@example(["hpc-platform-admins"])
@example(["/hpc-platform-admins"])
@example(["platform\u2010admins"])
@example(["ｐｌａｔｆｏｒｍ－ａｄｍｉｎｓ"])
def test_lookalikes_are_never_admin(names):
    assert is_admin(names) == any(exact_spelling(n) for n in names), [
        POLICY.normaliser.trace(n) for n in names
    ]


@given(st.lists(st.text(max_size=20), max_size=4))
def test_any_name_is_admin_only_when_spelled_exactly(names):
    assert is_admin(names) == any(exact_spelling(n) for n in names)


@pytest.mark.parametrize(
    "name",
    [
        "platform-adminſ",  # U+017F: str.casefold() gives "platform-admins"
        "platform-admin\u017f",
        "PLATFORM-ADMINſ",
        "platform-admin\u1e9b",  # long s with dot above
        "platform\u2010admins",  # hyphen
        "platform\u2212admins",  # minus sign
        "platform\u00a0admins",  # no-break space
        "platform-admins\u200b",  # zero-width space
        "\ufeffplatform-admins",
        "ｐｌａｔｆｏｒｍ-ａｄｍｉｎｓ",  # fullwidth (NFKC folds them)
        "platform-\u0430dmins",  # Cyrillic a
        "PLATFORM-ADM\u0130NS",  # dotted capital I (lower() gives i + combining dot)
        "platform-adm\u0131ns",  # dotless i
        "hpc-platform-admins",  # the shipped hpc-(.*) mapping
        "/hpc-platform-admins",
        "HPC-Platform-Admins",
        "hpc-platform-adminſ",
    ],
)
def test_explicit_lookalikes(name):
    assert is_admin([name]) == exact_spelling(name)
    if name != "platform-admins" and not exact_spelling(name):
        assert not is_admin([name, "researchers"])


def test_the_real_names_still_work():
    assert is_admin(["/platform-admins"]) and is_admin(["Platform-Admins"])
    assert POLICY.resolve(["hpc-researchers"]).groups == {"researchers"}
    assert POLICY.resolve(["hpc-instructors"]).roles == frozenset()  # roles are privileged too
    assert POLICY.resolve(["instructors"]).roles == {"instructors"}


def test_a_rule_may_yield_a_privileged_group_only_when_it_says_so():
    text = """
group_names:
  case_fold: true
  map:
    - {match: "corp-admins", replace: "platform-admins", allow_privileged: [Platform-Admins]}
    - {match: "ext-(.*)", replace: "\\\\1"}
groups:
  platform-admins: {admin: true}
  staff: {}
"""
    policy = policy_from_text(text, "p.yaml")
    assert policy.resolve(["CORP-ADMINS"]).admin
    assert not policy.resolve(["ext-platform-admins"]).login_allowed
    assert policy.resolve(["ext-staff"]).groups == {"staff"}


def test_allow_privileged_must_name_a_privileged_group():
    text = """
group_names:
  map: [{match: "x", replace: "staff", allow_privileged: [staff]}]
groups: {staff: {}}
"""
    with pytest.raises(PolicyError) as info:
        policy_from_text(text, "p.yaml")
    assert str(info.value) == (
        "p.yaml:3: group_names.map[0].allow_privileged: ['staff'] are not groups of this policy "
        "that grant admin or roles"
    )


def test_regexes_are_ascii_only():
    text = """
group_names:
  map: [{match: "(?i)ops-(\\\\w+)", replace: "\\\\1"}]
groups: {staff: {}}
"""
    policy = policy_from_text(text, "p.yaml")
    assert policy.resolve(["OPS-staff"]).groups == {"staff"}
    assert policy.resolve(["ops-ſtaff"]).groups == {"ops-ſtaff"}  # \w and (?i) are ASCII


def test_policy_explain_shows_each_names_path(capsys):
    groups = "/hpc-platform-admins,HPC-Researchers,platform-adminſ,offboarded-x"
    assert policy_main(["explain", "--policy", str(SHIPPED), "--groups", groups, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    names = {n["raw"]: n for n in report["names"]}
    assert names["/hpc-platform-admins"]["final"] is None
    assert "not in that rule's allow_privileged" in names["/hpc-platform-admins"]["steps"][-1]
    assert names["HPC-Researchers"] == {
        "raw": "HPC-Researchers",
        "steps": ["case_fold (ASCII) -> 'hpc-researchers'", "map[0] 'hpc-(.*)' -> 'researchers'"],
        "final": "researchers",
    }
    assert names["platform-adminſ"]["final"] == "platform-adminſ"
    assert "non-ASCII" in names["platform-adminſ"]["steps"][0]
    assert names["offboarded-x"]["final"] is None
    assert report["admin"] is False and report["groups"] == ["platform-adminſ", "researchers"]

    assert policy_main(["explain", "--policy", str(SHIPPED), "--groups", groups]) == 0
    text = capsys.readouterr().out
    assert "'/hpc-platform-admins' -> dropped" in text and "admin:           no" in text
