"""``secret``: values of a Kubernetes Secret in the hub's namespace, the same for everyone the
set is granted to (a shared read-only key for course materials, say)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from jupyterhub_platform.validate import FieldPath, Problems
from jupyterhub_platform.validate import checks as v

from ..model import KEY_RE, Issued, IssueError, Provider, Subject
from . import under

SECRET_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")
"""A DNS subdomain, as Kubernetes names Secrets."""


def _name(value: Any) -> str:
    return v.string(value, SECRET_NAME, "Secret name (lowercase letters, digits, '-' and '.')")


def _key(value: Any) -> str:
    return v.string(value, KEY_RE, "key (letters, digits, '-' and '_', at most 63; no dots)")


class SecretProvider(Provider):
    """Config: ``secret`` (the Secret's name), ``keys`` (which of its keys the set holds)."""

    name = "secret"

    def __init__(self, config: Mapping[str, Any], at: FieldPath):
        super().__init__(config, at)
        with under(at):
            problems = Problems()
            v.fields(config, problems, ("secret", "keys"), ("secret", "keys"))
            self.secret = problems.field(config, "secret", _name)
            self._keys = problems.field(config, "keys", v.list_of, _key, "keys", default=())
            if "keys" in config and isinstance(config["keys"], list) and not config["keys"]:
                problems.add("must name at least one key", ("keys",))
            problems.raise_any()

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(self._keys)

    async def issue(self, subject: Subject, ctx) -> Issued:
        data = await ctx.read_secret(self.secret)
        missing = [k for k in self._keys if k not in data]
        if missing:
            raise IssueError(
                "source_missing", f"Secret {self.secret} has no key {', '.join(missing)}"
            )
        return Issued({k: data[k] for k in self._keys}, ctx.now(), None)
