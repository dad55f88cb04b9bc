"""The service reads a user's repository itself: ``restic snapshots`` and ``restic ls`` run as
its children, with the repository password and S3 keys read from the Jobs' Secret through the
Kubernetes API and passed only in the child's environment (never an argument, a log or a page).
Only the repository of the claim the caller resolved is ever opened. Reads take no lock
(``--no-lock``): a backup Job's ``unlock --remove-all`` and prune never meet the service's."""

from __future__ import annotations

import asyncio
import base64
import os

from .manifests import SECRET_KEYS
from .restic import repository_url

NO_REPOSITORY = "Is there a repository at the following location?"
"""restic's words when a user's repository does not exist yet (no backup has run)."""


class RepositoryError(RuntimeError):
    """restic failed; the message is restic's stderr (which never holds the password)."""


def secret_values(secret_data: dict[str, str] | None, name: str) -> dict[str, str]:
    """The Secret's base64 ``data`` decoded; a missing key names the Secret and the key."""
    data = secret_data or {}
    missing = [key for key in SECRET_KEYS if key not in data]
    if missing:
        raise RepositoryError(f"Secret {name}: no {', '.join(missing)}")
    return {key: base64.b64decode(data[key]).decode() for key in SECRET_KEYS}


async def run_restic(
    restic: str, base: str, claim: str, secrets: dict[str, str], args: list[str], timeout: float
) -> str | None:
    """restic's stdout for ``args`` on the claim's repository; None if it does not exist yet."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "RESTIC_REPOSITORY": repository_url(base, claim),
        **secrets,
    }
    proc = await asyncio.create_subprocess_exec(
        restic, "--no-cache", "--no-lock", "--quiet", *args, env=env, start_new_session=True,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        raise RepositoryError(f"restic {args[0]}: no answer in {timeout:.0f}s") from None
    if proc.returncode == 0:
        return out.decode()
    message = err.decode("utf8", "replace").strip()
    if NO_REPOSITORY in message:
        return None
    raise RepositoryError(f"restic {args[0]}: {message[-500:]}")
