"""The import directions of docs/architecture.md, enforced on the source (parsed with ast).

Every import counts, those inside functions too. Packages form layers: a module imports only its
own package and lower layers. Entry points (the ``jupyterhub-platform`` subcommands) sit on top
and may compose any production package. Only ``devcluster`` and ``testing`` import
``devcluster``; nothing under ``src/`` imports ``testing``; there is no import circle between
modules.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest
import tomllib

import jupyterhub_platform

PACKAGE = Path(jupyterhub_platform.__file__).parent
ROOT = PACKAGE.name
REPO = Path(__file__).resolve().parents[2]
LAYERS = (
    ("upstream", "validate", "proxy", "workspace", "observability"),
    ("policy",),
    ("profiles",),
    ("spawner",),
    ("auth",),
    ("services",),
    ("chart",),
    ("devcluster",),
    ("testing",),
)
"""Bottom to top; the same table is in docs/architecture.md."""
ENTRY_POINTS = frozenset(
    {
        f"{ROOT}.cli",
        f"{ROOT}.policy.cli",
        f"{ROOT}.profiles.cli",
        f"{ROOT}.chart.check_cli",
    }
)
"""Subcommand modules: they compose production packages (never devcluster or testing)."""
DEV_ONLY = ("devcluster", "testing")
INTERFACES = frozenset(
    f"{ROOT}.services.credentials.{m}"
    for m in ("model", "providers", "issuance", "secret_manifest", "transport", "audit")
)
"""Importable from every layer: the credential sets' model, provider registry, issuing, the
per-server Secret and the providers' plain I/O (the policy declares sets with them, the spawner
issues and injects them, the authenticator verifies tokens for them). They import only layer 0
and each other."""


def layer_of(package: str) -> int:
    return next(i for i, names in enumerate(LAYERS) if package in names)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The package's modules ``path`` imports (``from x import y``: ``x.y`` when a module)."""
    name = module_name(path)
    here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = here[: len(here) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            targets = [module] + [f"{module}.{a.name}" for a in node.names]
        else:
            continue
        found |= {t for t in targets if t in modules and t != name}
    return found


def graph() -> dict[str, set[str]]:
    paths = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: imports_of(path, set(paths)) for name, path in paths.items()}


def package_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


GRAPH = graph()


def test_the_graph_is_the_real_one():
    assert f"{ROOT}.policy.model" in GRAPH[f"{ROOT}.policy.loader"]
    assert f"{ROOT}.validate" in GRAPH[f"{ROOT}.profiles.schema"]
    every_package = {package_of(m) for m in GRAPH} - {"", "cli"}
    assert every_package <= {p for names in LAYERS for p in names}, "add it to LAYERS"


def test_imports_go_down_the_layers():
    wrong = []
    for module, targets in GRAPH.items():
        if module in ENTRY_POINTS or module == ROOT:
            continue
        here = layer_of(package_of(module))
        wrong += [
            f"{module} -> {t}"
            for t in targets
            if package_of(t) != package_of(module)
            and layer_of(package_of(t)) > here
            and t not in INTERFACES
        ]
    assert wrong == []


def test_the_interfaces_sit_on_layer_0():
    assert INTERFACES <= set(GRAPH)
    wrong = [
        f"{m} -> {t}"
        for m in INTERFACES
        for t in GRAPH[m]
        if t not in INTERFACES and layer_of(package_of(t)) > 0
    ]
    assert wrong == []


def test_entry_points_do_not_import_the_development_packages():
    wrong = [
        f"{module} -> {t}"
        for module in ENTRY_POINTS
        for t in GRAPH[module]
        if package_of(t) in DEV_ONLY
    ]
    assert wrong == []


@pytest.mark.parametrize("package", DEV_ONLY)
def test_only_the_development_packages_import_them(package):
    importers = {
        module
        for module, targets in GRAPH.items()
        if any(package_of(t) == package for t in targets)
    }
    allowed = {"devcluster", "testing"} if package == "devcluster" else {"testing"}
    assert {m for m in importers if package_of(m) not in allowed} == set()


def test_services_import_nothing_from_the_development_packages():
    assert [
        f"{m} -> {t}"
        for m, targets in GRAPH.items()
        if package_of(m) == "services"
        for t in targets
        if package_of(t) in DEV_ONLY
    ] == []


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def without_package_inits(edges: dict[str, set[str]]) -> dict[str, set[str]]:
    """A package's ``__init__`` re-exports its modules; importing it is importing them."""
    out = defaultdict(set)
    for module, targets in edges.items():
        for t in targets:
            if edges.get(t) and all(x.startswith(t + ".") for x in edges[t]) and t != module:
                out[module] |= edges[t] - {module}
            else:
                out[module].add(t)
    return out


def test_there_is_no_import_circle():
    assert cycles(without_package_inits(GRAPH)) == []


def test_the_cycle_finder_finds_one():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


STARTED_BY_NAME = frozenset(
    {
        ROOT,
        f"{ROOT}.cli",  # the console script
        f"{ROOT}.auth.oidc",  # jupyterhub.authenticators entry points
        f"{ROOT}.auth.cloudflare",
        f"{ROOT}.devcluster.kubelet.sandbox_helper",  # run as a script by the kubelet
        f"{ROOT}.devcluster.object_store",  # python -m, by the local platform and the tests
        f"{ROOT}.observability.dashboard",  # python -m: writes the shipped Grafana dashboard
    }
)
"""Modules nothing imports because they are started by name (entry points, scripts)."""


def test_every_module_outside_testing_serves_the_package():
    """A module only tests import belongs in ``testing`` (or under tests/), not in production."""
    subcommands = {f"{ROOT}.{path}" for path in _subcommand_modules()}
    imported = set().union(*GRAPH.values())
    packages = {m.rpartition(".")[0] for m in GRAPH}
    unused = {
        m
        for m in GRAPH
        if m not in imported
        and m not in STARTED_BY_NAME | subcommands | _entry_point_modules() | packages
        and not m.endswith(".__main__")
        and f"{m}.__main__" not in GRAPH  # run with python -m
        and package_of(m) != "testing"
    }
    assert unused == set()


def _entry_point_modules() -> set[str]:
    """Modules pyproject.toml's console scripts and entry points name."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    groups = [project.get("scripts", {}), *project.get("entry-points", {}).values()]
    return {target.partition(":")[0] for group in groups for target in group.values()}


def _subcommand_modules() -> set[str]:
    from jupyterhub_platform.cli import SUBCOMMANDS

    return {module.removeprefix(f"{ROOT}.") for module, _ in SUBCOMMANDS.values()}
