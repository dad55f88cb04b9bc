"""The per-user cache the local platform keeps downloads in (helm, kubectl, the proxy)."""

from __future__ import annotations

import os
from pathlib import Path


def user_cache(name: str) -> Path:
    """``$XDG_CACHE_HOME/jupyterhub-platform/<name>`` (``~/.cache`` without it): shared by clones."""
    base = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(base).expanduser() / "jupyterhub-platform" / name
