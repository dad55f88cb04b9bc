"""Generated secrets kept in a private file, like the chart's Secret: stable across restarts."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path


class SecretStore:
    """``get(key)`` returns the secret for ``key``, generating it (256 random bits, hex) once."""

    def __init__(self, path: Path):
        self.path = path

    def _read(self) -> dict[str, str]:
        return json.loads(self.path.read_text()) if self.path.exists() else {}

    def get(self, key: str) -> str:
        values = self._read()
        if key not in values:
            values[key] = secrets.token_hex(32)
            write_private(self.path, json.dumps(values, indent=1))
        return values[key]


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by this user only (the file may hold secrets)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)  # O_CREAT's mode does not apply to a file that already existed
