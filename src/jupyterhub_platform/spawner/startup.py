"""Refuse to start the hub when profile or policy files are invalid.

JupyterHub creates spawners lazily, so nothing would load the files before the first spawn; the
platform's authenticators, which the hub creates at start-up, call :func:`check_configuration`.
"""

from __future__ import annotations

import logging

from jupyterhub_platform.policy.config import PlatformPolicy
from jupyterhub_platform.profiles.catalogue import bundled_profiles_dir

from .sources import DEFAULT_RELOAD_INTERVAL, Sources, shared_sources


def configured_sources(config, log: logging.Logger | None = None) -> Sources:
    """The shared profile and policy sources the hub ``config`` names (as the spawners use)."""
    section = config.ProfileSpawner
    directories = section.get("profile_directories") or [str(bundled_profiles_dir())]
    interval = section.get("profile_reload_interval", DEFAULT_RELOAD_INTERVAL)
    return shared_sources(
        list(directories),
        PlatformPolicy(config=config).policy_file or None,
        log or logging.getLogger("JupyterHub"),
        interval,
    )


def check_configuration(config, log: logging.Logger | None = None) -> None:
    """Load the profile (and policy) files ``config`` names; ``SystemExit`` listing every error."""
    try:
        configured_sources(config, log)
    except Exception as e:  # any problem in the files means: do not start
        raise SystemExit(
            f"jupyterhub-platform: refusing to start, invalid configuration:\n{e}"
        ) from None
