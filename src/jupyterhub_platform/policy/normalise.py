"""Identity-provider group names -> the names the policy, JupyterHub and the profiles use.

Keycloak reports ``/org/researchers``, Entra reports GUIDs, some providers shout in capitals:
normalising once, before anything looks a group up, keeps every other rule written in one
vocabulary.

Whoever can create a group at the identity provider chooses its name, so normalisation must
never turn a name into a *different* privileged one. Two rules guarantee that:

- Case folding is ASCII-only (``A``-``Z`` -> ``a``-``z``). Unicode case folding and compatibility
  normalisation merge look-alikes (``ſ`` U+017F folds to ``s``, ``K`` U+212A to ``k``, fullwidth
  ``ａ`` to ``a``); here every other character stays as it is, so a name with one non-ASCII
  character never equals an ASCII policy name.
- A ``map`` rule whose result would be a *privileged* group (one granting admin or roles) is
  refused (the group is dropped) unless the rule lists that group in ``allow_privileged``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def ascii_fold(name: str) -> str:
    """``name`` with ASCII capitals lower-cased and every other character unchanged."""
    return name.translate(_ASCII_LOWER)


@dataclass(frozen=True)
class GroupMapping:
    """``match`` (a full-match regex) -> ``replace`` (``\\1`` back-references allowed; ``""`` drops).

    ``allow_privileged``: the privileged groups (folded keys) this rule may produce.
    """

    match: re.Pattern[str]
    replace: str
    allow_privileged: frozenset[str] = frozenset()


@dataclass(frozen=True)
class NameTrace:
    """How one raw group name became its final name (None: dropped), step by step."""

    raw: str
    steps: tuple[str, ...]
    final: str | None


@dataclass(frozen=True)
class GroupNormaliser:
    """Strip a prefix, optionally ASCII-fold, then apply the first mapping whose regex matches.

    ``privileged``: folded names of the groups that grant admin or roles (set by the loader).
    """

    strip_prefix: str = ""
    case_fold: bool = False
    mappings: tuple[GroupMapping, ...] = ()
    privileged: frozenset[str] = frozenset()

    def trace(self, group: str) -> NameTrace:
        """The normalisation of one raw name, with each step explained."""
        steps = []
        name = group
        if self.strip_prefix and name.startswith(self.strip_prefix):
            name = name[len(self.strip_prefix) :]
            steps.append(f"strip_prefix {self.strip_prefix!r} -> {name!r}")
        if self.case_fold and ascii_fold(name) != name:
            name = ascii_fold(name)
            steps.append(f"case_fold (ASCII) -> {name!r}")
        for i, mapping in enumerate(self.mappings):
            found = mapping.match.fullmatch(name)
            if not found:
                continue
            mapped = found.expand(mapping.replace)
            if not mapped:
                steps.append(f"map[{i}] {mapping.match.pattern!r} -> dropped")
                return NameTrace(group, tuple(steps), None)
            key = self.key(mapped)
            if key in self.privileged and key not in mapping.allow_privileged:
                steps.append(
                    f"map[{i}] {mapping.match.pattern!r} would yield {mapped!r}, which grants "
                    "admin or roles and is not in that rule's allow_privileged -> dropped"
                )
                return NameTrace(group, tuple(steps), None)
            steps.append(f"map[{i}] {mapping.match.pattern!r} -> {mapped!r}")
            name = mapped
            break
        if not name:
            return NameTrace(group, tuple(steps), None)
        if not name.isascii():
            steps.append(
                "contains non-ASCII characters: matches only a policy name written identically"
            )
        return NameTrace(group, tuple(steps), name)

    def name(self, group: str) -> str | None:
        """The normalised name of one group, or None when it is dropped."""
        return self.trace(group).final

    def __call__(self, groups: Iterable[str]) -> frozenset[str]:
        names = (self.name(g) for g in groups if isinstance(g, str))
        return frozenset(n for n in names if n)

    def key(self, name: str) -> str:
        """How a group name written in the policy file is compared (ASCII-folded when configured)."""
        return ascii_fold(name) if self.case_fold else name
