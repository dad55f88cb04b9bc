"""The JupyterLab stop warning's parts that need no browser: the server's answer about itself,
and the extension being where JupyterLab finds prebuilt extensions once the package is
installed (the browser test is tests/e2e/test_culler_e2e.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from jupyter_core.paths import jupyter_path
from jupyterlab_server.config import get_federated_extensions

from jupyterhub_platform.workspace.cull_deadline import own_deadline
from tests.skips import missing

NAME = "@jupyterhub-platform/cull-warning"
LISTING = {
    "now": "2026-12-02T10:00:00+00:00",
    "warn_before": 600.0,
    "servers": [
        {"user": "alice", "server": "", "cull_at": "2026-12-02T10:05:00+00:00", "due": "idle"},
        {
            "user": "alice",
            "server": "gpu",
            "cull_at": "2026-12-02T18:00:00+00:00",
            "due": "max-age",
        },
    ],
}


@pytest.mark.parametrize(
    ("listing", "user", "server", "expected"),
    [
        (LISTING, "alice", "", LISTING["servers"][0]),
        (LISTING, "alice", "gpu", LISTING["servers"][1]),
        (LISTING, "alice", "other", None),  # not running (yet)
        (LISTING, "bob", "", None),  # only ever its own entry
        ({"now": None, "servers": "broken"}, "alice", "", None),
        ({"servers": [None, 3, {"user": "alice"}]}, "alice", "", None),
    ],
)
def test_the_server_answers_only_about_itself(listing, user, server, expected):
    answer = own_deadline(listing, user, server)
    assert answer["server"] == expected
    assert (answer["now"], answer["warn_before"]) == (
        listing.get("now"),
        listing.get("warn_before"),
    )


def test_jupyterlab_finds_the_prebuilt_extension():
    found = get_federated_extensions(jupyter_path("labextensions"))
    assert NAME in found, sorted(found)
    build = found[NAME]["jupyterlab"]["_build"]
    entry = Path(found[NAME]["ext_path"]) / build["load"]
    assert build["extension"] == "./extension" and entry.is_file()
    repo = Path(__file__).parents[2] / "labextension" / build["load"]
    assert entry.read_text() == repo.read_text(), "installed copy is stale: reinstall the package"


@pytest.mark.processes
def test_the_container_gives_jupyterlab_one_autostarted_plugin():
    """Loads the file in node as JupyterLab's loader does (init, get, factory, default)."""
    node = shutil.which("node")
    if node is None:
        missing("node is not installed (the local platform's proxy needs it too)")
    entry = Path(__file__).parents[2] / "labextension" / "static" / "remoteEntry.js"
    script = f"""
      globalThis.window = globalThis;
      require({json.dumps(str(entry))});
      const container = window._JUPYTERLAB[{json.dumps(NAME)}];
      (async () => {{
        await container.init({{}});
        const module = (await container.get("./extension"))();
        const bad = await container.get("./other").then(() => "resolved", e => e.message);
        const plugins = module.default.map(p => [p.id, p.autoStart, typeof p.activate]);
        console.log(JSON.stringify({{esModule: module.__esModule, plugins, bad}}));
      }})();
    """
    out = subprocess.run(
        [node, "-e", script],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
        start_new_session=True,
    ).stdout
    assert json.loads(out) == {
        "esModule": True,
        "plugins": [[f"{NAME}:plugin", True, "function"]],
        "bad": f"{NAME} has no module ./other",
    }
