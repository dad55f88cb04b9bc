"""Keep OAuth authorization codes and states out of the hub's log.

JupyterHub scrubs its access log, but other lines quote the callback URL whole: tornado's warning
for a failed request (``403 GET /hub/oauth_callback?code=...&state=...``), its uncaught-exception
report, OAuthenticator's state-decoding errors. A filter on the hub's log handlers rewrites every
record that reaches them, whichever logger wrote it.
"""

from __future__ import annotations

import logging
import re

REDACTED = "[redacted]"
SECRET_PARAMS = ("code", "state", "session_state", "id_token", "access_token", "refresh_token")
_PARAM = re.compile(rf"(?P<key>(?<![\w-])(?:{'|'.join(SECRET_PARAMS)})=)[^&\s'\"#]+")
# OAuthenticator's "Failed to b64-decode state: ...", "OAuth state mismatch: ... != ...".
_STATE_NOTE = re.compile(r"(?P<key>\bstate(?: mismatch)?: ).+")


def redact(text: str) -> str:
    """``text`` with the values of OAuth secret parameters replaced by ``[redacted]``."""
    text = _PARAM.sub(lambda m: m["key"] + REDACTED, text)
    return _STATE_NOTE.sub(lambda m: m["key"] + REDACTED, text)


class RedactingFilter(logging.Filter):
    """Rewrites each record's message with :func:`redact`."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def install(logger: logging.Logger) -> None:
    """Add the filter to every handler ``logger``'s records reach (once each).

    Handler filters see records propagated from child loggers too; tornado's loggers propagate
    into JupyterHub's application logger.
    """
    current: logging.Logger | None = logger
    while current is not None:
        for handler in current.handlers:
            if not any(isinstance(f, RedactingFilter) for f in handler.filters):
                handler.addFilter(RedactingFilter())
        current = current.parent if current.propagate else None
