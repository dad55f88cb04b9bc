"""Platform credentials in a user's server: ``get("research-s3")``.

The spawner mounts each set's values at ``$JUPYTERHUB_PLATFORM_CREDENTIALS_DIR/<set>/<key>``
(renewed in place by the credentials service); they are used while not within the last 20% of
their lifetime, else (or when the set is not mounted) the service is asked at
``$JUPYTERHUB_PLATFORM_CREDENTIALS_URL`` with the server's ``$JUPYTERHUB_API_TOKEN``. S3 sets come
back as ``boto3.client("s3", **get(...))`` settings. Standard library only: this runs in every
user image. ``jupyterhub-platform-credential-process <set>`` is boto3's ``credential_process``.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote

DIR_ENV = "JUPYTERHUB_PLATFORM_CREDENTIALS_DIR"
URL_ENV = "JUPYTERHUB_PLATFORM_CREDENTIALS_URL"
TOKEN_ENV = "JUPYTERHUB_API_TOKEN"
FRESH_FRACTION = 0.8
"""Mounted values are used until this fraction of their lifetime (the service renews them then)."""
TIMEOUT = 10.0
S3_KEYS = {
    "aws_access_key_id": "aws_access_key_id",
    "aws_secret_access_key": "aws_secret_access_key",
    "aws_session_token": "aws_session_token",
    "endpoint_url": "endpoint_url",
    "region": "region_name",
}
"""An S3 set's keys (the s3-sts provider's) -> boto3's client arguments."""


class CredentialsUnavailable(Exception):
    """The set cannot be had here; the message says why (never a value)."""


def _parse_time(text: str) -> float | None:
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).timestamp()


def mounted(set_name: str, now: float | None = None) -> dict[str, str] | None:
    """The set's mounted values, or None when absent, blanked (revoked) or near expiry.

    A file's modification time is when the kubelet wrote this issuance: with the ``expiration``
    key it gives the lifetime."""
    root = os.environ.get(DIR_ENV)
    directory = Path(root, set_name) if root else None
    if directory is None or not directory.is_dir():
        return None
    values, written = {}, 0.0
    for path in directory.iterdir():
        if path.name.startswith(".") or not path.is_file():
            continue  # the kubelet's ..data links
        values[path.name] = path.read_text()
        written = max(written, path.stat().st_mtime)
    if not values or not all(values.values()):
        return None
    expires = _parse_time(values["expiration"]) if "expiration" in values else None
    now = time.time() if now is None else now
    if expires is not None and now >= written + FRESH_FRACTION * max(0.0, expires - written):
        return None
    return values


def asked(set_name: str) -> dict:
    """The service's answer for the set (``{"set", "values", "issued_at", "expires_at"}``)."""
    base, token = os.environ.get(URL_ENV, ""), os.environ.get(TOKEN_ENV, "")
    if not base or not token:
        missing = URL_ENV if not base else TOKEN_ENV
        raise CredentialsUnavailable(
            f"credential set {set_name!r}: not mounted here, and ${missing} is not set"
        )
    url = f"{base.rstrip('/')}/api/v1/credentials/{quote(set_name, safe='')}"
    request = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return json.load(response)
    except urllib.error.HTTPError as exc:
        try:
            error = str(json.load(exc)["error"])  # the service's: it names the set
        except (ValueError, KeyError, TypeError):
            error = f"credential set {set_name!r}: the service answered {exc.code} {exc.reason}"
        raise CredentialsUnavailable(error) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CredentialsUnavailable(
            f"credential set {set_name!r}: the credentials service did not answer ({reason})"
        ) from None


def raw(set_name: str) -> dict[str, str]:
    """The set's current values, key -> string."""
    values = mounted(set_name)
    return values if values is not None else dict(asked(set_name)["values"])


def boto3_settings(values: Mapping[str, str]) -> dict[str, str]:
    """boto3 client arguments of an S3 set's values (those it has)."""
    return {arg: values[key] for key, arg in S3_KEYS.items() if values.get(key)}


def get(set_name: str) -> dict[str, str]:
    """The set for use: boto3 client arguments for S3 sets, else its values."""
    values = raw(set_name)
    return boto3_settings(values) if "aws_access_key_id" in values else values


def credential_process(set_name: str) -> dict:
    """AWS ``credential_process`` output for an S3 set."""
    values = raw(set_name)
    if "aws_access_key_id" not in values:
        raise CredentialsUnavailable(f"credential set {set_name!r} is not an S3 set")
    out = {
        "Version": 1,
        "AccessKeyId": values["aws_access_key_id"],
        "SecretAccessKey": values.get("aws_secret_access_key", ""),
    }
    if values.get("aws_session_token"):
        out["SessionToken"] = values["aws_session_token"]
    if values.get("expiration"):
        out["Expiration"] = values["expiration"]
    return out


def credential_process_main(argv: list[str] | None = None) -> int:
    """``jupyterhub-platform-credential-process <set>``: in ``~/.aws/config``,
    ``credential_process = jupyterhub-platform-credential-process research-s3``."""
    args = sys.argv[1:] if argv is None else argv
    prog = "jupyterhub-platform-credential-process"
    if len(args) != 1 or args[0].startswith("-"):
        print(f"usage: {prog} <credential set>", file=sys.stderr)
        return 2
    try:
        print(json.dumps(credential_process(args[0])))
    except CredentialsUnavailable as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
    return 0
