"""Errors users see as a page: the standard title, then the message once, at text size.

JupyterHub's error page (5.5 and 6.x) puts the message in a paragraph its stylesheet sets at
twice the text size. 6.x also takes its ``<h1>`` from an HTTPError's ``reason``, or else from the
whole message (so a refusal's sentence was shown twice, the first time as a giant title), while
5.5 always shows the standard phrase but replaces the message by ``reason`` when one is set.
Setting ``reason`` to the standard phrase and the message as ``jupyterhub_html_message`` (escaped,
in a span at the page's text size) gives "403 : Forbidden" and one readable sentence on both.
"""

from __future__ import annotations

import html
from http.client import responses

from tornado import web

TEXT_SIZE = "font-size: 1rem; line-height: 1.5"


def page_error(status: int, message: str, reason: str = "") -> web.HTTPError:
    """An HTTPError whose page shows ``message`` once, under "<status> : <standard phrase>".

    ``reason``: a short word for the metrics and the audit trail (``no_allowed_group``)."""
    error = web.HTTPError(status, message, reason=responses.get(status, "Error"))
    error.audit_reason = reason
    error.jupyterhub_message = message
    error.jupyterhub_html_message = f'<span style="{TEXT_SIZE}">{html.escape(message)}</span>'
    return error
