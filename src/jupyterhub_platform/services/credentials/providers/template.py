"""``template``: non-secret settings made from the user's name and groups (a tracking server's
URL, a per-user prefix), so a workspace finds them where it finds its credentials."""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any

from jupyterhub_platform.validate import FieldPath, Invalid, Problems
from jupyterhub_platform.validate import checks as v

from ..model import KEY_RE, Issued, Provider, Subject
from . import under

PLACEHOLDERS = ("groups", "username")
"""``{username}``; ``{groups}``: the user's groups, sorted, comma-joined."""


def check_template(text: Any) -> str:
    """A ``str.format`` template using only :data:`PLACEHOLDERS` (no indexing, no attributes)."""
    if not isinstance(text, str):
        raise Invalid(f"must be a string (quote it in YAML), got {v.kind(text)}")
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(text) if f is not None]
    except ValueError as exc:
        raise Invalid(f"is not a valid template: {exc} (write {{{{ and }}}} for braces)") from None
    for field in fields:
        if field not in PLACEHOLDERS:
            known = ", ".join(f"{{{p}}}" for p in PLACEHOLDERS)
            raise Invalid(f"unknown placeholder {{{field}}} (known: {known})")
    return text


class TemplateProvider(Provider):
    """Config: ``values``, key -> template (``{username}``, ``{groups}``)."""

    name = "template"

    def __init__(self, config: Mapping[str, Any], at: FieldPath):
        super().__init__(config, at)
        with under(at):
            problems = Problems()
            v.fields(config, problems, ("values",), ("values",))
            values = config.get("values")
            if "values" in config and not (isinstance(values, dict) and values):
                problems.add(f"must be a mapping of key -> template, got {v.kind(values)}",
                             ("values",))  # fmt: skip
                values = {}
            self.templates = {}
            for key, text in (values or {}).items():
                if not KEY_RE.fullmatch(key):
                    problems.add(
                        f"{key!r} is not a valid key (letters, digits, '-' and '_', at most 63; "
                        "no dots)",
                        ("values", key),
                    )
                    continue
                self.templates[key] = problems.take(("values", key), check_template, text)
            problems.raise_any()

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(self.templates)

    async def issue(self, subject: Subject, ctx) -> Issued:
        fill = {"username": subject.username, "groups": ",".join(sorted(subject.groups))}
        values = {k: t.format_map(fill) for k, t in self.templates.items()}
        return Issued(values, ctx.now(), None)
