"""Which programs the shipped profiles run, and whether the Dockerfile of each image installs them.

The programs come from the profile files where they are named there — a profile's ``command``,
its sidecars' ``command``/``args`` (and the programs an ``sh -c`` string ``exec``s), the
environment variables that name a program (the desktop's X session, the server-proxy entries
on ``JUPYTER_CONFIG_PATH``), a sidecar image's ``CMD`` when the sidecar sets no command — and
from :data:`KIND_PROGRAMS` for what each kind runs without the profile saying so
(docs/workspaces.md). A program that a ``COPY`` puts on the image's ``PATH`` is installed, and
the programs that script ``exec``s are checked in turn; any other must be in
:data:`PROGRAM_SOURCES`, which says which package brings it.

:func:`check_hub_services` does the same for images/hub/Dockerfile and the hub-managed
services of the shipped chart values (their ``command``, and :data:`SERVICE_PROGRAMS`); this
package's console scripts are installed by a ``pip install`` of the copied repository.

An image is built here when its name is ``.../jupyterhub-platform-<name>:<tag>``, from
``images/<name>/Dockerfile`` (the tag scheme of ``nox -s images``); other images (Jupyter's
own) are not checked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib.metadata import distribution
from pathlib import Path, PurePosixPath

import dockerfile
import yaml
from dockerfile import Dockerfile

from jupyterhub_platform.profiles.model import Profile


@dataclass(frozen=True)
class Apt:
    """Installed by ``apt-get install <package>`` (or a downloaded ``<package>_*.deb``)."""

    package: str

    def missing(self, image: Dockerfile) -> str | None:
        if self.package in image.apt:
            return None
        return f"no `apt-get install {self.package}`"


@dataclass(frozen=True)
class Pip:
    """Installed by ``pip install <package>``."""

    package: str

    def missing(self, image: Dockerfile) -> str | None:
        if dockerfile.canonical(self.package) in image.pip:
            return None
        return f"no `pip install {self.package}`"


@dataclass(frozen=True)
class Package:
    """A console script of this package: installed by ``pip install`` of a directory into which
    a ``COPY`` put the repository's pyproject.toml."""

    root: Path

    def missing(self, image: Dockerfile) -> str | None:
        for directory in image.local_pip:
            if dockerfile.image_file(image, self.root, f"{directory}/pyproject.toml") == (
                self.root / "pyproject.toml"
            ):
                return None
        return "no `pip install` of a directory holding the repository's pyproject.toml"


@dataclass(frozen=True)
class Base:
    """Comes with every base image whose name starts with one of ``prefixes``."""

    prefixes: tuple[str, ...]
    why: str

    def missing(self, image: Dockerfile) -> str | None:
        if image.base.startswith(self.prefixes):
            return None
        return f"{self.why}, but the base image is {image.base!r}"


STOCK_JUPYTER = ("quay.io/jupyter/",)
DEBIAN_LIKE = ("debian:", "quay.io/jupyter/")  # Jupyter Docker Stacks are Ubuntu

PROGRAM_SOURCES: dict[str, Apt | Pip | Base] = {
    "sh": Base(DEBIAN_LIKE, "/bin/sh is Essential in Debian and Ubuntu (dash)"),
    "jupyterhub-singleuser": Base(STOCK_JUPYTER, "Jupyter Docker Stacks images install JupyterHub"),
    "code-server": Apt("code-server"),  # the release .deb
    "vncserver": Apt("tigervnc-standalone-server"),
    "Xvnc": Apt("tigervnc-standalone-server"),
    "openbox": Apt("openbox"),
    "xterm": Apt("xterm"),
    "xclock": Apt("x11-apps"),
    "streamlit": Pip("streamlit"),
    "restic": Apt("restic"),  # Debian 12's 0.14, the backup Jobs' image's version
}
"""Where each program that no ``COPY`` puts in the image comes from."""

KIND_PROGRAMS: dict[str, tuple[str, ...]] = {
    "jupyterlab": ("jupyterhub-singleuser",),
    "vscode": ("jupyterhub-singleuser", "code-server"),
    "streamlit": ("jupyterhub-singleuser",),
    "desktop": ("jupyterhub-singleuser", "vncserver", "Xvnc"),
    "custom": (),
}
"""What a kind runs in the notebook container without the profile naming it (docs/workspaces.md):
the single-user server, and what its jupyter-server-proxy extension starts (the Streamlit
kind's program is the server-proxy entry its profile puts on ``JUPYTER_CONFIG_PATH``)."""

KIND_EXTENSIONS: dict[str, tuple[str, ...]] = {
    "vscode": ("jupyter-vscode-proxy",),
    "streamlit": ("jupyter-server-proxy",),
    "desktop": ("jupyter-remote-desktop-proxy",),
}
"""The single-user server extension (a pip package) that starts the kind's program."""

SERVICE_PROGRAMS: dict[str, tuple[str, ...]] = {"jupyterhub-platform-backup": ("restic",)}
"""What a hub-managed service runs itself in the hub container (the backup service lists and
browses snapshots with ``BackupApp.restic``, docs/backup.md)."""

PROGRAM_VARIABLES = {"JUPYTER_REMOTE_DESKTOP_PROXY_XSTARTUP": "the desktop's X session"}
"""Environment variables whose value is a program that an extension runs."""
CONFIG_PATH_VARIABLE = "JUPYTER_CONFIG_PATH"
"""Directories of Jupyter config files: their ``ServerProxy.servers.*.command`` are run."""
PATH_DIRECTORIES = ("/usr/local/bin", "/usr/bin", "/bin")
SHELLS = frozenset({"sh", "bash", "dash"})
IMAGE_NAME = re.compile(r"(?:^|/)jupyterhub-platform-([a-z0-9][a-z0-9-]*)(?:[:@]|$)")


@dataclass(frozen=True)
class Need:
    """Something a profile runs in one image: a ``program``, or a pip ``package``."""

    field: str
    program: str = ""
    package: str = ""


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    checked: list[tuple[str, str, str]] = field(default_factory=list)
    """(profile, program or package, Dockerfile) of each need found installed."""
    sources_used: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class Origin:
    """Who runs the programs: ``key`` in :attr:`Report.checked`, ``where`` to start a problem."""

    key: str
    where: str

    @classmethod
    def of(cls, profile: Profile) -> Origin:
        return cls(profile.slug, f"{profile.source}: profile {profile.slug!r}")


def built_here(image: str, root: Path) -> Path | None:
    """The Dockerfile an image name is built from here (it may not exist), or None."""
    match = IMAGE_NAME.search(image)
    return root / "images" / match.group(1) / "Dockerfile" if match else None


def argv_programs(argv: tuple[str, ...] | list[str]) -> list[str]:
    """``argv[0]``, and for ``sh -c SCRIPT`` also what the script ``exec``s or backgrounds."""
    if not argv:
        return []
    programs = [argv[0]]
    if PurePosixPath(argv[0]).name in SHELLS and "-c" in argv[:-1]:
        programs += dockerfile.exec_programs(argv[list(argv).index("-c") + 1])
    return programs


def notebook_needs(profile: Profile) -> list[Need]:
    """What the profile runs in its notebook container (the same for each of its images)."""
    needs = [Need(f"kind: {profile.kind}", program=p) for p in KIND_PROGRAMS[profile.kind]]
    needs += [
        Need(f"kind: {profile.kind}", package=p) for p in KIND_EXTENSIONS.get(profile.kind, ())
    ]
    needs += [Need("command", program=p) for p in argv_programs(profile.command or ())]
    needs += [
        Need(f"env.{name}", program=profile.env[name])
        for name in PROGRAM_VARIABLES
        if name in profile.env
    ]
    return needs


def _program_needs(programs: list[str], field_name: str) -> list[Need]:
    return [Need(field_name, program=p) for p in programs]


def is_shell_script(text: str) -> bool:
    """Whether ``text`` starts with a shebang line that runs one of :data:`SHELLS`."""
    first = text.partition("\n")[0]
    return first.startswith("#!") and any(
        PurePosixPath(word).name in SHELLS for word in first[2:].split()[:2]
    )


def check(profiles: Iterable[Profile], root: Path) -> Report:
    """Check every image built here that ``profiles`` name; a problem per missing program."""
    report = Report()
    for profile in profiles:
        origin = Origin.of(profile)
        for choice in profile.images:
            image = _image(origin, choice.image, "image", root, report)
            if image is None:
                continue
            needs = notebook_needs(profile)
            for directory in profile.env.get(CONFIG_PATH_VARIABLE, "").split(":"):
                if directory:
                    where = f"env.{CONFIG_PATH_VARIABLE}"
                    needs += _server_proxy_needs(image, root, directory, where, origin, report)
            _check_needs(origin, image, root, needs, report)
        for sidecar in profile.sidecars:
            where = f"sidecars[{sidecar.name}]"
            image = _image(origin, sidecar.image, f"{where}.image", root, report)
            if image is None:
                continue
            argv = (*sidecar.command, *sidecar.args)
            label = f"{where}.command"
            if not sidecar.command:  # Kubernetes: the image's ENTRYPOINT, then args or its CMD
                argv = (*image.entrypoint, *(sidecar.args or image.cmd))
                label = f"{where} (the image's ENTRYPOINT/CMD)"
            _check_needs(origin, image, root, _program_needs(argv_programs(argv), label), report)
    return report


def _image(origin: Origin, name: str, where: str, root: Path, report: Report) -> Dockerfile | None:
    path = built_here(name, root)
    if path is None:
        return None
    if not path.is_file():
        report.problems.append(
            f"{origin.where}: {where} {name!r} would be built from "
            f"{path.relative_to(root)}, which does not exist"
        )
        return None
    return dockerfile.parse(path)


def _server_proxy_needs(
    image: Dockerfile, root: Path, directory: str, where: str, origin: Origin, report: Report
) -> list[Need]:
    local = dockerfile.image_file(image, root, directory)
    if local is None or not local.is_dir():
        report.problems.append(
            f"{origin.where}: {where} names {directory}, which no COPY "
            f"in {image.path.relative_to(root)} puts in the image"
        )
        return []
    needs = []
    for config in sorted(local.glob("*.json")):
        servers = json.loads(config.read_text()).get("ServerProxy", {}).get("servers", {})
        for name, server in servers.items():
            label = f"{where} → {config.relative_to(root)} ServerProxy.servers.{name}.command"
            needs += _program_needs(argv_programs(server.get("command", [])), label)
    return needs


def check_hub_services(values_files: Iterable[Path], root: Path, report: Report) -> None:
    """Check that images/hub/Dockerfile installs what the values' hub-managed services run:
    each ``hub.services.<name>.command``, and what that service runs itself."""
    image = dockerfile.parse(root / "images" / "hub" / "Dockerfile")
    for path in values_files:
        services = ((yaml.safe_load(path.read_text()) or {}).get("hub") or {}).get("services")
        for name, service in (services or {}).items():
            origin = Origin(f"hub.services.{name}", f"{path}: hub.services.{name}")
            programs = argv_programs(service.get("command") or [])
            needs = _program_needs(programs, "command")
            for program in programs:
                needs += _program_needs(
                    list(SERVICE_PROGRAMS.get(program, ())), f"command → {program}"
                )
            _check_needs(origin, image, root, needs, report)


def console_scripts() -> frozenset[str]:
    """This package's console scripts (its ``[project.scripts]``, as installed)."""
    entry_points = distribution("jupyterhub-platform").entry_points
    return frozenset(e.name for e in entry_points if e.group == "console_scripts")


def _check_needs(
    origin: Origin, image: Dockerfile, root: Path, needs: list[Need], report: Report
) -> None:
    relative = image.path.relative_to(root)
    pending = list(needs)
    seen: set[tuple[str, str]] = set()
    while pending:
        need = pending.pop(0)
        what = need.program or need.package
        if (need.field, what) in seen:
            continue
        seen.add((need.field, what))
        source = _source(origin, image, root, need, report, pending)
        if source is None:
            continue
        missing = source.missing(image)
        if missing:
            report.problems.append(
                f"{origin.where}: {need.field} runs {what!r}, which {relative} does not "
                f"install: {missing}"
            )
        else:
            report.checked.append((origin.key, what, str(relative)))


def _source(
    origin: Origin, image: Dockerfile, root: Path, need: Need, report: Report, pending: list[Need]
) -> Apt | Pip | Base | Package | None:
    """Where the need should come from; None when settled here (a ``COPY``, or a problem).
    The programs a copied shell script runs are added to ``pending``."""
    if need.package:
        return Pip(need.package)
    relative = image.path.relative_to(root)
    copied = _copied_program(image, root, need.program)
    if copied is not None:
        report.checked.append((origin.key, need.program, str(relative)))
        text = copied.read_text(errors="replace")
        if is_shell_script(text):
            label = f"{need.field} → {copied.relative_to(root)}"
            pending += _program_needs(dockerfile.exec_programs(text), label)
        return None
    name = PurePosixPath(need.program).name
    if name in console_scripts():
        return Package(root)
    if name not in PROGRAM_SOURCES:
        report.problems.append(
            f"{origin.where}: {need.field} runs {name!r}, which no COPY in {relative} puts on "
            f"the PATH and PROGRAM_SOURCES (tests/image_programs.py) does not name: add where "
            f"{relative} installs it"
        )
        return None
    report.sources_used.add(name)
    return PROGRAM_SOURCES[name]


def _copied_program(image: Dockerfile, root: Path, program: str) -> Path | None:
    """The build-context file a ``COPY`` put at ``program`` (a path, or a name on the PATH)."""
    paths = [program] if program.startswith("/") else [f"{d}/{program}" for d in PATH_DIRECTORIES]
    for path in paths:
        local = dockerfile.image_file(image, root, path)
        if local is not None and local.is_file():
            return local
    return None


def uses_images_built_here(profile: Profile, root: Path) -> bool:
    """Whether any image the profile names (notebook or sidecar) is built from images/ here."""
    names = [choice.image for choice in profile.images] + [s.image for s in profile.sidecars]
    return any(built_here(name, root) is not None for name in names)
