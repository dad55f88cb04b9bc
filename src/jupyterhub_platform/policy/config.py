"""Where the hub finds the policy file: one traitlets setting every consumer reads.

The platform's authenticators are :class:`PlatformPolicy` subclasses and the spawner builds one
from the hub's config, so both read the same file; the spawner adds the profile files' rules
(see ``docs/policy.md``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from traitlets import Unicode, default
from traitlets.config import LoggingConfigurable

from .entitlements import ProfileRule
from .loader import load_policy
from .model import Policy

ENV_VAR = "JUPYTERHUB_PLATFORM_POLICY"


class PlatformPolicy(LoggingConfigurable):
    """The group policy of this hub, as configured by ``c.PlatformPolicy.policy_file``."""

    policy_file = Unicode(
        config=True,
        help=f"""Path of the group policy YAML file (see docs/policy.md).

        Defaults to ${ENV_VAR}. In a z2jh deployment the file is mounted with
        ``hub.extraFiles`` (the shipped values: /usr/local/etc/jupyterhub/platform/policy.yaml).
        Empty means no policy, which lets nobody log in.
        """,
    )

    @default("policy_file")
    def _policy_file_default(self) -> str:
        return os.environ.get(ENV_VAR, "")

    def load(self, profile_rules: Iterable[ProfileRule] = ()) -> Policy:
        """The validated policy merged with ``profile_rules``; raises PolicyError when invalid."""
        policy = load_policy(self.policy_file or None, profile_rules)
        self.log.info(
            "Group policy %s: %d group(s), %d role(s), %d profile rule(s)",
            policy.source,
            len(policy.grants),
            len(policy.roles),
            len(policy.profile_rules),
        )
        return policy
