"""Which client messages are a person using the workspace: pure functions over raw messages.

Each takes one message a browser sent (a websocket message, or an HTTP method and path) and
answers whether it is *use*. Background traffic of an open but untouched tab (keep-alives,
acknowledgements, heartbeats, screen-update requests, polling) is not. docs/activity.md lists
what counts per kind; each rule names the protocol's own message types.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable

Message = str | bytes


def varint(data: bytes, offset: int) -> tuple[int, int]:
    """An unsigned LEB128 number at ``offset`` (7 bits a byte, least significant first, as
    protobuf's varints and VS Code's VQL numbers are) and the offset after it."""
    value = shift = 0
    while True:
        if offset >= len(data) or shift > 63:
            raise ValueError("truncated number")
        byte = data[offset]
        value |= (byte & 0x7F) << shift
        offset += 1
        if not byte & 0x80:
            return value, offset
        shift += 7


# -- HTTP -------------------------------------------------------------------------------------

READ_ONLY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
BACKGROUND_REQUESTS = ("PUT /lab/api/workspaces/",)
"""Changing requests an open, untouched tab sends by itself, as ``"METHOD path-regex"`` (the
path below the server's base URL): JupyterLab saves its layout every 10 s while a document is
open (measured: test-artifacts/e2e/activity/jupyterlab.json)."""


def background_patterns(specs: Iterable[str]) -> tuple[tuple[str, re.Pattern], ...]:
    """``"METHOD path-regex"`` strings compiled; a malformed one raises ValueError naming it."""
    patterns = []
    for spec in specs:
        method, _, path = spec.strip().partition(" ")
        if not method or not path.strip():
            raise ValueError(f"{spec!r} is not 'METHOD path-regex'")
        try:
            patterns.append((method.upper(), re.compile(path.strip())))
        except re.error as exc:
            raise ValueError(f"{spec!r}: {exc}") from None
    return tuple(patterns)


DEFAULT_BACKGROUND = background_patterns(BACKGROUND_REQUESTS)


def http_request_is_use(
    method: str,
    path: str,
    status: int,
    background: tuple[tuple[str, re.Pattern], ...] = DEFAULT_BACKGROUND,
) -> bool:
    """An HTTP request to the single-user server (its REST API or a proxied program) is use when
    it changes something: JupyterLab's saves, runs, renames, uploads and kernel starts are
    POST/PUT/PATCH/DELETE; what an open tab polls (kernels, sessions, terminals, contents
    listings, health checks) is GET, and ``background`` lists the changing requests a tab sends
    by itself. ``path`` is below the server's base URL. Refused requests (4xx/5xx) are nobody's
    work."""
    method = method.upper()
    if method in READ_ONLY_METHODS or status >= 400:
        return False
    return not any(method == m and pattern.match(path) for m, pattern in background)


# -- Terminals (jupyter_server_terminals, terminado's JSON messages) ----------------------------


def terminal_message_is_use(message: Message) -> bool:
    """``["stdin", ...]`` is typing; ``["set_size", ...]`` (sent when a tab opens or resizes) is not."""
    try:
        decoded = json.loads(message)
    except (TypeError, ValueError):
        return False
    return isinstance(decoded, list) and bool(decoded) and decoded[0] == "stdin"


# -- VS Code (code-server): VS Code's PersistentProtocol -----------------------------------------

VSCODE_HEADER_LENGTH = 13
"""type (1 byte), id (4), ack (4), data length (4), big-endian."""
VSCODE_REGULAR = 1
VSCODE_TYPE_NAMES = {
    0: "none",
    2: "control",
    3: "ack",
    5: "disconnect",
    6: "replay-request",
    7: "pause",
    8: "resume",
    9: "keepalive",
}
"""The protocol's own message types (an open window sends KeepAlive every few seconds). Regular
(1) messages carry the calls: RPC to the extension host, IPC channels to the server."""
IPC_ARRAY, IPC_STRING, IPC_INT = 4, 1, 6
IPC_REQUESTS = frozenset({100, 102})
"""IPC request types a browser sends: Promise (a call) and EventListen; the others are
cancellations (101, 103) and responses to the server's own calls (200-204)."""
RPC_REQUESTS = frozenset({1, 2, 3, 4})
"""RPC request types (JSON or mixed arguments, with or without cancellation); the others are
acknowledgements, cancellations and replies to the extension host's calls (5-12)."""
VSCODE_BACKGROUND_CALLS = frozenset({"rpc:$onFileEvent", "ipc:telemetry"})
"""Calls an open, untouched window makes by itself (measured: test-artifacts/e2e/activity/
vscode.json): file-watcher events forwarded to the extension host (code-server writes its own
logs and state under the home directory, which is the workspace folder), and telemetry. A call
matches by ``rpc:<method>``, ``ipc:<channel>`` or ``ipc:<channel>.<command>``."""


def _ipc_header(data: bytes) -> list[int | str] | None:
    """The ints and strings of an IPC message's header array, or None if it is not one."""
    try:
        count, offset = varint(data, 1)
        items: list[int | str] = []
        for _ in range(count):
            kind, offset = data[offset], offset + 1
            value, offset = varint(data, offset)
            if kind == IPC_INT:
                items.append(value)
            elif kind == IPC_STRING:
                items.append(data[offset : offset + value].decode("utf-8", "replace"))
                offset += value
            else:
                return None
        return items
    except (ValueError, IndexError):
        return None


def vscode_call(data: bytes) -> str:
    """One Regular message's data, named: ``ipc:<channel>.<command>`` or ``rpc:<method>`` for a
    request, ``ipc-reply``/``rpc-reply`` for the rest, ``regular`` when it is neither."""
    if len(data) > 2 and data[0] == IPC_ARRAY and 0 < data[1] <= 4 and data[2] == IPC_INT:
        header = _ipc_header(data)
        if header and isinstance(header[0], int):
            if header[0] in IPC_REQUESTS and len(header) >= 4:
                return f"ipc:{header[2]}.{header[3]}"
            return "ipc-reply"
    if len(data) >= 7 and data[0] in RPC_REQUESTS:
        size = data[6]
        if len(data) >= 7 + size:
            return "rpc:" + data[7 : 7 + size].decode("utf-8", "replace")
    if data and 5 <= data[0] <= 12:
        return "rpc-reply"
    return "regular"


def vscode_messages(message: bytes) -> list[str] | None:
    """Each PersistentProtocol message in one websocket message, named (:func:`vscode_call` for
    Regular ones), or None if it is not that framing."""
    names, offset = [], 0
    while offset < len(message):
        header = message[offset : offset + VSCODE_HEADER_LENGTH]
        if len(header) < VSCODE_HEADER_LENGTH:
            return None
        end = offset + VSCODE_HEADER_LENGTH + int.from_bytes(header[9:13], "big")
        if header[0] == VSCODE_REGULAR:
            names.append(vscode_call(message[offset + VSCODE_HEADER_LENGTH : end]))
        elif header[0] in VSCODE_TYPE_NAMES:
            names.append(VSCODE_TYPE_NAMES[header[0]])
        else:
            return None
        offset = end
    return names


def _background(name: str, background: frozenset[str]) -> bool:
    if name in background:
        return True
    channel = name.partition(".")[0]
    return name.startswith("ipc:") and channel in background


def vscode_message_is_use(
    message: Message, background: frozenset[str] = VSCODE_BACKGROUND_CALLS
) -> bool:
    """A websocket message from a VS Code window is use when it holds a request the window did
    not make by itself: an RPC call to the extension host (an edit, a save, a command) or an IPC
    call to the server (terminal input, file operations), not in ``background``
    (:data:`VSCODE_BACKGROUND_CALLS`). A message that is not PersistentProtocol framing, or a
    Regular message that is neither RPC nor IPC, counts: nothing unknown may make a used server
    look idle."""
    if isinstance(message, str):
        return True
    names = vscode_messages(message)
    if names is None:
        return True
    return any(
        name == "regular"
        or (name.startswith(("rpc:", "ipc:")) and not _background(name, background))
        for name in names
    )


# -- Streamlit: BackMsg protobufs ----------------------------------------------------------------

STREAMLIT_USE_FIELDS = frozenset({5, 6, 7, 11, 16, 19})
"""BackMsg's ``type`` fields a person causes: clear_cache (5), set_run_on_save (6), stop_script
(7), rerun_script (11: a widget changed, or the page was opened), file_urls_request (16: an
upload), backend_operation_request (19). Not: load_git_info (12), the debug messages (14, 15),
app_heartbeat (17), which an open tab sends by itself."""


def protobuf_fields(data: bytes) -> set[int] | None:
    """The top-level field numbers of a protobuf message, or None if it is not one."""
    fields, offset = set(), 0
    try:
        while offset < len(data):
            tag, offset = varint(data, offset)
            number, wire = tag >> 3, tag & 7
            if wire == 0:
                _, offset = varint(data, offset)
            elif wire == 1:
                offset += 8
            elif wire == 2:
                length, offset = varint(data, offset)
                offset += length
            elif wire == 5:
                offset += 4
            else:
                return None
            if number == 0 or offset > len(data):
                return None
            fields.add(number)
    except ValueError:
        return None
    return fields


def streamlit_message_is_use(message: Message) -> bool:
    """A BackMsg that reruns, stops or changes the app is use; its heartbeat is not. A message
    that is no protobuf is counted (nothing unknown may make a used server look idle)."""
    if isinstance(message, str):
        return True
    fields = protobuf_fields(message)
    return fields is None or bool(fields & STREAMLIT_USE_FIELDS)


# -- Desktop: RFB (VNC) client messages through noVNC's websocket --------------------------------

RFB_KEY_EVENT, RFB_POINTER_EVENT, RFB_CLIENT_CUT_TEXT = 4, 5, 6
RFB_INPUT = frozenset({RFB_KEY_EVENT, RFB_POINTER_EVENT, RFB_CLIENT_CUT_TEXT})


def _rfb_length(message: bytes, offset: int) -> int | None:
    """The length of the RFB client message at ``offset`` (RFC 6143 and the extensions noVNC
    sends), or None when the type is unknown or the message is cut short."""
    kind, rest = message[offset], message[offset:]

    def counted(fixed: int, count_at: slice, each: int) -> int | None:
        if len(rest) < fixed:
            return None
        return fixed + each * int.from_bytes(rest[count_at], "big")

    lengths: dict[int, Callable[[], int | None]] = {
        0: lambda: 20,  # SetPixelFormat
        2: lambda: counted(4, slice(2, 4), 4),  # SetEncodings
        3: lambda: 10,  # FramebufferUpdateRequest
        4: lambda: 8,  # KeyEvent
        5: lambda: 6,  # PointerEvent
        6: lambda: counted(8, slice(4, 8), 1),  # ClientCutText
        150: lambda: 10,  # EnableContinuousUpdates
        248: lambda: counted(9, slice(8, 9), 1),  # ClientFence
        251: lambda: counted(8, slice(6, 7), 16),  # SetDesktopSize
        255: lambda: 12,  # QEMU extended key event
    }
    length = lengths.get(kind, lambda: None)()
    return length if length is not None and length <= len(rest) else None


def rfb_message_types(message: bytes) -> list[int] | None:
    """The RFB client message types in one websocket message (noVNC sends whole messages),
    or None when it is not a sequence of them (the handshake: version, security, ClientInit)."""
    types, offset = [], 0
    while offset < len(message):
        length = _rfb_length(message, offset)
        if length is None:
            return None
        types.append(message[offset])
        offset += length
    return types


def rfb_message_is_use(message: Message) -> bool:
    """Key, pointer and clipboard events are use; framebuffer update requests (sent after each
    screen update), encodings, pixel formats, fences, resizes and the handshake (which an open
    tab sends by itself) are not."""
    if isinstance(message, str):
        return False
    types = rfb_message_types(message)
    return bool(types) and bool(RFB_INPUT.intersection(types))


def any_message_is_use(message: Message) -> bool:
    """For proxied programs the platform knows no protocol of: every client message counts."""
    return True


PROXY_PROTOCOLS: dict[str, Callable[[Message], bool]] = {
    "vscode": vscode_message_is_use,
    "streamlit": streamlit_message_is_use,
    "rfb": rfb_message_is_use,
    "any": any_message_is_use,
}
"""Classifier by protocol name, as ``WorkspaceActivity.proxy_protocols`` names them."""
