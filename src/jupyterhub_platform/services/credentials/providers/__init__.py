"""The providers of credential sets, found by name in the ``jupyterhub_platform.credential_providers``
entry point group: the four shipped here (``secret``, ``s3-sts``, ``oidc-token``, ``template``)
and any a site installs. The policy loader builds each declared set's provider through
:func:`load_provider`, so a bad ``config`` fails the load, not a user's spawn."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from importlib.metadata import entry_points
from typing import Any

from jupyterhub_platform.validate import FieldPath, Invalid

from ..model import ENTRY_POINT_GROUP, Provider

ProviderClasses = Mapping[str, type[Provider]]


def installed() -> dict[str, Any]:
    """Name -> entry point of every installed provider (loaded only when a set names it)."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def load_provider(
    name: str, config: Mapping[str, Any], at: FieldPath, classes: ProviderClasses | None = None
) -> Provider:
    """The provider ``name`` built from ``config``. ``at`` is the set's field path: an unknown
    provider is reported at ``<at>.provider``, the config's problems under ``<at>.config``;
    ``classes`` replaces the installed entry points (tests, embedding)."""
    known = dict(classes) if classes is not None else installed()
    if name not in known:
        names = ", ".join(sorted(known)) or "none installed"
        raise Invalid(f"unknown provider {name!r} (known: {names})", (*at, "provider"))
    cls = known[name] if classes is not None else known[name].load()
    if not (isinstance(cls, type) and issubclass(cls, Provider)):
        raise Invalid(f"provider {name!r} is not a Provider class", (*at, "provider"))
    return cls(config, (*at, "config"))


@contextmanager
def under(at: FieldPath) -> Iterator[None]:
    """Problems raised inside (paths relative to a provider's config) are reported under ``at``."""
    try:
        yield
    except Invalid as e:
        raise e.within(at) from None
