"""Every configurable class of the package, and the configuration reference page built from them.

Used by ``conf.py`` (the page is written when the build starts, so a trait's ``help`` is
written once, in the code) and by ``check_reference.py`` (the built page must document every
trait of every class). A class is listed when it is defined in the package and is a traitlets
``Configurable``; its own ``config=True`` traits are its options.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Iterator
from dataclasses import dataclass

PACKAGE = "jupyterhub_platform"

# what each class is configured as, in the hub (chart values) or a service's command line
WHERE = {
    "ServiceApp": "the hub-managed services' command lines (`--ServiceApp.<trait>`) or config files",
    "WorkspaceActivity": "the single-user server (`c.WorkspaceActivity.<trait>` in a Jupyter server config)",
}
SERVICE_APPS = ("CullerApp", "BackupApp", "CredentialsApp", "KubeSource", "PolicySource")


@dataclass(frozen=True)
class Configurable:
    path: str  # module.Class
    name: str
    traits: tuple[str, ...]  # its own config traits
    inherited: tuple[str, ...]  # the config traits it inherits
    bases: tuple[str, ...]  # the package's configurable bases it inherits options from
    upstream: str | None  # the nearest configurable base from another project (KubeSpawner, ...)


def configurables() -> list[Configurable]:
    """The package's configurable classes, sorted by name (imports every module)."""
    from traitlets.config import Configurable as Base

    package = importlib.import_module(PACKAGE)
    found: dict[str, Configurable] = {}
    for info in pkgutil.walk_packages(package.__path__, f"{PACKAGE}."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if not (inspect.isclass(obj) and issubclass(obj, Base)):
                continue
            if obj.__module__ != module.__name__:
                continue
            inherited = [
                b
                for b in obj.__mro__[1:]
                if issubclass(b, Base) and b.class_own_traits(config=True)
            ]
            ours = tuple(b.__name__ for b in inherited if b.__module__.startswith(PACKAGE))
            theirs = [b for b in inherited if not b.__module__.startswith(PACKAGE)]
            own = obj.class_own_traits(config=True)
            found[name] = Configurable(
                f"{obj.__module__}.{name}", name, tuple(sorted(own)),
                tuple(sorted(set(obj.class_traits(config=True)) - set(own))),
                ours, f"{theirs[0].__name__} ({theirs[0].__module__.split('.')[0]})" if theirs else None,
            )  # fmt: skip
    return sorted(found.values(), key=lambda c: c.name)


def _where(c: Configurable) -> str:
    if c.name in WHERE:
        return WHERE[c.name]
    if c.name in SERVICE_APPS:
        return f"the service's command line (`--{c.name}.<trait>=...`) or its config file"
    return (
        f"`hub.config.{c.name}.<trait>` in the chart values (`c.{c.name}.<trait>` in a hub config)"
    )


def reference_page(classes: list[Configurable]) -> str:
    """The MyST source of the configuration reference."""
    lines = [
        "# Configuration reference",
        "",
        "Every configurable class of the package and each of its options, generated from the",
        "traits' own `help` when the documentation is built. `jupyterhub --help-all` prints the",
        "same for the hub's classes.",
        "",
    ]
    for c in classes:
        if not c.traits:
            continue
        lines += [f"## {c.name}", "", f"Set in {_where(c)}."]
        inherits = [f"[{b}](#{b.lower()})" for b in c.bases]
        if c.upstream:
            inherits.append(f"every option of {c.upstream}")
        if inherits:
            lines += [f"It also takes {', '.join(inherits)}."]
        # autodoc writes reStructuredText: parsed as such, not as MyST
        # only its own options (its bases have their sections, or their projects' docs)
        directive = ["```{eval-rst}", f".. autoconfigurable:: {c.path}"]
        if c.inherited:
            directive.append(f"   :exclude-members: {', '.join(c.inherited)}")
        lines += ["", *directive, "```", ""]
    return "\n".join(lines)


def documented_ids(classes: list[Configurable]) -> Iterator[tuple[str, str]]:
    """(class, the HTML id each trait gets) for every trait the page must show."""
    for c in classes:
        for trait in c.traits:
            yield c.name, f"{c.path}.{trait}"
