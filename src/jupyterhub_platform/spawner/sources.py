"""The profile catalogue and the group policy, shared by all spawners and reloaded on change."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path

from jupyterhub_platform.policy.entitlements import Entitlements
from jupyterhub_platform.policy.loader import load_policy
from jupyterhub_platform.policy.quotas import UserQuota
from jupyterhub_platform.profiles.access import entitlements_from_rules
from jupyterhub_platform.profiles.catalogue import Catalogue, load_catalogue, profile_files
from jupyterhub_platform.profiles.reloader import Reloading, files_signature

DEFAULT_RELOAD_INTERVAL = 5.0
_watchers: dict[tuple, Sources] = {}


class Sources:
    """Profile directories plus an optional policy file, each watched for changes."""

    def __init__(
        self,
        directories: Sequence[Path],
        policy_file: Path | None,
        log: logging.Logger | logging.LoggerAdapter,
        interval: float,
    ):
        dirs = tuple(directories)
        self.catalogue = Reloading(
            "profiles",
            lambda: load_catalogue(dirs),
            lambda: files_signature([*dirs, *profile_files(dirs)]),
            log,
            interval,
        )
        self.policy = None
        if policy_file is not None:
            # The group policy: the one source of truth once a policy file is configured.
            self.policy = Reloading(
                "group policy",
                lambda: load_policy(policy_file, self.catalogue.current().rules()),
                lambda: (files_signature([policy_file]), self._catalogue_generation()),
                log,
                interval,
            )

    def _catalogue_generation(self) -> int:
        self.catalogue.current()
        return self.catalogue.generation

    def entitlements(self, groups: Sequence[str]) -> tuple[Catalogue, Entitlements]:
        """The current catalogue and what ``groups`` get from it."""
        catalogue = self.catalogue.current()
        if self.policy is not None:
            # JupyterHub group names are the policy's normalised names already (the authenticator
            # synced them): normalising twice is not always a no-op.
            return catalogue, self.policy.current().resolve(groups, normalised=True)
        # No policy file: the profile files' allowed_groups decide alone.
        return catalogue, entitlements_from_rules(catalogue.rules(), groups)

    def quota(self, groups: Sequence[str]) -> UserQuota:
        """The quota of a user in JupyterHub ``groups``; pools named by the JupyterHub group."""
        if self.policy is None:
            return UserQuota()
        policy = self.policy.current()
        quota = policy.quota_for(groups)
        by_key = {policy.normaliser.key(g): g for g in groups}
        pools = tuple(
            dataclasses.replace(p, group=by_key[policy.normaliser.key(p.group)])
            for p in quota.pools
        )
        return dataclasses.replace(quota, pools=pools)


def shared_sources(
    directories: Sequence[str],
    policy_file: str | None,
    log: logging.Logger | logging.LoggerAdapter,
    interval: float = DEFAULT_RELOAD_INTERVAL,
) -> Sources:
    """One :class:`Sources` per configuration, created (strictly) on first use."""
    key = (tuple(directories), policy_file, interval)
    if key not in _watchers:
        _watchers[key] = Sources(
            [Path(d) for d in directories],
            Path(policy_file) if policy_file else None,
            log,
            interval,
        )
    return _watchers[key]
