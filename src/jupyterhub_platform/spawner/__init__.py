"""The platform's spawner (entry point ``jupyterhub.spawners: profiles``)."""

from __future__ import annotations

from .profile_spawner import ProfileSpawner, SidecarFailed
from .startup import check_configuration

__all__ = ["ProfileSpawner", "SidecarFailed", "check_configuration"]
