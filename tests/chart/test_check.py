"""``jupyterhub-platform check`` on values files: what the chart, the hub and the platform refuse."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml
from shipped_combinations import COMBINATIONS

from jupyterhub_platform.auth.policy_bridge import claim_paths, groups_from_claims
from jupyterhub_platform.chart import check_cli
from jupyterhub_platform.chart.values import load_values_file, merge_all, policy_in_values
from jupyterhub_platform.policy import cli as policy_cli
from jupyterhub_platform.policy import load_policy

ROOT = Path(__file__).resolve().parents[2]
VALUES = ROOT / "chart-values" / "values.yaml"
GOOGLE = ROOT / "chart-values" / "oidc-google.yaml"


def overlay(tmp_path: Path, text: str, name: str = "overlay.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def check(*argv, chart=None) -> int:
    return check_cli.main(
        [*map(str, argv), *(["--chart", str(chart)] if chart else ["--no-schema"])]
    )


@pytest.mark.parametrize("combination", list(COMBINATIONS))
@pytest.mark.processes
def test_the_shipped_values_pass(combination, z2jh_chart, capsys):
    """Every combination the stock-chart test runs: ``check values.yaml -f <overlay>``."""
    files = [ROOT / "chart-values" / name for name in COMBINATIONS[combination]]
    argv = [files[0], *[a for f in files[1:] for a in ("-f", f)]]
    assert check(*argv, chart=z2jh_chart) == 0, capsys.readouterr().err
    assert "values OK" in capsys.readouterr().out


def test_trait_service_and_scope_mistakes_are_named_with_a_suggestion(tmp_path, capsys):
    bad = overlay(
        tmp_path,
        """\
        hub:
          config:
            OIDCAuthenticator: {isuer: "https://login.example.org"}
            KubeSpawnr: {cpu_limit: 2}
          services:
            reports: {comand: [python, -m, reports]}
          loadRoles:
            readers:
              scopes: [read:user, "admin:servers!grop=students"]
              services: [report]
        """,
    )
    assert check(VALUES, "-f", bad) == 1
    err = capsys.readouterr().err
    for line in (
        f"{bad}: hub.config.OIDCAuthenticator.isuer: not a configurable trait of OIDCAuthenticator (did you mean 'issuer'?)",
        f"{bad}: hub.config.KubeSpawnr: no class of the hub answers to this section (did you mean 'KubeSpawner'?)",
        f"{bad}: hub.services.reports.comand: not a JupyterHub service field (the hub refuses to start) (did you mean 'command'?)",
        f"{bad}: hub.loadRoles.readers.scopes[0]: unknown scope 'read:user' (did you mean 'read:users'?)",
        f"{bad}: hub.loadRoles.readers.scopes[1]: unknown filter 'grop'",
        "(did you mean 'admin:servers!group=students'?)",
        f"{bad}: hub.loadRoles.readers.services[0]: no service 'report' in hub.services (did you mean 'reports'?)",
        "6 error(s) in",
    ):
        assert line in err


@pytest.mark.processes
def test_a_schema_refusal_names_the_file_that_causes_it(tmp_path, z2jh_chart, capsys):
    fine = overlay(tmp_path, "singleuser: {defaultUrl: /lab}\n", "fine.yaml")
    bad = overlay(tmp_path, "singleuser: {storage: {type: nfs}}\n", "bad.yaml")
    assert check(VALUES, "-f", fine, "-f", bad, chart=z2jh_chart) == 1
    err = capsys.readouterr().err
    assert (
        f"error: {bad}: helm template rejected the values" in err
        and "/singleuser/storage/type" in err
    )


def test_without_a_chart_the_check_says_how_to_get_one(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("Z2JH_CHART", str(tmp_path / "nowhere"))
    assert check_cli.main([str(VALUES)]) == 2
    assert (
        "helm pull jupyterhub --repo https://hub.jupyter.org/helm-chart/" in capsys.readouterr().err
    )


def _with_policy(tmp_path: Path, policy: str, field: str = "stringData") -> Path:
    values = load_values_file(VALUES)
    entry = values["hub"]["extraFiles"]["platform-policy"]
    del entry["stringData"]
    entry[field] = policy if field == "stringData" else yaml.safe_load(policy)
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values, sort_keys=False))
    return path


def test_the_policy_in_the_values_is_checked_against_the_profiles(tmp_path, capsys):
    values = _with_policy(tmp_path, "groups:\n  staff:\n    profiles: [jupyterlab, nope]\n")
    assert check(values) == 1
    err = capsys.readouterr().err
    assert f"{values}: hub.extraFiles.platform-policy.stringData: groups.staff.profiles[1]:" in err
    assert "no profile 'nope'" in err


def test_a_policy_given_as_data_loses_its_order(tmp_path, capsys):
    values = _with_policy(tmp_path, "groups:\n  b: {}\n  a: {}\n", field="data")
    assert check(values) == 1
    assert "hub.extraFiles.platform-policy.data: use stringData" in capsys.readouterr().err


def test_profiles_mounted_with_extra_files_are_checked(tmp_path, capsys):
    mounted = overlay(
        tmp_path,
        """\
        hub:
          config:
            ProfileSpawner: {profile_directories: [/usr/local/etc/jupyterhub/profiles]}
          extraFiles:
            broken-profile:
              mountPath: /usr/local/etc/jupyterhub/profiles/broken.yaml
              stringData: |
                slug: broken
                display_name: Broken
                kind: spaceship
        """,
    )
    assert check(VALUES, "-f", mounted) == 1
    assert "broken.yaml:3: kind: must be one of" in capsys.readouterr().err


def test_policy_explain_reads_the_policy_from_the_values(capsys):
    assert (
        policy_cli.main(["explain", "--values", str(VALUES), "--groups", "/platform-admins"]) == 0
    )
    out = capsys.readouterr().out
    assert f"policy:          {VALUES}: hub.extraFiles.platform-policy.stringData" in out
    assert "admin:           yes" in out


def test_a_policy_in_a_literal_block_is_reported_at_its_line_in_the_values(tmp_path, capsys):
    values = tmp_path / "values.yaml"
    text = VALUES.read_text()
    anchor = "      stringData: |\n"
    assert anchor in text
    at = text.index(anchor) + len(anchor)
    first_line = text[:at].count("\n") + 1  # the policy's first line in the values file
    values.write_text(text[:at] + "        colour: red\n" + text[at:])
    assert check(values) == 1
    err = capsys.readouterr().err
    assert (
        f"{values}:{first_line}: colour: unknown field (allowed: backup, credential_sets, culling, defaults,"
        in err
    )


@pytest.mark.parametrize(
    ("groups", "login"),
    [("example.org", "yes"), ("Example.ORG", "yes"), ("other.org", "no"), ("", "no")],
)
def test_the_google_overlay_lets_in_only_its_workspace_domain(groups, login, capsys):
    """Its groups_claim is [hd]: the domain is the one group; a personal account has none."""
    argv = ["explain", "--values", str(VALUES), "--values", str(GOOGLE), "--groups", groups]
    assert policy_cli.main(argv) == 0
    out = capsys.readouterr().out
    assert f"policy:          {GOOGLE}: hub.extraFiles.platform-policy.stringData" in out
    assert f"login allowed:   {login}" in out
    assert ("admin:           no" in out) == (login == "yes")  # a refused user: nothing else
    config = load_values_file(GOOGLE)["hub"]["config"]["OIDCAuthenticator"]
    assert config["groups_claim"] == ["hd"] and config["username_claim"] == "email"


@pytest.mark.parametrize(
    ("claims", "login"),
    [
        ({"sub": "1", "email": "alice@example.org", "hd": "example.org"}, True),
        ({"sub": "2", "email": "bob@gmail.com"}, False),  # a personal account: no hd
        ({"sub": "3", "email": "carol@other.org", "hd": "other.org"}, False),
    ],
)
def test_google_claims_reach_the_overlays_policy_through_the_hd_claim(tmp_path, claims, login):
    """What the authenticator does with a Google ID token's claims under this overlay."""
    values = merge_all([load_values_file(VALUES), load_values_file(GOOGLE)])
    config = values["hub"]["config"]["OIDCAuthenticator"]
    groups = groups_from_claims(claims, claim_paths(config["groups_claim"]))
    assert groups == ([claims["hd"]] if "hd" in claims else [])
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(policy_in_values(values).text)
    entitlements = load_policy(policy_file).resolve(groups)
    assert entitlements.login_allowed is login
    assert entitlements.admin is False


@pytest.mark.parametrize(
    ("paths", "groups", "admin"),
    [
        (["/platform-admins"], {"platform-admins"}, True),
        (["/researchers", "/research/gpu"], {"researchers", "research/gpu"}, False),
        (["/other/platform-admins"], {"other/platform-admins"}, False),  # a subgroup elsewhere
    ],
)
def test_keycloak_full_group_paths_reach_the_policy(tmp_path, paths, groups, admin):
    """The Group Membership mapper's full paths under the Keycloak overlay and values' policy."""
    keycloak = ROOT / "chart-values" / "oidc-keycloak.yaml"
    values = merge_all([load_values_file(VALUES), load_values_file(keycloak)])
    config = values["hub"]["config"]["OIDCAuthenticator"]
    claims = {"sub": "1", "preferred_username": "alice", "groups": paths}
    raw = groups_from_claims(claims, claim_paths(config["groups_claim"]))
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(policy_in_values(values).text)
    entitlements = load_policy(policy_file).resolve(raw)
    assert entitlements.groups == groups
    assert entitlements.admin is admin
