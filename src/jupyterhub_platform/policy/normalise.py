"""Identity-provider group names -> the names the policy, JupyterHub and the profiles use.

Keycloak reports ``/org/researchers``, Entra reports GUIDs, some providers shout in capitals:
normalising once, before anything looks a group up, keeps every other rule written in one
vocabulary.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class GroupMapping:
    """``match`` (a full-match regex) -> ``replace`` (``\\1`` back-references allowed; ``""`` drops)."""

    match: re.Pattern[str]
    replace: str


@dataclass(frozen=True)
class GroupNormaliser:
    """Strip a prefix, optionally case-fold, then apply the first mapping whose regex matches."""

    strip_prefix: str = ""
    case_fold: bool = False
    mappings: tuple[GroupMapping, ...] = ()

    def name(self, group: str) -> str | None:
        """The normalised name of one group, or None when a mapping drops it."""
        if self.strip_prefix and group.startswith(self.strip_prefix):
            group = group[len(self.strip_prefix) :]
        if self.case_fold:
            group = group.casefold()
        for mapping in self.mappings:
            found = mapping.match.fullmatch(group)
            if found:
                group = found.expand(mapping.replace)
                break
        return group or None

    def __call__(self, groups: Iterable[str]) -> frozenset[str]:
        names = (self.name(g) for g in groups if isinstance(g, str))
        return frozenset(n for n in names if n)

    def key(self, name: str) -> str:
        """How a group name written in the policy file is compared (case-folded when configured)."""
        return name.casefold() if self.case_fold else name
