"""Finding (and, once, installing) the real configurable-http-proxy for the local platform.

Production runs the chart's CHP pod; locally we run the same program from npm so routing,
websockets and the proxy REST API behave as they do in the cluster.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

from ..chart.usercache import user_cache

CHP_PACKAGE = "configurable-http-proxy@5"
CHP_BIN = "configurable-http-proxy"
SOURCE_PREFIX = Path(__file__).resolve().parents[3] / ".cache" / "node"
"""A source checkout's own npm prefix (nox and .ci/install-workspace-tools install there)."""


class ProxyInstallError(RuntimeError):
    """CHP is not installed and could not be installed; the message says what to do."""


def candidate_prefixes(state_dir: Path) -> list[Path]:
    """npm prefixes that may hold CHP, most local first."""
    prefixes = [(state_dir.parent / ".cache" / "node").resolve(), SOURCE_PREFIX]
    prefixes.append(user_cache("node"))  # where we install CHP when it is missing
    return list(dict.fromkeys(prefixes))


def node_bin_path(state_dir: Path) -> str:
    """PATH with the existing ``node_modules/.bin`` of :func:`candidate_prefixes` in front.

    User pods find npm-installed workspace programs (code-server) the way the proxy is found.
    """
    bins = [p / "node_modules" / ".bin" for p in candidate_prefixes(state_dir)]
    found = [str(b) for b in bins if b.is_dir()]
    return os.pathsep.join([*found, os.environ.get("PATH", os.defpath)])


def find_chp(state_dir: Path) -> Path | None:
    """CHP on PATH or in one of :func:`candidate_prefixes`."""
    on_path = shutil.which(CHP_BIN)
    if on_path:
        return Path(on_path)
    for prefix in candidate_prefixes(state_dir):
        binary = prefix / "node_modules" / ".bin" / CHP_BIN
        if binary.is_file() and os.access(binary, os.X_OK):
            return binary
    return None


def install_chp(prefix: Path, *, say: Callable[[str], None] = print) -> Path:
    """``npm install --prefix <prefix> configurable-http-proxy@5``, saying what it does."""
    npm = shutil.which("npm")
    if npm is None:
        raise ProxyInstallError(
            "configurable-http-proxy is not installed and npm is not available: install Node.js "
            f"(>= 18) and npm, or run `npm install -g {CHP_PACKAGE}`"
        )
    prefix.mkdir(parents=True, exist_ok=True)
    argv: Sequence[str] = [
        npm,
        "install",
        "--no-fund",
        "--no-audit",
        "--prefix",
        str(prefix),
        CHP_PACKAGE,
    ]
    say(f"configurable-http-proxy not found; installing it: {' '.join(argv)}")
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    binary = prefix / "node_modules" / ".bin" / CHP_BIN
    if result.returncode != 0 or not binary.is_file():
        raise ProxyInstallError(
            f"`{' '.join(argv)}` failed (exit {result.returncode}):\n{result.stderr.strip()[-2000:]}"
        )
    say(f"installed {binary}")
    return binary


def ensure_chp(state_dir: Path, *, say: Callable[[str], None] = print) -> Path:
    """The CHP executable, installing it into the per-user prefix if it is nowhere to be found."""
    return find_chp(state_dir) or install_chp(user_cache("node"), say=say)


def chp_argv(
    binary: Path, *, ip: str, port: int, api_ip: str, api_port: int, hub_url: str
) -> list[str]:
    """The CHP command line the chart's proxy pod uses, with local addresses.

    The auth token is passed in ``CONFIGPROXY_AUTH_TOKEN``, never on the command line.
    """
    return [
        str(binary),
        f"--ip={ip}",
        f"--port={port}",
        f"--api-ip={api_ip}",
        f"--api-port={api_port}",
        f"--default-target={hub_url}",
        f"--error-target={hub_url}/hub/error",
        "--log-level=info",
    ]
