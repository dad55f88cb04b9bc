"""The group policy with the profile files' rules, as a service reads them.

The same two settings the hub's spawner reads: the policy file (``$JUPYTERHUB_PLATFORM_POLICY``)
and the profile directories (default: the bundled profiles). A bad file is a clear error naming
the file and field, never a traceback.
"""

from __future__ import annotations

import os
from pathlib import Path

from traitlets import List, Unicode, default
from traitlets.config import LoggingConfigurable

from jupyterhub_platform.policy.config import ENV_VAR
from jupyterhub_platform.policy.errors import PolicyError
from jupyterhub_platform.policy.loader import load_policy
from jupyterhub_platform.policy.model import Policy
from jupyterhub_platform.profiles import ProfileLoadError, bundled_profiles_dir, load_catalogue

PROFILES_ENV = "JUPYTERHUB_PLATFORM_PROFILES"


class PolicyLoadError(RuntimeError):
    """The policy or a profile file is invalid; the message names file, field and value."""


class PolicySource(LoggingConfigurable):
    """Where a service finds the policy and the profiles."""

    policy_file = Unicode(
        help=f"The group policy file (default: ${ENV_VAR}); the hub's PlatformPolicy.policy_file."
    ).tag(config=True)

    @default("policy_file")
    def _policy_file(self) -> str:
        return os.environ.get(ENV_VAR, "")

    profile_directories = List(
        Unicode(),
        help=f"Profile directories, as ProfileSpawner.profile_directories (default: "
        f"${PROFILES_ENV}, ':'-separated, else the bundled profiles).",
    ).tag(config=True)

    @default("profile_directories")
    def _profile_directories(self) -> list[str]:
        value = os.environ.get(PROFILES_ENV)
        return value.split(os.pathsep) if value else [str(bundled_profiles_dir())]

    def load(self) -> Policy:
        if not self.policy_file:
            raise PolicyLoadError(f"no policy file: set ${ENV_VAR} or PolicySource.policy_file")
        try:
            rules = load_catalogue([Path(d) for d in self.profile_directories]).rules()
            policy = load_policy(self.policy_file, rules)
        except (PolicyError, ProfileLoadError) as exc:
            raise PolicyLoadError(str(exc)) from None
        self.log.info(
            "policy %s: %d culling policies, %d rules, %d profiles",
            policy.source,
            len(policy.culling.policies),
            len(policy.culling.rules),
            len(rules),
        )
        return policy
