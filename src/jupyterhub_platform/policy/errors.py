"""The one error a bad policy file raises: it names the file, the line, the field and the value."""

from __future__ import annotations

from jupyterhub_platform.validate import ConfigError


class PolicyError(ConfigError):
    """The policy file (or a profile rule handed to the policy) is invalid."""
