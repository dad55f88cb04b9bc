"""The one error a bad policy file raises: it names the file, the field and the value."""

from __future__ import annotations


class PolicyError(ValueError):
    """The policy file (or a profile rule handed to the policy) is invalid."""

    def __init__(self, source: str, field: str, message: str):
        self.source = source
        self.field = field
        super().__init__(f"{source}: {field}: {message}" if field else f"{source}: {message}")
