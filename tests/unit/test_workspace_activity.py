"""The workspace extension's decisions: which browser messages are use, and what is reported.

Streamlit messages are built with Streamlit's own protobuf classes; RFB and VS Code messages are
laid out byte by byte from their protocols (RFC 6143; VS Code's PersistentProtocol header).
"""

from __future__ import annotations

import importlib
import json
import re
import struct
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
from traitlets.config import Config, Configurable

from jupyterhub_platform.workspace.activity import UseLedger, cpu_busy, honest_last_activity
from jupyterhub_platform.workspace.extension import load
from jupyterhub_platform.workspace.hooks import PROXY_HANDLERS, WRAPPED
from jupyterhub_platform.workspace.protocols import (
    background_patterns,
    http_request_is_use,
    protobuf_fields,
    rfb_message_is_use,
    rfb_message_types,
    streamlit_message_is_use,
    terminal_message_is_use,
    vscode_call,
    vscode_message_is_use,
    vscode_messages,
)

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("method", "path", "status", "use"),
    [
        ("GET", "/api/kernels", 200, False),  # polling
        ("GET", "/api/contents/", 200, False),
        ("GET", "/streamlit/_stcore/health", 200, False),
        ("HEAD", "/lab", 200, False),
        ("OPTIONS", "/api/contents/a.ipynb", 204, False),
        ("PUT", "/api/contents/a.ipynb", 200, True),  # a save
        ("POST", "/api/sessions", 201, True),  # a notebook opened
        ("PATCH", "/api/sessions/1", 200, True),
        ("DELETE", "/api/kernels/1", 204, True),
        ("post", "/api/kernels", 201, True),
        ("PUT", "/lab/api/workspaces/default", 204, False),  # JupyterLab's 10 s layout save
        ("PUT", "/api/lab/api/workspaces/x", 200, True),  # matched at the start only
        ("POST", "/api/contents", 403, False),  # refused: nobody's work
        ("PUT", "/api/contents/a", 500, False),
    ],
)
def test_http_requests(method, path, status, use):
    assert http_request_is_use(method, path, status) is use


def test_background_requests_are_configurable():
    background = background_patterns(["POST /proxy/8050/_dash-update"])
    assert not http_request_is_use("POST", "/proxy/8050/_dash-update", 200, background)
    assert http_request_is_use("PUT", "/lab/api/workspaces/default", 204, background)


@pytest.mark.parametrize(
    ("spec", "why"), [("PUT", "is not 'METHOD path-regex'"), ("PUT (", "'PUT ('")]
)
def test_bad_background_requests_are_named(spec, why):
    with pytest.raises(ValueError, match=re.escape(why)):
        background_patterns([spec])


@pytest.mark.parametrize(
    ("message", "use"),
    [
        (json.dumps(["stdin", "ls\r"]), True),
        (json.dumps(["set_size", 24, 80, 600, 800]), False),
        ("not json", False),
        (json.dumps({"stdin": "x"}), False),
        (json.dumps([]), False),
    ],
)
def test_terminal_messages(message, use):
    assert terminal_message_is_use(message) is use


def vscode(kind: int, data: bytes = b"", msg_id: int = 7, ack: int = 3) -> bytes:
    """One PersistentProtocol message: type, id, ack, data length (big-endian), data."""
    return struct.pack(">BIII", kind, msg_id, ack, len(data)) + data


def vql(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def ipc(*header: int | str, body: bytes = b"\x00") -> bytes:
    """An IPC message as VS Code serializes it: the header array, then the body."""
    items = b"".join(
        b"\x06" + vql(h) if isinstance(h, int) else b"\x01" + vql(len(h)) + h.encode()
        for h in header
    )
    return b"\x04" + vql(len(header)) + items + body


def rpc_request(method: str, args: bytes = b"[]", kind: int = 1, req: int = 121) -> bytes:
    """An RPC request to the extension host: type, request id, rpc id, method, arguments."""
    return struct.pack(">BIB", kind, req, 88) + bytes([len(method)]) + method.encode() + args


KEEPALIVE, REGULAR, CONTROL, ACK = 9, 1, 2, 3


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (rpc_request("$onFileEvent", b'{"changed":[]}'), "rpc:$onFileEvent"),
        (rpc_request("$acceptModelChanged", kind=3), "rpc:$acceptModelChanged"),
        (struct.pack(">BI", 5, 121), "rpc-reply"),  # Acknowledged
        (struct.pack(">BI", 9, 121) + b"{}", "rpc-reply"),  # ReplyOKJSON
        (ipc(100, 526, "telemetry", "publicLog2"), "ipc:telemetry.publicLog2"),
        (ipc(100, 527, "remoteterminal", "$input"), "ipc:remoteterminal.$input"),
        (ipc(201, 526), "ipc-reply"),  # PromiseSuccess
        (ipc(204, 12), "ipc-reply"),  # EventFire
        (b"\xee\x01", "regular"),
    ],
)
def test_vscode_calls_are_named(data, name):
    assert vscode_call(data) == name


@pytest.mark.parametrize(
    ("message", "use"),
    [
        (vscode(KEEPALIVE), False),
        (vscode(ACK), False),
        (vscode(CONTROL, b'{"type":"auth"}'), False),
        (vscode(ACK) + vscode(KEEPALIVE), False),
        (vscode(REGULAR, rpc_request("$onFileEvent")), False),  # its own logs changed
        (vscode(REGULAR, ipc(100, 526, "telemetry", "publicLog2")), False),
        (vscode(REGULAR, struct.pack(">BI", 5, 121)), False),  # acknowledging the server
        (vscode(REGULAR, ipc(201, 526)), False),
        (vscode(REGULAR, ipc(100, 527, "remoteterminal", "$input")), True),  # typing
        (vscode(REGULAR, rpc_request("$acceptModelChanged")), True),  # an edit
        (vscode(ACK) + vscode(REGULAR, rpc_request("$executeCommand")), True),
        (vscode(REGULAR, b"\xee unknown"), True),  # unknown calls count
        (b"\x42 not the protocol", True),
        (vscode(KEEPALIVE)[:5], True),  # cut short: unknown
        ("text frame", True),
    ],
)
def test_vscode_messages(message, use):
    assert vscode_message_is_use(message) is use


def test_vscode_messages_walk_every_message():
    message = vscode(ACK) + vscode(REGULAR, rpc_request("$x")) + vscode(KEEPALIVE)
    assert vscode_messages(message) == ["ack", "rpc:$x", "keepalive"]


def backmsg(**fields) -> bytes:
    from streamlit.proto.BackMsg_pb2 import BackMsg

    msg = BackMsg()
    for name, value in fields.items():
        if name == "rerun_script":
            msg.rerun_script.query_string = value
            msg.rerun_script.widget_states.widgets.add(id="slider", int_value=3)
        else:
            setattr(msg, name, value)
    return msg.SerializeToString()


@pytest.mark.parametrize(
    ("fields", "use"),
    [
        ({"app_heartbeat": True}, False),
        ({"load_git_info": True}, False),
        ({"rerun_script": "rows=3"}, True),
        ({"stop_script": True}, True),
        ({"clear_cache": True}, True),
    ],
)
def test_streamlit_messages(fields, use):
    assert streamlit_message_is_use(backmsg(**fields)) is use


def test_streamlit_unknown_bytes_count():
    assert protobuf_fields(b"\xff\xff\xff") is None
    assert streamlit_message_is_use(b"\xff\xff\xff") is True


def key_event(down: bool, keysym: int) -> bytes:
    return struct.pack(">BBxxI", 4, down, keysym)


def pointer_event(mask: int, x: int, y: int) -> bytes:
    return struct.pack(">BBHH", 5, mask, x, y)


def update_request(incremental: bool = True) -> bytes:
    return struct.pack(">BBHHHH", 3, incremental, 0, 0, 1024, 768)


def set_encodings(*encodings: int) -> bytes:
    return struct.pack(">BxH", 2, len(encodings)) + b"".join(
        struct.pack(">i", e) for e in encodings
    )


def cut_text(text: bytes) -> bytes:
    return struct.pack(">BxxxI", 6, len(text)) + text


def fence(payload: bytes = b"") -> bytes:
    return struct.pack(">BxxxIB", 248, 0x80000000, len(payload)) + payload


PIXEL_FORMAT = bytes([0, 0, 0, 0, 32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0])


@pytest.mark.parametrize(
    ("message", "use"),
    [
        (b"RFB 003.008\n", False),  # handshake: version
        (b"\x01", False),  # security type, ClientInit
        (PIXEL_FORMAT + set_encodings(7, 1, 0, -223), False),
        (update_request(), False),  # an open tab asks for screen updates all the time
        (update_request() + fence(b"abc"), False),
        (key_event(True, 0x61), True),
        (key_event(True, 0x61) + key_event(False, 0x61), True),
        (pointer_event(0, 10, 20), True),  # the mouse moved over the desktop
        (update_request() + pointer_event(1, 10, 20), True),
        (cut_text(b"pasted"), True),
        ("text", False),
    ],
)
def test_rfb_messages(message, use):
    assert rfb_message_is_use(message) is use


def test_rfb_types_need_whole_messages():
    assert rfb_message_types(key_event(True, 0x61)[:5]) is None
    assert rfb_message_types(set_encodings(1, 2) + update_request()) == [2, 3]


def test_ledger_keeps_the_latest_use_per_source():
    ledger = UseLedger()
    assert ledger.latest() is None
    ledger.record("http", T0 + timedelta(seconds=5))
    ledger.record("http", T0)  # an earlier time never moves it back
    ledger.record("terminal", T0 + timedelta(seconds=2))
    assert ledger.last == {"http": T0 + timedelta(seconds=5), "terminal": T0 + timedelta(seconds=2)}
    assert ledger.latest() == T0 + timedelta(seconds=5)


@pytest.mark.parametrize(
    ("use", "kernel", "busy", "expected"),
    [
        (None, None, False, T0),  # untouched since start: the start time
        (T0 + timedelta(minutes=3), None, False, T0 + timedelta(minutes=3)),
        (T0 + timedelta(minutes=3), T0 + timedelta(minutes=9), False, T0 + timedelta(minutes=9)),
        (None, T0 - timedelta(minutes=1), False, T0),  # never before the start
        (None, None, True, T0 + timedelta(hours=2)),  # a busy job: now
        (T0 + timedelta(minutes=3), T0, True, T0 + timedelta(hours=2)),
    ],
)
def test_honest_last_activity(use, kernel, busy, expected):
    now = T0 + timedelta(hours=2)
    got = honest_last_activity(started=T0, use=use, kernel_activity=kernel, busy=busy, now=now)
    assert got == expected


@pytest.mark.parametrize(
    ("previous", "current", "busy"),
    [
        (None, (10.0, 5.0), False),  # first sample
        ((0.0, 1.0), (10.0, 1.1), False),  # 1% of a core
        ((0.0, 1.0), (10.0, 3.0), True),  # 20%
        ((0.0, 1.0), (10.0, 11.0), True),  # a whole core
        ((10.0, 1.0), (10.0, 9.0), False),  # no wall time passed
    ],
)
def test_cpu_busy(previous, current, busy):
    assert cpu_busy(previous, current, threshold=0.2) is busy


class _Log:
    def __init__(self):
        self.lines: list[str] = []

    def critical(self, msg, *args):
        self.lines.append(msg % args)

    info = critical


class _ServerApp(Configurable):
    """What the extension touches of a ServerApp: config, its log and the web app's settings."""

    def __init__(self, config: dict):
        super().__init__(config=Config(config))
        self.log = _Log()
        self.web_app = SimpleNamespace(settings={"base_url": "/user/alice/"}, routes=[])
        self.web_app.add_handlers = lambda host, routes: self.web_app.routes.extend(routes)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            {"proxy_protocols": {"streamlit": "websocket"}},
            "WorkspaceActivity.proxy_protocols['streamlit']: 'websocket' is not one of",
        ),
        (
            {"background_requests": ["PUT"]},
            "WorkspaceActivity.background_requests: 'PUT' is not 'METHOD path-regex'",
        ),
        (
            {"vscode_background_calls": ["$onFileEvent"]},
            "WorkspaceActivity.vscode_background_calls: '$onFileEvent' does not start with",
        ),
    ],
)
def test_a_bad_setting_stops_the_server_naming_it(config, message):
    app = _ServerApp({"WorkspaceActivity": config})
    with pytest.raises(SystemExit):
        load(app)
    assert len(app.log.lines) == 1 and message in app.log.lines[0]
    assert "last_activity" not in vars(app.web_app)  # nothing was installed


def test_the_extension_takes_over_last_activity():
    app = _ServerApp({})
    load(app)
    assert app.web_app.last_activity.__self__.__class__.__name__ == "WorkspaceActivity"
    assert app.web_app.settings["log_function"] is not None
    # the JupyterLab stop warning's endpoint, below the server's base URL
    assert [(r, h.__name__) for r, h in app.web_app.routes] == [
        ("/user/alice/jupyterhub-platform/cull-deadline", "CullDeadlineHandler")
    ]
    # every handler a browser's websocket messages reach: proxied programs (websocket and raw
    # socket proxying) and terminals
    for module, name in [*PROXY_HANDLERS, ("jupyter_server_terminals.handlers", "TermSocket")]:
        handler = getattr(importlib.import_module(module), name)
        assert getattr(handler.on_message, WRAPPED, False), f"{module}.{name}"


@pytest.mark.processes  # a fresh interpreter imports the extension
def test_the_extension_imports_nothing_from_the_hub_side():
    """It runs in the user's server, where neither the hub nor the devcluster is installed."""
    blocked = ("jupyterhub", "kubespawner", "kubernetes_asyncio", "jupyterhub_platform.devcluster")
    probe = f"""
import sys
class Refuse:
    def find_spec(self, name, path=None, target=None):
        if any(name == b or name.startswith(b + ".") for b in {blocked!r}):
            raise ImportError("refused: " + name)
sys.meta_path.insert(0, Refuse())
import jupyterhub_platform.workspace.extension
"""
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
