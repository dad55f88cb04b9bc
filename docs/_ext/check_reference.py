"""Fail unless the built configuration reference documents every trait of every configurable
class of the package: ``python docs/_ext/check_reference.py docs/_build/html``."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import configurables

EXPECTED = {
    "ProfileSpawner", "OIDCAuthenticator", "CloudflareAccessAuthenticator", "PlatformPolicy",
    "CullerApp", "BackupApp", "CredentialsApp", "ServiceApp", "WorkspaceActivity",
}  # fmt: skip
"""Classes the walk must find (a walk that found nothing would pass vacuously)."""


def missing(html: str) -> list[str]:
    ids = set(re.findall(r'id="([^"]+)"', html))
    return [f"{cls}: {anchor}" for cls, anchor in configurables.documented_ids(
        configurables.configurables()) if anchor not in ids]  # fmt: skip


def main(argv: list[str]) -> int:
    page = Path(argv[0]) / "reference" / "configuration.html"
    if not page.exists():
        print(f"check_reference: {page} was not built", file=sys.stderr)
        return 1
    found = {c.name for c in configurables.configurables()}
    if not EXPECTED <= found:
        print(f"check_reference: no {', '.join(sorted(EXPECTED - found))} found", file=sys.stderr)
        return 1
    absent = missing(page.read_text())
    if absent:
        print(f"check_reference: {page} lacks {len(absent)} option(s):", file=sys.stderr)
        print("\n".join(f"  {a}" for a in absent), file=sys.stderr)
        return 1
    classes = configurables.configurables()
    count = sum(len(c.traits) for c in classes)
    print(f"check_reference: {count} options of {len(classes)} configurable classes documented")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
