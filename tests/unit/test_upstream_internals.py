"""Every JupyterHub/KubeSpawner internal the package relies on is still there, as expected."""

from __future__ import annotations

import ast
from pathlib import Path

from jupyterhub.apihandlers.users import default_handlers
from jupyterhub.handlers import pages

from jupyterhub_platform import upstream
from jupyterhub_platform.spawner.refusals import (
    RefusingServerAPIHandler,
    RefusingSpawnHandler,
    server_api_handlers,
)

PACKAGE = Path(upstream.__file__).parent


def test_every_listed_internal_is_as_expected():
    assert upstream.problems() == []


def test_a_changed_internal_is_reported_by_name():
    gone = upstream.Internal("jupyterhub.handlers.base:BaseHandler", "no_such_method", "a test")
    rewired = upstream.Internal(
        "jupyterhub.handlers.base:BaseHandler", "get_current_user", "a test", "no such line"
    )
    assert gone.problem() == (
        "jupyterhub.handlers.base:BaseHandler.no_such_method (used by a test): missing"
    )
    assert "no longer contains 'no such line'" in rewired.problem()


def test_the_refusing_handlers_serve_every_server_api_and_spawn_form_route():
    served = {pattern: handler for pattern, handler in server_api_handlers()}
    api = {p for p, h, *_ in default_handlers if h is upstream.SERVER_API_HANDLER}
    form = {p for p, h, *_ in pages.default_handlers if h is upstream.SPAWN_FORM_HANDLER}
    assert set(served) == api | form
    assert len(api) == 2 and len(form) >= 3  # default and named servers; /spawn for self/others
    assert all(served[p] is RefusingServerAPIHandler for p in api)
    assert all(served[p] is RefusingSpawnHandler for p in form)


def _private_names_used_but_not_ours() -> dict[str, set[str]]:
    """Private attributes the package reads (``x._name``) that none of its own code defines."""
    defined, used = set(), {}
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                defined.add(node.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                defined.add(node.id)
            elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
                defined.add(node.attr)
            elif isinstance(node, ast.Attribute) and node.attr.startswith("_"):
                if not node.attr.startswith("__"):
                    used.setdefault(node.attr, set()).add(str(path.relative_to(PACKAGE)))
    return {name: files for name, files in used.items() if name not in defined}


def test_every_upstream_private_name_the_package_reads_is_listed():
    found = _private_names_used_but_not_ours()
    unlisted = {
        name: sorted(files) for name, files in found.items() if name not in upstream.PRIVATE_NAMES
    }
    assert unlisted == {}, "list these in jupyterhub_platform/upstream.py INTERNALS"
    assert {"_load_profile", "_get_initialized_profile_list", "_log_name"} <= set(found)


def test_profile_spawner_overrides_only_listed_kubespawner_privates():
    from kubespawner import KubeSpawner

    from jupyterhub_platform.spawner import ProfileSpawner

    overridden = {
        name
        for name in vars(ProfileSpawner)
        if name.startswith("_")
        and not name.startswith("__")
        and hasattr(KubeSpawner, name)
        and callable(getattr(KubeSpawner, name))
        and not name.endswith("_default")
    }
    assert overridden <= upstream.PRIVATE_NAMES, overridden - upstream.PRIVATE_NAMES
    assert "_start" in overridden
