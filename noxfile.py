"""Developer tasks: ``nox -s tests`` (both support matrices), ``lint``, ``dev``, ``bench``.

Tests run on Python 3.12, the stock z2jh 4.x hub image's Python; where no 3.12 is installed the
sessions fall back to the interpreter running nox and say so.
"""

from __future__ import annotations

import glob
import os
import shutil
import sys
from pathlib import Path

import nox

ROOT = Path(__file__).parent
NODE_PREFIX = ROOT / ".cache" / "node"
CHP_PACKAGE = "configurable-http-proxy@5"

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True
nox.options.download_python = "never"

# (JupyterHub, KubeSpawner) pairs we support: the stock z2jh 4.4 hub image, and the newest.
MATRIX = {
    "jh55": ("jupyterhub==5.5.*", "jupyterhub-kubespawner==7.0.*"),
    "jh6": ("jupyterhub>=6,<7", "jupyterhub-kubespawner>=7.1,<8"),
}


def _python312() -> str:
    """Path of a Python 3.12 interpreter, or the one running nox when there is none."""
    found = shutil.which("python3.12")
    if found and os.access(found, os.X_OK) and "/shims/" not in found:
        return found
    candidates = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.12*/bin/python3.12")))
    candidates += sorted(glob.glob("/root/.pyenv/versions/3.12*/bin/python3.12"))
    candidates += ["/usr/bin/python3.12", "/usr/local/bin/python3.12"]
    for candidate in candidates:
        if os.access(candidate, os.X_OK):
            return candidate
    print("nox: no Python 3.12 found; using", sys.executable, file=sys.stderr)
    return sys.executable


PYTHON = _python312()


def _install_proxy(session: nox.Session) -> None:
    """configurable-http-proxy from npm, into the repo's cache (found there by the platform)."""
    if not (NODE_PREFIX / "node_modules" / ".bin" / "configurable-http-proxy").exists():
        session.run_install(
            "npm", "install", "--no-audit", "--no-fund", "--loglevel=error",
            "--prefix", str(NODE_PREFIX), CHP_PACKAGE,
            external=True,
        )
    session.env["PATH"] = f"{NODE_PREFIX / 'node_modules' / '.bin'}{os.pathsep}{session.env.get('PATH', os.environ['PATH'])}"


@nox.session(python=PYTHON)
@nox.parametrize("matrix", list(MATRIX), ids=list(MATRIX))
def tests(session: nox.Session, matrix: str) -> None:
    """Unit, emulator-conformance and end-to-end tests against one (JupyterHub, KubeSpawner) pair."""
    session.install("-e", ".[test]", *MATRIX[matrix])
    _install_proxy(session)
    session.run("python", "-c", "import jupyterhub, kubespawner; print('jupyterhub', jupyterhub.__version__, 'kubespawner', kubespawner.__version__)")
    session.run(
        "python", "-m", "pytest",
        *(session.posargs or ["-q", "-p", "no:cacheprovider", "--durations=10"]),
    )


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff over the code and the tests."""
    session.install("ruff")
    session.run("ruff", "check", "src", "tests", "benchmarks", "noxfile.py")


@nox.session(python=False)
def dev(session: nox.Session) -> None:
    """The local platform: emulator, kubelet, IdP, proxy and hub, in the repo's .venv."""
    venv = ROOT / ".venv"
    python = venv / "bin" / "python"
    if not python.exists():
        session.run(sys.executable, "-m", "venv", str(venv))
    session.run(str(python), "-m", "pip", "install", "-q", "-e", ".[dev]", external=True)
    _install_proxy(session)
    session.run(str(venv / "bin" / "jupyterhub-platform"), "dev", *session.posargs, external=True)


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Benchmarks, each as a ratio against the upstream baseline measured in the same run."""
    session.install("-e", ".[test]")
    _install_proxy(session)
    session.run("python", "-m", "benchmarks", *session.posargs)
