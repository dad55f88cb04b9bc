"""The workspace extension: the single-user server reports use, not traffic (docs/activity.md).

Enabled in every Jupyter server where the package is installed (``jupyter_server_config.d``);
it replaces ``web_app.last_activity``, which jupyterhub-singleuser posts to the hub and
jupyter_server's own idle shutdown reads. It imports nothing from the hub side of the package.
"""

from __future__ import annotations

from datetime import datetime
from functools import partial

from traitlets import Dict, Float, List, Unicode
from traitlets.config import LoggingConfigurable

from . import cull_deadline, hooks
from .activity import UseLedger, honest_last_activity
from .cpu import TerminalCPU
from .protocols import (
    BACKGROUND_REQUESTS,
    PROXY_PROTOCOLS,
    VSCODE_BACKGROUND_CALLS,
    background_patterns,
    vscode_message_is_use,
)


class WorkspaceActivity(LoggingConfigurable):
    """What counts as use of this workspace, and the report built from it."""

    proxy_protocols = Dict(
        value_trait=Unicode(),
        default_value={"vscode": "vscode", "streamlit": "streamlit", "desktop-websockify": "rfb"},
        config=True,
        help=f"""jupyter-server-proxy server name -> the protocol its browser messages are
        classified by ({", ".join(sorted(PROXY_PROTOCOLS))}). A server not listed uses "any":
        every message its browser sends counts as use.""",
    )
    background_requests = List(
        Unicode(),
        default_value=list(BACKGROUND_REQUESTS),
        config=True,
        help="""Changing HTTP requests that are not use, as "METHOD path-regex" (the regex is
        matched at the start of the path below the server's base URL, e.g. "PUT
        /lab/api/workspaces/"). Other POST/PUT/PATCH/DELETE requests count as use; GET, HEAD
        and OPTIONS never do.""",
    )
    vscode_background_calls = List(
        Unicode(),
        default_value=sorted(VSCODE_BACKGROUND_CALLS),
        config=True,
        help="""VS Code calls an untouched window makes by itself, which are not use:
        "rpc:<method>" (to the extension host), "ipc:<channel>" or "ipc:<channel>.<command>"
        (to the server). Every other call a VS Code window makes counts.""",
    )
    terminal_cpu_threshold = Float(
        0.2,
        min=0.0,
        config=True,
        help="""A terminal whose processes used at least this share of one CPU core since the
        last report counts as busy (a background job the user started), so the server reports
        activity now. 0 counts any CPU use.""",
    )

    def __init__(self, web_app, **kwargs):
        super().__init__(**kwargs)
        unknown = {n: p for n, p in self.proxy_protocols.items() if p not in PROXY_PROTOCOLS}
        if unknown:
            name, value = next(iter(unknown.items()))
            raise ValueError(
                f"WorkspaceActivity.proxy_protocols[{name!r}]: {value!r} is not one of "
                f"{', '.join(sorted(PROXY_PROTOCOLS))}"
            )
        try:
            self.background = background_patterns(self.background_requests)
        except ValueError as exc:
            raise ValueError(f"WorkspaceActivity.background_requests: {exc}") from None
        bad = [c for c in self.vscode_background_calls if not c.startswith(("rpc:", "ipc:"))]
        if bad:
            raise ValueError(
                f"WorkspaceActivity.vscode_background_calls: {bad[0]!r} does not start with "
                "'rpc:' or 'ipc:'"
            )
        self.rules = {
            **PROXY_PROTOCOLS,
            "vscode": partial(
                vscode_message_is_use, background=frozenset(self.vscode_background_calls)
            ),
        }
        self.web_app = web_app
        self.ledger = UseLedger()
        self.terminal_cpu = TerminalCPU(self.terminal_cpu_threshold)

    def install(self) -> None:
        hooks.watch_http(self.web_app.settings, self.ledger, self.background)
        if not hooks.watch_proxied_programs(dict(self.proxy_protocols), self.rules):
            self.log.info("jupyter-server-proxy is not installed: no proxied programs to watch")
        if not hooks.watch_terminals():
            self.log.info("jupyter_server_terminals is not installed: no terminals to watch")
        if not self.terminal_cpu.available():
            self.log.warning("psutil is not installed: a CPU-busy terminal does not count as use")
        self.web_app.last_activity = self.last_activity

    def _busy(self) -> bool:
        settings = self.web_app.settings
        kernels = settings["kernel_manager"]
        for kernel_id in list(kernels.list_kernel_ids()):
            if getattr(kernels.get_kernel(kernel_id), "execution_state", None) == "busy":
                return True
        terminals = getattr(settings.get("terminal_manager"), "terminals", {})
        pids = [t.ptyproc.pid for t in list(terminals.values())]
        return self.terminal_cpu.any_busy(pids)

    def last_activity(self) -> datetime:
        settings = self.web_app.settings
        return honest_last_activity(
            started=settings["started"],
            use=self.ledger.latest(),
            kernel_activity=settings["kernel_manager"].last_kernel_activity,
            busy=self._busy(),
            now=hooks.utcnow(),
        )


def load(serverapp) -> None:
    """Install the activity rules; a bad setting stops the server, naming it and its value
    (a server that cannot say what counts as use must not run as if it could)."""
    try:
        activity = WorkspaceActivity(serverapp.web_app, parent=serverapp)
    except ValueError as exc:
        serverapp.log.critical("jupyterhub-platform workspace activity: %s", exc)
        raise SystemExit(1) from None
    activity.install()
    cull_deadline.install(serverapp.web_app)
    serverapp.log.info(
        "jupyterhub-platform workspace activity: use counts, traffic does not (%s)",
        ", ".join(f"{n}={p}" for n, p in sorted(activity.proxy_protocols.items())),
    )
