"""The I/O edge: where the workspace extension sees what browsers send, in a running server.

- Every finished HTTP request, through tornado's ``log_function`` setting (the single-user
  server's own API and every request jupyter-server-proxy forwards).
- Every websocket message a browser sends to a proxied program, by wrapping
  jupyter-server-proxy's ``on_message`` (:data:`PROXY_HANDLERS`): the proxy itself counts every
  message and ping (jupyter-server-proxy #471) and offers no hook that sees the message.
- Every terminal message, by wrapping ``TermSocket.on_message`` the same way (its own activity
  also moves on output).

The wrappers classify, record use in the ledger, then call the original unchanged.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime, timezone
from importlib import import_module
from typing import Any

from .activity import UseLedger
from .protocols import http_request_is_use, terminal_message_is_use

LEDGER_SETTING = "jupyterhub_platform_use_ledger"
"""Where the wrapped handlers find the server's :class:`UseLedger` (in the tornado settings)."""
PROXY_HANDLERS = (
    ("jupyter_server_proxy.handlers", "ProxyHandler"),
    ("jupyter_server_proxy.rawsocket", "RawSocketHandler"),
)
"""jupyter-server-proxy's handlers that define ``on_message``: websocket proxying, and the raw
socket proxying of ``raw_socket_proxy`` servers (the desktop's websockify to the VNC socket)."""
WRAPPED = "_jupyterhub_platform_activity"
"""Marks a wrapped method, so a second load of the extension does not wrap it twice."""


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def below(base_url: str, path: str) -> str:
    """``path`` relative to the server's base URL, with its leading slash."""
    return "/" + path[len(base_url) :] if path.startswith(base_url) else path


def watch_http(settings: dict[str, Any], ledger: UseLedger, background) -> None:
    """Record use from each finished request, then log it as the server did before; make the
    ledger reachable from the websocket handlers. ``background``: compiled patterns of the
    changing requests that are not use."""
    settings[LEDGER_SETTING] = ledger
    log_request = settings.get("log_function")
    base_url = settings.get("base_url", "/")

    def log_and_record(handler) -> None:
        request = handler.request
        path = below(base_url, request.path)
        if http_request_is_use(request.method, path, handler.get_status(), background):
            ledger.record("http", utcnow())
        if log_request is not None:
            log_request(handler)

    settings["log_function"] = log_and_record


def _wrap_on_message(
    module: str, cls_name: str, classify: Callable[[Any, Any], str | None]
) -> bool:
    """Wrap ``cls.on_message`` so a message ``classify(handler, message)`` names a source for is
    recorded as use from that source. False when the module is not installed."""
    try:
        cls = getattr(import_module(module), cls_name)
    except ImportError:
        return False
    original = cls.on_message
    if getattr(original, WRAPPED, False):
        return True

    @functools.wraps(original)
    def on_message(self, message):
        ledger = self.settings.get(LEDGER_SETTING)
        source = classify(self, message) if ledger is not None else None
        if source is not None:
            ledger.record(source, utcnow())
        return original(self, message)

    setattr(on_message, WRAPPED, True)
    cls.on_message = on_message
    return True


def watch_proxied_programs(
    protocols: dict[str, str], rules: dict[str, Callable[[Any], bool]]
) -> bool:
    """Classify browser → program websocket messages by the proxied server's protocol
    (``protocols``: server name → protocol, ``rules``: protocol → classifier; "any" when the
    server is not named)."""

    def classify(handler, message) -> str | None:
        name = getattr(handler, "name", "") or "proxy"
        rule = rules[protocols.get(name, "any")]
        return f"proxy:{name}" if rule(message) else None

    wrapped = [_wrap_on_message(module, cls, classify) for module, cls in PROXY_HANDLERS]
    return all(wrapped)


def watch_terminals() -> bool:
    def classify(_handler, message) -> str | None:
        return "terminal" if terminal_message_is_use(message) else None

    return _wrap_on_message("jupyter_server_terminals.handlers", "TermSocket", classify)
