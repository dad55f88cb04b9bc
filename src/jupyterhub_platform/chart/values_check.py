"""What the hub would refuse or silently ignore in chart values, found before ``helm upgrade``.

Every ``hub.config`` section and trait is checked against the real classes (the configured
authenticator, spawner and proxy with their parents, JupyterHub, CryptKeeper, and every class
the hub loads from entry points), ``hub.services`` fields against JupyterHub's Service, and
``hub.loadRoles`` against JupyterHub's role keys and scope grammar. Each finding names the values
file, the dotted path and, where one is close, a suggestion.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from traitlets import TraitError
from traitlets.config import Configurable

from jupyterhub_platform.policy.errors import PolicyError
from jupyterhub_platform.policy.loader import policy_from_text
from jupyterhub_platform.policy.scopes import FILTER_KINDS, scope_problem

from .values import POLICY_FILE_PATH, ValuesError, get_path, policy_in_values, policy_text_start

ROLE_KEYS = ("name", "description", "scopes", "users", "services", "groups")
CHART_SERVICE_KEYS = ("apiToken",)
"""hub.services fields the chart itself reads (the token goes into its Secret)."""
IGNORED_BY_CHART = {
    ("JupyterHub", "services"): "the chart replaces it: use hub.services",
    (
        "JupyterHub",
        "proxy_auth_token",
    ): "the chart ignores it: use hub.config.ConfigurableHTTPProxy.auth_token",
}
CULLER_SERVICE = "jupyterhub-idle-culler"
"""The service the chart adds itself when cull.enabled is true."""


@dataclass(frozen=True)
class Finding:
    """One problem in the values: where (file and dotted path), what, and a likely fix."""

    source: str
    path: str
    message: str
    suggestion: str | None = None
    note: bool = False
    """A remark that does not fail the check (e.g. configuration of a class the hub won't use)."""

    def __str__(self) -> str:
        text = (
            f"{self.source}: {self.path}: {self.message}"
            if self.path
            else f"{self.source}: {self.message}"
        )
        return f"{text} (did you mean {self.suggestion!r}?)" if self.suggestion else text


@dataclass(frozen=True)
class Layer:
    """One values file, in helm ``-f`` order."""

    source: str
    values: Mapping[str, Any]


def closest(word: str, choices: Iterable[str]) -> str | None:
    found = difflib.get_close_matches(word, sorted(set(choices)), n=1, cutoff=0.6)
    return found[0] if found else None


@dataclass(frozen=True)
class Entry:
    """``<dotted>.<key>`` of one values file, a mapping (a section, a service, a role)."""

    layer: Layer
    path: str
    key: str
    spec: Mapping[str, Any]

    def finding(self, sub: str, message: str, suggestion: str | None = None) -> Finding:
        return Finding(self.layer.source, f"{self.path}{sub}", message, suggestion)


def entries(layers: Sequence[Layer], dotted: str) -> tuple[list[Entry], list[Finding]]:
    """Every ``<dotted>.<key>`` mapping in ``layers``; findings for what is not a mapping."""
    found, findings = [], []
    for layer in layers:
        node = get_path(layer.values, dotted)
        if node is None:
            continue
        if not isinstance(node, Mapping):
            findings.append(
                Finding(layer.source, dotted, f"must be a mapping, got {type(node).__name__}")
            )
            continue
        for key, spec in node.items():
            if isinstance(spec, Mapping):
                found.append(Entry(layer, f"{dotted}.{key}", key, spec))
            else:
                findings.append(Finding(layer.source, f"{dotted}.{key}", "must be a mapping"))
    return found, findings


@dataclass(frozen=True)
class HubClasses:
    """The classes a hub with these values configures, by the config section names they answer to."""

    configured: Mapping[str, tuple[type, ...]]
    """Sections of classes the hub uses (JupyterHub, the authenticator, spawner and proxy, ...)."""
    installed: Mapping[str, tuple[type, ...]]
    """Sections of every class the hub knows (entry points included), used or not."""
    authenticator: type | None
    spawner: type | None


def _sections(classes: Iterable[type]) -> dict[str, tuple[type, ...]]:
    sections: dict[str, set[type]] = {}
    for cls in classes:
        for parent in cls.__mro__:
            if (
                isinstance(parent, type)
                and issubclass(parent, Configurable)
                and parent is not Configurable
            ):
                sections.setdefault(parent.__name__, set()).add(parent)
    return {name: tuple(found) for name, found in sections.items()}


def defined_in(layers: Sequence[Layer], dotted: str) -> str:
    """The file that last sets ``dotted`` (Helm's merge: the last one wins)."""
    for layer in reversed(layers):
        if get_path(layer.values, dotted) is not None:
            return layer.source
    return layers[-1].source


def hub_classes(
    layers: Sequence[Layer], merged: Mapping[str, Any]
) -> tuple[HubClasses, list[Finding]]:
    """Resolve the authenticator, spawner and proxy classes the merged values select."""
    from jupyterhub.app import JupyterHub
    from jupyterhub.crypto import CryptKeeper

    traits = JupyterHub.class_traits()
    defaults = {
        "spawner_class": "kubespawner.KubeSpawner",  # what the chart's hub config sets
        "authenticator_class": traits["authenticator_class"].default_value,
        "proxy_class": traits["proxy_class"].default_value,
    }
    findings, resolved = [], {}
    for trait, default in defaults.items():
        path = f"hub.config.JupyterHub.{trait}"
        value = get_path(merged, path, default)
        try:
            resolved[trait] = traits[trait].validate(None, value)
        except (TraitError, ImportError) as exc:
            installed = traits[trait].load_entry_points()
            findings.append(
                Finding(
                    defined_in(layers, path),
                    path,
                    f"{value!r} is not an installed class ({exc})",
                    closest(str(value).lower(), installed),
                )
            )
    installed = [JupyterHub, CryptKeeper, *JupyterHub()._load_classes(), *resolved.values()]
    return (
        HubClasses(
            configured=_sections([JupyterHub, CryptKeeper, *resolved.values()]),
            installed=_sections(installed),
            authenticator=resolved.get("authenticator_class"),
            spawner=resolved.get("spawner_class"),
        ),
        findings,
    )


def config_findings(layers: Sequence[Layer], classes: HubClasses) -> list[Finding]:
    """Every ``hub.config.<Section>.<trait>`` against the classes answering to that section."""
    sections, findings = entries(layers, "hub.config")
    for section in sections:
        name = section.key
        if not name[:1].isupper():
            others = ["loadRoles", "services", *classes.installed]
            findings.append(
                section.finding(
                    "",
                    "not a configurable class name; the chart's hub exits on it",
                    closest(name, others),
                )
            )
            continue
        owners = classes.installed.get(name)
        if owners is None:
            findings.append(
                section.finding(
                    "",
                    "no class of the hub answers to this section",
                    closest(name, classes.installed),
                )
            )
            continue
        if name not in classes.configured:
            findings.append(
                replace(
                    section.finding("", f"configures {name}, which this hub does not use"),
                    note=True,
                )
            )
        valid = {trait for cls in owners for trait in cls.class_trait_names(config=True)}
        for trait in section.spec:
            if (name, trait) in IGNORED_BY_CHART:
                findings.append(section.finding(f".{trait}", IGNORED_BY_CHART[name, trait]))
            elif trait not in valid:
                findings.append(
                    section.finding(
                        f".{trait}", f"not a configurable trait of {name}", closest(trait, valid)
                    )
                )
    return findings


def service_findings(layers: Sequence[Layer]) -> list[Finding]:
    """``hub.services.<name>.<field>`` against JupyterHub's Service inputs."""
    from jupyterhub.services.service import Service

    fields = {*Service.class_trait_names(input=True), *CHART_SERVICE_KEYS}
    services, findings = entries(layers, "hub.services")
    for service in services:
        for field in service.spec:
            if field not in fields:
                findings.append(
                    service.finding(
                        f".{field}",
                        "not a JupyterHub service field (the hub refuses to start)",
                        closest(field, fields),
                    )
                )
    return findings


def service_names(merged: Mapping[str, Any]) -> set[str]:
    hub = merged.get("hub") or {}
    names = {
        spec.get("name", key)
        for key, spec in (hub.get("services") or {}).items()
        if isinstance(spec, Mapping)
    }
    if (merged.get("cull") or {}).get("enabled"):
        names.add(CULLER_SERVICE)
    return names


def _scope_suggestion(scope: str) -> str | None:
    """The closest valid scope: the scope name, else the filter kind, corrected."""
    from jupyterhub.scopes import scope_definitions

    name, bang, filter_ = scope.partition("!")
    if name not in scope_definitions:
        better = closest(name, scope_definitions)
        return f"{better}{bang}{filter_}" if better else None
    kind, eq, value = filter_.partition("=")
    better = closest(kind, FILTER_KINDS)
    return f"{name}!{better}{eq}{value}" if better else None


def role_findings(layers: Sequence[Layer], services: set[str]) -> list[Finding]:
    """``hub.loadRoles``: role keys, scopes against JupyterHub's grammar, services that exist."""
    roles, findings = entries(layers, "hub.loadRoles")
    for role in roles:
        for field in role.spec:
            if field not in ROLE_KEYS:
                findings.append(
                    role.finding(f".{field}", "not a role field", closest(field, ROLE_KEYS))
                )
        for i, scope in enumerate(role.spec.get("scopes") or []):
            problem = scope_problem(scope)
            if problem:
                suggestion = _scope_suggestion(scope) if isinstance(scope, str) else None
                findings.append(role.finding(f".scopes[{i}]", problem, suggestion))
        for i, service in enumerate(role.spec.get("services") or []):
            if service not in services:
                findings.append(
                    role.finding(
                        f".services[{i}]",
                        f"no service {service!r} in hub.services",
                        closest(str(service), services),
                    )
                )
    return findings


def profile_list_findings(layers: Sequence[Layer], classes: HubClasses) -> list[Finding]:
    """ProfileSpawner refuses a non-empty singleuser.profileList (profiles come from files)."""
    from jupyterhub_platform.spawner import ProfileSpawner

    if not (classes.spawner and issubclass(classes.spawner, ProfileSpawner)):
        return []
    return [
        Finding(
            layer.source,
            "singleuser.profileList",
            "not used with ProfileSpawner: profiles come from profile files (profile_directories)",
        )
        for layer in layers
        if (layer.values.get("singleuser") or {}).get("profileList")
    ]


def policy_findings(layers: Sequence[Layer], merged: Mapping[str, Any], rules) -> list[Finding]:
    """The group policy the values mount where ``PlatformPolicy.policy_file`` says, checked
    against the profile files' ``rules`` (grants must name existing profiles)."""
    try:
        policy = policy_in_values(merged)
    except ValuesError as exc:
        return [Finding(defined_in(layers, POLICY_FILE_PATH), "", str(exc))]
    source = defined_in(layers, policy.path.rsplit(".", 1)[0])
    findings = []
    if policy.is_data:
        findings.append(
            Finding(
                source,
                policy.path,
                "use stringData: the chart re-writes data with sorted keys, which loses the order of groups the policy depends on",
            )
        )
    file, start = policy_text_start([layer.source for layer in layers], policy)
    name = file if start else f"{file}: {policy.path}"
    try:
        policy_from_text(policy.text, name, rules, start)
    except PolicyError as exc:
        findings.append(Finding(exc.where, exc.field, exc.reason))
    return findings
