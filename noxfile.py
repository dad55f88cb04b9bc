"""Developer tasks: ``nox -s tests`` (both support matrices), ``lint``, ``dev``, ``bench``, ``lock``,
``latest``, ``images``.

Every environment installs from a lock: ``requirements/<matrix>-py<X.Y>.txt``, a pip constraint
file with hashes compiled by uv with a fixed ``--exclude-newer`` date, so a machine installs today
what CI tested. :func:`interpreter` is the one rule that picks each matrix's Python.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import nox

ROOT = Path(__file__).parent
NODE_PREFIX = ROOT / ".cache" / "node"
CHP_PACKAGE = "configurable-http-proxy@5"
LOCKS = ROOT / "requirements"
LOCK_DATE_FILE = LOCKS / "exclude-newer.txt"
"""The date every lock is resolved at (uv ``--exclude-newer``): re-locking gives the same files."""
RUFF = "ruff==0.17.6"

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True
nox.options.download_python = "never"
nox.options.default_venv_backend = "uv"


@dataclass(frozen=True)
class Matrix:
    """A supported (JupyterHub, KubeSpawner) pair — its pins are ``requirements/<name>.in`` —
    and the Python it prefers (None: the machine's default ``python3``)."""

    python: str | None


# The stock z2jh 4.4 hub image (JupyterHub 5.5, KubeSpawner 7.0, Python 3.12), and the newest
# releases on the Python a newcomer has (Debian 12: 3.11).
MATRIX = {"jh55": Matrix("3.12"), "jh6": Matrix(None)}
PYTHONS = ("3.11", "3.12")
"""The Pythons the README names; each matrix is locked for each of them."""
HUB_IMAGE_LOCK = "hub-image.txt"
"""images/hub/Dockerfile's requirements: the runtime dependencies on the stock hub image's
JupyterHub and Python, no extras (a subset of the jh55 / Python 3.12 lock)."""


def _probe(python: str) -> tuple[str, str] | None:
    """(real executable, "X.Y") of ``python`` when it runs, else None (pyenv shims may not)."""
    try:
        out = subprocess.run(
            [python, "-c", "import sys; print(sys.executable, '%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return None
    return (out[0], out[1]) if len(out) == 2 else None


def _installed_pythons() -> dict[str, str]:
    """Version -> executable for each Python in :data:`PYTHONS` this machine has."""
    found: dict[str, str] = {}
    for version in PYTHONS:
        candidates = [
            f"python{version}",
            f"/usr/bin/python{version}",
            f"/usr/local/bin/python{version}",
        ]
        pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
        candidates += sorted(str(p) for p in pyenv.glob(f"{version}.*/bin/python{version}"))
        for candidate in candidates:
            probed = _probe(candidate)
            if probed and probed[1] == version:
                found[version] = probed[0]
                break
    return found


def _default_python3() -> tuple[str, str] | None:
    """The machine's ``python3`` (what ``./run`` bootstrapped nox with)."""
    return _probe("python3")


def interpreter(
    matrix: str, default: tuple[str, str] | None, installed: dict[str, str]
) -> tuple[str, str]:
    """(executable, version) a matrix runs on — the one rule for tests, ``dev`` and ``bench``.

    The matrix's preferred version when installed (jh55: 3.12, the hub image's), else the
    machine's default ``python3`` when it is a locked version, else any locked version installed.
    """
    preferred = MATRIX[matrix].python
    if preferred and preferred in installed:
        return installed[preferred], preferred
    if default and default[1] in PYTHONS:
        return default
    for version in reversed(PYTHONS):
        if version in installed:
            return installed[version], version
    have = f"python3 is {default[1]}" if default else "no python3 runs"
    raise SystemExit(
        f"nox: no supported Python for {matrix} ({have}); install one of "
        f"{', '.join('python' + v for v in PYTHONS)} (e.g. apt-get install python3.11-venv)"
    )


_DEFAULT, _INSTALLED = _default_python3(), _installed_pythons()
PYTHON = {name: interpreter(name, _DEFAULT, _INSTALLED) for name in MATRIX}


def lock_file(matrix: str, version: str) -> Path:
    return LOCKS / f"{matrix}-py{version}.txt"


def pins_file(matrix: str) -> str:
    """The matrix's JupyterHub/KubeSpawner pins, relative (lock annotations name it)."""
    return f"requirements/{matrix}.in"


def _install_locked(session: nox.Session, matrix: str, *requirements: str) -> None:
    """Install ``requirements`` constrained by the matrix's lock for this session's Python.

    With the lock's overrides too: a constraint only pins what is installed anyway, so a package
    the overrides drop (``requirements/overrides.txt``) would otherwise come back unpinned; one a
    reused environment still has is uninstalled.
    """
    lock = lock_file(matrix, PYTHON[matrix][1])
    if not lock.exists():
        session.error(f"{lock.relative_to(ROOT)} is missing; run `nox -s lock`")
    session.install(*requirements, "-c", str(lock), "--overrides", str(LOCKS / "overrides.txt"))
    if dropped := _dropped_by_overrides():
        python = str(Path(session.bin) / "python")
        session.run_install(
            _uv(), "pip", "uninstall", "--python", python, *dropped, external=True, silent=True
        )


def _dropped_by_overrides() -> list[str]:
    """The packages ``requirements/overrides.txt`` drops (with a marker that is never true)."""
    names = []
    for line in (LOCKS / "overrides.txt").read_text().splitlines():
        requirement, _, marker = line.partition(";")
        if not line.lstrip().startswith("#") and marker.strip() == 'sys_platform == "never"':
            names.append(requirement.strip())
    return names


def _install_proxy(session: nox.Session) -> None:
    """configurable-http-proxy from npm, into the repo's cache (found there by the platform)."""
    if not (NODE_PREFIX / "node_modules" / ".bin" / "configurable-http-proxy").exists():
        session.run_install(
            "npm", "install", "--no-audit", "--no-fund", "--loglevel=error",
            "--prefix", str(NODE_PREFIX), CHP_PACKAGE,
            external=True,
        )  # fmt: skip
    path = session.env.get("PATH", os.environ["PATH"])
    session.env["PATH"] = f"{NODE_PREFIX / 'node_modules' / '.bin'}{os.pathsep}{path}"


PARALLEL = ("-n", "auto", "--dist", "loadscope")
"""pytest-xdist: a worker per CPU, each taking whole modules (their module-scoped platforms stay
on one worker); the modules marked ``waits`` are handed out first."""
MATRIX_PYTEST_ARGS = {
    # a third worker: jh55's e2e modules mostly wait on clocks, and it carries the longest ones
    "jh55": (
        "-n",
        "3",
        "--ignore=tests/devcluster",
        "--ignore=tests/credentials",
        "-m",
        "not jh6_only",
    ),
    "jh6": ("-m", "not jh55_only"),
}
"""What does not change with the hub's JupyterHub runs on one matrix, which keeps CI within its
time: modules and cases marked ``jh55_only`` or ``jh6_only`` (the workspace kinds' programs and
their activity, the services' and the quotas' and profiles' e2e, token verification against real
providers, the stock chart's load test on the hub image's versions), split so both take about as
long; the Kubernetes emulator and the kubelet (``tests/devcluster``) and the credentials service's
own tests (``tests/credentials``) on jh6, the environment ``./run dev`` runs them in. Both run
the hub-facing tests: logins, the platform's path a newcomer takes, the authenticators in a hub."""


def _pytest(session: nox.Session, *default_args: str) -> None:
    session.run(
        "python", "-c",
        "import sys, jupyterhub, kubespawner; "
        "print('python', sys.version.split()[0], 'jupyterhub', jupyterhub.__version__, "
        "'kubespawner', kubespawner.__version__)",
    )  # fmt: skip
    session.run(
        "python", "-m", "pytest",
        *(session.posargs or ["-q", "-p", "no:cacheprovider", *default_args]),
    )  # fmt: skip


def _per_matrix(function):
    """Parametrize a session by matrix, each on the Python :func:`interpreter` picked for it."""
    pairs = [(PYTHON[m][0], m) for m in MATRIX]
    return nox.session(nox.parametrize(("python", "matrix"), pairs, ids=list(MATRIX))(function))


@_per_matrix
def tests(session: nox.Session, matrix: str) -> None:
    """Unit, emulator-conformance and end-to-end tests against one (JupyterHub, KubeSpawner) pair."""
    _install_locked(session, matrix, "-e", ".[test]")
    _install_proxy(session)
    _pytest(
        session,
        "--durations=10",
        f"--junitxml=.cache/logs/junit-{matrix}.xml",  # every test's time, for CI's budget
        *PARALLEL,
        *MATRIX_PYTEST_ARGS.get(matrix, ()),
    )


@nox.session(python=PYTHON["jh6"][0])
def lint(session: nox.Session) -> None:
    """ruff's checks and its formatter over the code, the tests and the CI scripts."""
    session.install(RUFF)
    paths = ("src", "tests", "benchmarks", "docs/conf.py", "docs/_ext", "noxfile.py", ".ci")
    session.run("ruff", "check", *paths)
    session.run("ruff", "format", "--check", *paths)


@nox.session(python=PYTHON["jh55"][0])
def docs(session: nox.Session) -> None:
    """The documentation site (docs/ → docs/_build/html), warnings as errors; its configuration
    reference must document every trait of every configurable class (docs/_ext/)."""
    _install_locked(session, "jh55", "-e", ".[docs]")
    out = ROOT / "docs" / "_build" / "html"
    session.run("sphinx-build", "-W", "--keep-going", "-q", "-b", "html", "docs", str(out))
    session.run("python", "docs/_ext/check_reference.py", str(out))
    session.log(f"the documentation is in {out.relative_to(ROOT)}/index.html")


@nox.session(python=PYTHON["jh6"][0])
def dev(session: nox.Session) -> None:
    """The local platform on the jh6 environment (the machine's python3), until Ctrl-C."""
    _install_locked(session, "jh6", "-e", ".[dev]")
    _install_proxy(session)
    # Ctrl-C reaches the platform too (same terminal process group): give it time to stop
    # every component instead of nox's default 0.3 s before SIGTERM/SIGKILL.
    session.run("jupyterhub-platform", "dev", *session.posargs, interrupt_timeout=60)


@nox.session(python=PYTHON["jh55"][0])
def bench(session: nox.Session) -> None:
    """Benchmarks on the stock hub image's environment, each against its upstream baseline."""
    _install_locked(session, "jh55", "-e", ".[test]")
    _install_proxy(session)
    session.run("python", "-m", "benchmarks", *session.posargs)


@nox.session(python=PYTHON["jh6"][0])
def newcomer(session: nox.Session) -> None:
    """The README's path on a fresh clone: ./run dev, a person in Chromium, Ctrl-C, no orphans."""
    _install_locked(session, "jh6", "playwright", "psutil")
    session.run("python", ".ci/newcomer.py", *session.posargs)


def _uv() -> str:
    """uv: beside the Python running nox (``./run`` installs it there), else on PATH."""
    beside = Path(sys.executable).parent / "uv"
    return str(beside) if beside.exists() else (shutil.which("uv") or "uv")


def _compile(
    session: nox.Session, output: Path, version: str, *inputs: str, exclude_newer: str | None
) -> None:
    """``uv pip compile`` of pyproject.toml plus ``inputs`` for Linux and Python ``version``."""
    args = [
        _uv(), "pip", "compile", "--quiet", "pyproject.toml", *inputs,
        "--python-version", version, "--python-platform", "x86_64-unknown-linux-gnu",
        "--generate-hashes", "--no-strip-extras", "--custom-compile-command", "nox -s lock",
        "--overrides", str(LOCKS / "overrides.txt"), "-o", str(output),
    ]  # fmt: skip
    if exclude_newer:
        args += ["--exclude-newer", exclude_newer]
    else:
        args += ["--upgrade"]
    session.run(*args, external=True, silent=True)


def _lock_all(session: nox.Session, directory: Path, exclude_newer: str) -> list[Path]:
    """Every lock file, written into ``directory``; returns their paths."""
    written = []
    for matrix in MATRIX:
        for version in PYTHONS:
            out = directory / lock_file(matrix, version).name
            _compile(
                session, out, version, pins_file(matrix), "--extra", "test", "--extra", "docs",
                exclude_newer=exclude_newer,
            )  # fmt: skip
            written.append(out)
    # The hub image's versions are the tested jh55 / Python 3.12 ones (the committed lock, so a
    # check's annotations match; a stale jh55 lock is reported by its own comparison).
    hub = directory / HUB_IMAGE_LOCK
    jh55 = lock_file("jh55", MATRIX["jh55"].python).relative_to(ROOT)
    _compile(session, hub, "3.12", pins_file("jh55"), "-c", str(jh55), exclude_newer=exclude_newer)
    written.append(hub)
    return written


@nox.session(python=False)
def lock(session: nox.Session) -> None:
    """Re-resolve every lock file at the lock date.

    ``nox -s lock`` rewrites requirements/ at the date in requirements/exclude-newer.txt (the same
    files again unless pyproject.toml or the matrix changed); ``-- --date YYYY-MM-DD`` (or
    ``today``) moves the date first; ``-- --check`` fails if any lock differs from what
    re-resolving it in place gives, i.e. its pins no longer fit pyproject.toml and the matrix.
    """
    args = list(session.posargs)
    if "--date" in args:
        value = args[args.index("--date") + 1]
        day = (
            date.today().isoformat() if value == "today" else date.fromisoformat(value).isoformat()
        )
        LOCK_DATE_FILE.write_text(f"{day}T00:00:00Z\n")
    exclude_newer = LOCK_DATE_FILE.read_text().strip()
    if "--check" not in args:
        LOCKS.mkdir(exist_ok=True)
        for path in _lock_all(session, LOCKS, exclude_newer):
            session.log(f"wrote {path.relative_to(ROOT)}")
        return
    with tempfile.TemporaryDirectory() as tmp:
        # uv keeps the pins of an existing output file unless the inputs rule them out, as
        # `nox -s lock` does in requirements/: a release uploaded late (its upload time before the
        # lock date, seen by the index only now) does not make a lock that still fits stale.
        locks = [lock_file(m, v) for m in MATRIX for v in PYTHONS] + [LOCKS / HUB_IMAGE_LOCK]
        for committed in filter(Path.exists, locks):
            shutil.copy(committed, Path(tmp) / committed.name)
        stale = []
        for fresh in _lock_all(session, Path(tmp), exclude_newer):
            committed = LOCKS / fresh.name
            old = committed.read_text().splitlines() if committed.exists() else []
            diff = list(difflib.unified_diff(old, fresh.read_text().splitlines(), lineterm=""))
            if diff:
                stale.append(committed.name)
                print("\n".join(line for line in diff if not line.startswith("    --hash")))
        if stale:
            session.error(f"stale lock files: {', '.join(stale)}; run `nox -s lock`")
        session.log(f"every lock file re-resolves identically at {exclude_newer}")


PIN = re.compile(r"^([A-Za-z0-9._\[\]-]+)==([^\s;]+)", re.M)


def version_diff(locked: str, latest: str) -> list[str]:
    """``name: old -> new`` for each package whose pinned version differs (added/removed too)."""
    old, new = dict(PIN.findall(locked)), dict(PIN.findall(latest))
    return [
        f"{name}: {old.get(name, '(none)')} -> {new.get(name, '(none)')}"
        for name in sorted(old.keys() | new.keys())
        if old.get(name) != new.get(name)
    ]


@_per_matrix
def latest(session: nox.Session, matrix: str) -> None:
    """The suite on the newest releases: prints the version diff against the lock, then the
    failing tests (pytest ``-rfE``). The temporary lock is left in .cache/latest/."""
    version = PYTHON[matrix][1]
    directory = ROOT / ".cache" / "latest"
    directory.mkdir(parents=True, exist_ok=True)
    newest = directory / lock_file(matrix, version).name
    _compile(session, newest, version, pins_file(matrix), "--extra", "test", exclude_newer=None)
    changes = version_diff(lock_file(matrix, version).read_text(), newest.read_text())
    session.log(f"{matrix} on Python {version}: {len(changes)} versions differ from the lock")
    for change in changes:
        print("   ", change)
    session.install("-e", ".[test]", "-c", str(newest))
    _install_proxy(session)
    _pytest(session, "-rfE")


IMAGES = ROOT / "images"
IMAGE_REGISTRY = "ghcr.io/example"
"""The registry the shipped profiles' images name (``-- --registry`` builds for yours)."""


def package_version(init_text: str) -> str:
    """``__version__`` of the package's ``__init__.py`` (the noxfile does not import the package)."""
    match = re.search(r"""^__version__ = ["']([^"']+)["']""", init_text, re.M)
    if not match:
        raise SystemExit("nox: no __version__ in src/jupyterhub_platform/__init__.py")
    return match.group(1)


def image_names(directory: Path) -> list[str]:
    """The images there are: each ``images/<name>/Dockerfile``."""
    return sorted(p.parent.name for p in directory.glob("*/Dockerfile"))


def image_tag(registry: str, name: str, version: str) -> str:
    """``<registry>/jupyterhub-platform-<name>:<version>`` (a local version's ``+`` as ``-``)."""
    return f"{registry.rstrip('/')}/jupyterhub-platform-{name}:{version.replace('+', '-')}"


def _docker_problem(docker: str | None) -> str | None:
    """Why images cannot be built here, or None when a Docker engine answers."""
    if docker is None:
        return "there is no docker command on PATH"
    try:
        subprocess.run(
            [docker, "version", "--format", "{{.Server.Version}}"],
            capture_output=True, text=True, timeout=30, check=True,
        )  # fmt: skip
    except subprocess.CalledProcessError as e:
        lines = (e.stderr or e.stdout or "").strip().splitlines()
        return (
            f"`docker version` reaches no engine ({lines[-1] if lines else f'exit {e.returncode}'})"
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"`docker version` failed ({e})"
    return None


def _revision() -> str:
    """The checkout's commit, for the images' org.opencontainers.image.revision label."""
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


@nox.session(python=False)
def images(session: nox.Session) -> None:
    """Build images/<name>/Dockerfile as <registry>/jupyterhub-platform-<name>:<version>.

    ``-- NAME ...`` builds only those; ``--registry`` (default ghcr.io/example, the shipped
    profiles'); ``--version`` (default the package's). Without a reachable Docker engine the
    session fails saying so, or with ``--skip-without-docker`` is skipped (exit 0). Not a
    default session; docs/workspaces.md ("Building the images").
    """
    known = image_names(IMAGES)
    parser = argparse.ArgumentParser(prog="nox -s images --", description=images.__doc__)
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"of {', '.join(known)}")
    parser.add_argument("--registry", default=IMAGE_REGISTRY, help="the tags' registry/prefix")
    parser.add_argument("--version", help="the tags' version (default: the package's)")
    parser.add_argument(
        "--skip-without-docker", action="store_true",
        help="skip (exit 0) instead of failing when no Docker engine is reachable",
    )  # fmt: skip
    args = parser.parse_args(session.posargs)
    unknown = sorted(set(args.names) - set(known))
    if unknown:
        session.error(f"no images/<name>/Dockerfile for {', '.join(unknown)}; images: {known}")
    init = ROOT / "src" / "jupyterhub_platform" / "__init__.py"
    version = args.version or package_version(init.read_text())
    docker = shutil.which("docker")
    problem = _docker_problem(docker)
    if problem:
        message = f"cannot build the images: {problem}"
        if args.skip_without_docker:
            session.skip(f"{message} (--skip-without-docker)")
        session.error(f"{message}; start Docker, or pass -- --skip-without-docker to skip")
    revision = _revision()
    for name in args.names or known:
        tag = image_tag(args.registry, name, version)
        session.log(f"building {tag} from images/{name}/Dockerfile")
        session.run(
            docker, "build", "-f", str(IMAGES / name / "Dockerfile"), "-t", tag,
            "--build-arg", f"VERSION={version}", "--build-arg", f"REVISION={revision}",
            str(ROOT),
            external=True,
        )  # fmt: skip
