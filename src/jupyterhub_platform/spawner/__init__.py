"""The platform's spawner (entry point ``jupyterhub.spawners: profiles``)."""

from __future__ import annotations

from .profile_spawner import ProfileSpawner, StartFailed
from .startup import check_configuration

__all__ = ["ProfileSpawner", "StartFailed", "check_configuration"]
