"""Profile files: schema errors with file/line/field, the shipped set, reloading, the check CLI."""

from __future__ import annotations

import logging
import textwrap
from pathlib import Path

import pytest

from jupyterhub_platform.chart.check_cli import main as check_main
from jupyterhub_platform.policy.entitlements import ProfileRule
from jupyterhub_platform.profiles import load_profile_rules
from jupyterhub_platform.profiles.catalogue import bundled_profiles_dir, load_catalogue
from jupyterhub_platform.profiles.errors import ProfileLoadError
from jupyterhub_platform.profiles.model import KINDS
from jupyterhub_platform.profiles.reloader import Reloading, files_signature

GOOD = """\
slug: lab
display_name: Lab
kind: jupyterlab
image: quay.io/jupyter/minimal-notebook:2025-01-06
resources:
  choices:
    small:
      cpu: {request: 0.5, limit: 1}
      memory: {request: 1Gi, limit: 2Gi}
"""


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(text))
    return path


def load_errors(tmp_path: Path, text: str) -> list:
    write(tmp_path, "p.yaml", text)
    with pytest.raises(ProfileLoadError) as info:
        load_catalogue([tmp_path])
    return info.value.errors


def test_shipped_profiles_cover_every_kind_and_the_seed_sizes():
    catalogue = load_catalogue([bundled_profiles_dir()])
    kinds = {p.kind for p in catalogue.profiles}
    assert kinds >= set(KINDS) - {"custom"}
    lab = catalogue.get("jupyterlab")
    assert lab.default and [p.slug for p in catalogue.profiles][0] == "jupyterlab"
    sizes = {s.key: s for s in lab.sizes}
    assert (sizes["standard"].resources.cpu_limit, sizes["standard"].resources.mem_limit) == (
        2,
        8 * 2**30,
    )
    assert (sizes["highmem"].resources.cpu_limit, sizes["highmem"].resources.mem_limit) == (
        4,
        16 * 2**30,
    )
    gpu = sizes["ml-gpu"]
    assert (gpu.resources.cpu_limit, gpu.resources.mem_limit) == (8, 32 * 2**30)
    assert gpu.gpu.count == 1 and gpu.gpu.resource_name == "nvidia.com/gpu"
    assert any(v.mount_path == "/mnt/shared-data" and v.read_only for v in lab.volumes)


def test_good_file_loads_with_defaults(tmp_path):
    write(tmp_path, "lab.yaml", GOOD)
    (profile,) = load_catalogue([tmp_path]).profiles
    assert profile.slug == "lab" and profile.allowed_groups is None
    assert [c.key for c in profile.images] == ["default"] and profile.images[0].default
    assert profile.sizes[0].resources.cpu_request == 0.5
    assert profile.sizes[0].resources.mem_limit == 2 * 2**30


@pytest.mark.parametrize(
    "edit, line, field, reason",
    [
        (lambda t: t.replace("display_name: Lab", "dispaly_name: Lab"), 2, "dispaly_name", "unknown field"),
        (lambda t: t.replace("display_name: Lab\n", ""), 1, "display_name", "required"),
        (lambda t: t.replace("kind: jupyterlab", "kind: rstudio"), 3, "kind", "must be one of"),
        (lambda t: t.replace("request: 0.5", "request: 3"), 8, "resources.choices.small.cpu.request", "greater than the limit"),
        (lambda t: t.replace("limit: 2Gi", "limit: lots"), 9, "resources.choices.small.memory.limit", "memory amount"),
        (lambda t: t.replace("slug: lab", "slug: Lab_1"), 1, "slug", "not a valid slug"),
        (lambda t: t + "env:\n  DEBUG: 1\n", 11, "env.DEBUG", "must be a string"),
        (lambda t: t + "allowed_groups: researchers\n", 10, "allowed_groups", "list of strings"),
        (lambda t: t + "kind: vscode\n", 10, "kind", "duplicate key"),
        (lambda t: t.replace("    small:", "    custom:"), 7, "resources.choices.custom", "reserved"),
        (lambda t: t.replace("  choices:", "  bounds: {cpu: 0.5}\n  choices:"), 9, "resources.choices.small.cpu", "exceeds resources.bounds.cpu"),
        (lambda t: t + "volumes:\n  - {name: data, mount_path: /data}\n", 11, "volumes[0]", "exactly one of"),
        (lambda t: t + "sidecars:\n  - {name: notebook, image: x:1, resources: {cpu: {request: 1, limit: 1}, memory: {request: 1Gi, limit: 1Gi}}}\n", 11, "sidecars[0].name", "reserved"),
        (lambda t: t + "sidecars:\n  - {name: app, image: x:1, on_exit: always, resources: {cpu: {request: 1, limit: 1}, memory: {request: 1Gi, limit: 1Gi}}}\n", 11, "sidecars[0].on_exit", "must be one of restart, stop_server"),
        (lambda t: t + "sidecars:\n  - {name: app, image: x:1, volumes: [x11], resources: {cpu: {request: 1, limit: 1}, memory: {request: 1Gi, limit: 1Gi}}}\n", 11, "sidecars[0].volumes[0]", "'x11' is not one of the profile's volumes (none)"),
        (lambda t: t.replace("image: quay.io/jupyter/minimal-notebook:2025-01-06", "image:\n  custom: {pattern: '(unclosed'}"), 5, "image.custom.pattern", "regular expression"),
        (lambda t: t.replace("image: quay.io/jupyter/minimal-notebook:2025-01-06", "image: 'not an image'"), 4, "image", "image reference"),
        (lambda t: t + "tolerations: [{key: a, effect: 7}]\n", 10, "tolerations[0].effect", "non-empty string"),
        (lambda t: t + "  : [\n", 10, "", "invalid YAML"),
        (lambda t: t + "env:\n  URL: 'http://{host}/'\n", 11, "env.URL", "unknown placeholder(s) {host}"),
        (lambda t: t + "env:\n  X: 'a{'\n", 11, "env.X", "unbalanced braces"),
        (lambda t: t + "volumes:\n  - {name: d, empty_dir: true, mount_path: '/d/{port}'}\n", 11, "volumes[0].mount_path", "unknown placeholder"),
    ],
)  # fmt: skip
def test_bad_file_names_file_line_field_and_reason(tmp_path, edit, line, field, reason):
    errors = load_errors(tmp_path, edit(GOOD))
    assert any(
        e.file == str(tmp_path / "p.yaml")
        and e.line == line
        and e.field == field
        and reason in e.reason
        for e in errors
    ), [str(e) for e in errors]
    assert str(errors[0]).startswith(f"{tmp_path / 'p.yaml'}:")


def test_every_error_of_a_file_is_reported(tmp_path):
    text = GOOD.replace("kind: jupyterlab", "kind: nope").replace("limit: 1}", "limit: x}")
    errors = load_errors(tmp_path, text)
    assert {e.field for e in errors} >= {"kind", "resources.choices.small.cpu.limit"}


def test_cross_file_problems_point_at_the_second_file(tmp_path):
    write(tmp_path, "a.yaml", GOOD + "default: true\n")
    write(tmp_path, "b.yaml", GOOD + "default: true\n")
    with pytest.raises(ProfileLoadError) as info:
        load_catalogue([tmp_path])
    messages = [str(e) for e in info.value.errors]
    assert any(
        m.startswith(f"{tmp_path / 'b.yaml'}:1: slug: 'lab' is also used by") for m in messages
    )
    assert any("more than one default profile" in m and ":10: default:" in m for m in messages)


def test_empty_or_missing_directory_is_an_error(tmp_path):
    with pytest.raises(ProfileLoadError, match="no profile files"):
        load_catalogue([tmp_path])
    with pytest.raises(ProfileLoadError, match="does not exist"):
        load_catalogue([tmp_path / "missing"])


def test_hidden_files_and_other_suffixes_are_ignored(tmp_path):
    write(tmp_path, "lab.yaml", GOOD)
    write(tmp_path, ".lab.yaml", "garbage: [")
    write(tmp_path, "README.md", "not a profile")
    assert [p.slug for p in load_catalogue([tmp_path]).profiles] == ["lab"]


def test_rules_carry_allowed_groups_of_profile_and_choices(tmp_path):
    text = GOOD.replace(
        "image: quay.io/jupyter/minimal-notebook:2025-01-06",
        "image:\n  choices:\n    a: {image: 'x/a:1'}\n    b: {image: 'x/b:1', allowed_groups: [beta]}\n"
        "  custom: {pattern: 'x/.*', allowed_groups: [admins]}",
    )
    extra = "allowed_groups: [staff]\nculling_policy: short\ncredential_sets: [s3]\n"
    path = write(tmp_path, "lab.yaml", text + extra)
    (rule,) = load_profile_rules(path)
    assert rule == ProfileRule(
        slug="lab",
        allowed_groups=frozenset({"staff"}),
        choices={
            "image": {"a": None, "b": frozenset({"beta"}), "custom": frozenset({"admins"})},
            "size": {"small": None},
        },
        kind="jupyterlab",
        culling_policy="short",
        credential_sets=("s3",),
    )
    assert load_profile_rules(tmp_path) == (rule,)


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_reload_picks_up_changes_and_keeps_last_good_set(tmp_path, caplog):
    path = write(tmp_path, "lab.yaml", GOOD)
    clock = Clock()
    log = logging.getLogger("test-profiles")
    watched = Reloading(
        "profiles",
        lambda: load_catalogue([tmp_path]),
        lambda: files_signature([tmp_path, path]),
        log,
        interval=10,
        clock=clock,
    )
    first = watched.current()
    assert first.get("lab").display_name == "Lab"

    path.write_text(GOOD.replace("display_name: Lab", "display_name: Lab two"))
    assert watched.current() is first  # not looked at before the interval passed
    clock.now = 11
    assert watched.current().get("lab").display_name == "Lab two"

    good = watched.current()
    path.write_text(GOOD.replace("kind: jupyterlab", "kind: broken"))
    clock.now = 22
    with caplog.at_level(logging.ERROR, logger="test-profiles"):
        assert watched.current() is good
    assert f"{path}:3: kind: must be one of" in caplog.text
    assert isinstance(watched.last_error, ProfileLoadError)

    path.write_text(GOOD)
    clock.now = 33
    assert watched.current().get("lab").display_name == "Lab"
    assert watched.last_error is None and watched.generation == 2


def test_first_load_is_strict(tmp_path):
    write(tmp_path, "lab.yaml", GOOD.replace("kind: jupyterlab", "kind: broken"))
    with pytest.raises(ProfileLoadError):
        Reloading("profiles", lambda: load_catalogue([tmp_path]), lambda: (), logging.getLogger())


def test_check_cli(tmp_path, capsys):
    assert check_main([]) == 0
    shipped = load_catalogue([bundled_profiles_dir()]).profiles
    assert f"profiles OK: {len(shipped)} (" in capsys.readouterr().out
    write(tmp_path, "lab.yaml", GOOD.replace("kind: jupyterlab", "kind: broken"))
    assert check_main(["--profiles", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert f"error: {tmp_path / 'lab.yaml'}:3: kind: must be one of" in err


def test_check_cli_checks_the_policy_against_the_profiles(tmp_path, capsys):
    write(tmp_path, "lab.yaml", GOOD)
    policy = write(tmp_path.parent, "policy.yaml", "groups:\n  staff:\n    profiles: [lab, nope]\n")
    assert check_main(["--profiles", str(tmp_path), "--policy", str(policy)]) == 1
    assert "no profile 'nope'" in capsys.readouterr().err
    policy.write_text("groups:\n  staff:\n    profiles: [lab/size/small]\n")
    assert check_main(["--profiles", str(tmp_path), "--policy", str(policy)]) == 0
