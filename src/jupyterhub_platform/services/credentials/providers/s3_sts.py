"""``s3-sts``: short-lived S3 keys from an STS's ``AssumeRoleWithWebIdentity``, one session per
user (AWS, MinIO, Ceph RGW). The call is the plain unsigned Query API POST AWS documents (the
web identity token is the credential), so the hub needs no AWS SDK; the token is verified by the
hub first, so a forged or expired one never reaches the STS."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlencode, urlsplit

from jupyterhub_platform.policy.culling import parse_duration
from jupyterhub_platform.validate import FieldPath, Invalid, Problems
from jupyterhub_platform.validate import checks as v

from ..model import Issued, IssueError, Provider, Subject
from . import under
from .identity import TOKEN_KINDS, verified_token

API_VERSION = "2011-06-15"
ROLE_ARN = re.compile(r"arn:aws[-a-z]*:iam::[0-9]{12}:role/[\w+=,.@/-]{1,512}", re.ASCII)
MAX_DURATION = 43200
"""AWS's maximum session (12 h; a role's own maximum may be lower, AWS's minimum is 900 s)."""
SESSION_CHARS = re.compile(r"[^\w+=,.@-]", re.ASCII)
KEYS = (
    "aws_access_key_id", "aws_secret_access_key", "aws_session_token", "expiration",
    "endpoint_url", "region",
)  # fmt: skip
CREDENTIALS = {
    "aws_access_key_id": "AccessKeyId",
    "aws_secret_access_key": "SecretAccessKey",
    "aws_session_token": "SessionToken",
    "expiration": "Expiration",
}


def session_name(username: str) -> str:
    """The RoleSessionName for ``username``: AWS allows ``[\\w+=,.@-]{2,64}`` (ASCII)."""
    name = SESSION_CHARS.sub("-", username)[:64]
    return name if len(name) >= 2 else name.ljust(2, "_")


def url(value: Any) -> str:
    text = v.string(value)
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise Invalid(f"must be an http(s) URL, got {v.kind(value)}")
    return text


def duration(value: Any) -> int:
    seconds = parse_duration(value)
    if seconds > MAX_DURATION:
        raise Invalid(f"must be at most 12h (AWS's maximum session), got {value!r}")
    return seconds


class S3STSProvider(Provider):
    """Config: ``role_arn``, ``region``, ``sts_endpoint`` and ``s3_endpoint`` (default: AWS's in
    the region), ``duration`` (default 1h), ``token`` (``id_token`` default, or ``access_token``)."""

    name = "s3-sts"

    def __init__(self, config: Mapping[str, Any], at: FieldPath):
        super().__init__(config, at)
        allowed = ("sts_endpoint", "role_arn", "s3_endpoint", "region", "duration", "token")
        with under(at):
            p = Problems()
            v.fields(config, p, allowed, ("role_arn", "region"))
            self.role_arn = p.field(config, "role_arn", v.string, ROLE_ARN, "IAM role ARN")
            self.region = p.field(config, "region", v.identifier) or ""
            self.sts_endpoint = p.field(config, "sts_endpoint", url) or (
                f"https://sts.{self.region}.amazonaws.com"
            )
            self.s3_endpoint = p.field(config, "s3_endpoint", url) or (
                f"https://s3.{self.region}.amazonaws.com"
            )
            self.duration = p.field(config, "duration", duration) or 3600
            self.kind = p.field(config, "token", v.one_of, TOKEN_KINDS) or "id_token"
            p.raise_any()

    @property
    def keys(self) -> tuple[str, ...]:
        return KEYS

    async def issue(self, subject: Subject, ctx) -> Issued:
        token, _ = await verified_token(subject, self.kind, ctx)
        form = {
            "Action": "AssumeRoleWithWebIdentity",
            "Version": API_VERSION,
            "RoleArn": self.role_arn,
            "RoleSessionName": session_name(subject.username),
            "WebIdentityToken": token,
            "DurationSeconds": str(self.duration),
        }
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "text/xml"}
        issued_at = ctx.now()
        status, _, body = await ctx.fetch("POST", self.sts_endpoint, headers, urlencode(form))
        credentials, expires = parse_response(status, body, token)
        values = {**credentials, "endpoint_url": self.s3_endpoint, "region": self.region}
        return Issued(values, issued_at, expires)


def parse_response(status: int, body: bytes, token: str) -> tuple[dict[str, str], float]:
    """The credentials (and their expiry, epoch seconds) of an ``AssumeRoleWithWebIdentityResponse``; an ``ErrorResponse`` (or
    anything else) as :class:`IssueError`, never quoting ``token``."""
    try:
        root = ET.fromstring(body)
    except ET.ParseError:
        root = None
    if status == 200 and root is not None:
        found = root.find(".//{*}Credentials")
        if found is not None:
            values = {k: (found.findtext(f"{{*}}{tag}") or "").strip()
                      for k, tag in CREDENTIALS.items()}  # fmt: skip
            if all(values.values()):
                return values, expiry(values["expiration"])
    if root is not None and root.find(".//{*}Error") is not None:
        code = root.findtext(".//{*}Error/{*}Code") or "unknown error"
        message = (root.findtext(".//{*}Error/{*}Message") or "").replace(token, "<token>")
        raise IssueError(
            "upstream_refused", f"the STS refused: {code}: {message[:200]}".rstrip(": ")
        )
    reason = "upstream_unavailable" if status >= 500 else "upstream_refused"
    raise IssueError(reason, f"the STS answered HTTP {status} without credentials")


def expiry(text: str) -> float:
    """Epoch seconds of the STS's ``Expiration`` (ISO 8601, UTC when it names no zone)."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise IssueError("upstream_refused", "the STS's Expiration is not ISO 8601") from None
    return (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).timestamp()
