"""``pods/exec`` over WebSockets, in the Kubernetes remote-command channel protocols.

Every message carries one channel: 0 stdin, 1 stdout, 2 stderr, 3 error (a ``v1.Status`` when
the command ends), 4 resize (``{"Width": w, "Height": h}``). ``v4.channel.k8s.io`` sends the
channel as the first byte of a binary message; ``v4.base64.channel.k8s.io`` as an ASCII digit
before base64 text; ``v5.channel.k8s.io`` adds message ``[255, channel]``, "this channel is
closed" (how a client ends stdin).

The real server differs by protocol in one more way, kept here: for v4 it proxies the kubelet's
answer, so a container that is not running fails the handshake (500, plain text); for v5 its
stream translator accepts the WebSocket first and reports the failure on the error channel.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging

from aiohttp import WSMsgType, web

from . import errors
from .nodeapi import (
    ExecOptions,
    ExecSession,
    ExecStartFailed,
    NodeStreamError,
    NodeStreams,
    command_text,
)
from .streamtarget import no_kubelet, pick_container

log = logging.getLogger(__name__)

V5 = "v5.channel.k8s.io"
V4 = "v4.channel.k8s.io"
V4_BASE64 = "v4.base64.channel.k8s.io"
PROTOCOLS = (V5, V4, V4_BASE64)
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
TRUE_VALUES = ("true", "True", "1")
# how long output may still arrive after the command exited (a background child holding it)
_DRAIN_SECONDS = 1.0
_READ_BYTES = 32 * 1024


# pure: options, protocol, frames, status ---------------------------------------------------
def exec_options(query) -> ExecOptions:
    command = tuple(query.getall("command", []))
    if not command:
        raise errors.bad_request("you must specify at least 1 command")
    flag = lambda name, default: query.get(name, default) in TRUE_VALUES  # noqa: E731
    tty = flag("tty", "false")
    options = ExecOptions(
        command=command,
        stdin=flag("stdin", "false"),
        stdout=flag("stdout", "true"),
        stderr=flag("stderr", "true") and not tty,  # a terminal has one output stream
        tty=tty,
    )
    if not (options.stdin or options.stdout or options.stderr):
        raise errors.bad_request("you must specify at least 1 of stdin, stdout, stderr")
    return options


def choose_protocol(header: str | None) -> str | None:
    """The first protocol the client offers that this server speaks."""
    offered = [p.strip() for p in (header or "").split(",") if p.strip()]
    return next((p for p in offered if p in PROTOCOLS), None)


def encode_frame(protocol: str, channel: int, data: bytes) -> bytes | str:
    if protocol == V4_BASE64:
        return str(channel) + base64.b64encode(data).decode()
    return bytes([channel]) + data


def decode_frame(protocol: str, msg_type: WSMsgType, data: bytes | str) -> tuple[int, bytes] | None:
    """(channel, payload) of a client message; None for an empty or undecodable one."""
    if protocol == V4_BASE64:
        text = data.decode() if isinstance(data, bytes) else data
        if not text or not text[0].isdigit():
            return None
        try:
            return int(text[0]), base64.b64decode(text[1:])
        except ValueError:
            return None
    raw = data if isinstance(data, bytes) else data.encode()
    if not raw:
        return None
    if msg_type == WSMsgType.TEXT and isinstance(data, str):
        return ord(data[0]), data[1:].encode()
    return raw[0], raw[1:]


def success_status() -> dict:
    return {"metadata": {}, "status": "Success"}


def exit_status(command: tuple[str, ...], code: int, protocol: str) -> dict:
    """The Status of a command that exited with ``code`` != 0 (what clients read exit codes from)."""
    body = {
        "metadata": {},
        "status": "Failure",
        "message": f"command terminated with non-zero exit code: error executing command "
        f"{command_text(command)}, exit code {code}",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }
    if protocol == V5:
        body["code"] = 500  # the stream translator's Status carries the HTTP code
    return body


def internal_error_status(message: str) -> dict:
    return {
        "metadata": {},
        "status": "Failure",
        "message": f"Internal error occurred: {message}",
        "reason": "InternalError",
        "details": {"causes": [{"message": message}]},
        "code": 500,
    }


# the stream ------------------------------------------------------------------------------
async def serve_exec(
    request: web.Request, pod: dict, streams: NodeStreams | None
) -> web.StreamResponse:
    container = pick_container(pod, request.query.get("container"))
    options = exec_options(request.query)
    name = pod["metadata"]["name"]
    if not pod.get("spec", {}).get("nodeName"):
        raise errors.bad_request(f"pod {name} does not have a host assigned")
    if not web.WebSocketResponse(protocols=PROTOCOLS).can_prepare(request).ok:
        raise errors.bad_request("Upgrade request required")
    protocol = choose_protocol(request.headers.get("Sec-WebSocket-Protocol"))
    if protocol is None:
        raise errors.bad_request(
            f"unable to upgrade: the client offers none of the supported protocols {', '.join(PROTOCOLS)}"
        )
    if streams is None:
        raise no_kubelet(pod)
    session: ExecSession | None = None
    failure: str | None = None
    try:
        session = await streams.exec(pod, container, options)
    except ExecStartFailed as exc:
        failure = f"error executing command in container: {exc.message}"
    except NodeStreamError as exc:
        if protocol != V5:
            return web.Response(status=exc.status, text=exc.message, content_type="text/plain")
        failure = f"unable to upgrade connection: {exc.message}"
    ws = web.WebSocketResponse(protocols=(protocol,))
    await ws.prepare(request)
    try:
        if session is None:
            await _send(ws, protocol, ERROR, json.dumps(internal_error_status(failure)).encode())
        else:
            await _bridge(ws, protocol, session, options)
    except (ConnectionResetError, ConnectionError):
        pass
    finally:
        if session is not None:
            await session.kill()
        await ws.close()
    return ws


async def _send(ws: web.WebSocketResponse, protocol: str, channel: int, data: bytes) -> None:
    frame = encode_frame(protocol, channel, data)
    if isinstance(frame, str):
        await ws.send_str(frame)
    else:
        await ws.send_bytes(frame)


async def _bridge(ws: web.WebSocketResponse, protocol: str, session: ExecSession,
                  options: ExecOptions) -> None:  # fmt: skip
    """Relay until the command exits, then send its status on the error channel."""
    pumps = [
        asyncio.create_task(_pump(ws, protocol, channel, reader))
        for channel, reader in ((STDOUT, session.stdout), (STDERR, session.stderr))
        if reader is not None
    ]
    client = asyncio.create_task(_from_client(ws, protocol, session))
    exited = asyncio.create_task(session.wait())
    try:
        done, _ = await asyncio.wait({exited, client}, return_when=asyncio.FIRST_COMPLETED)
        if exited not in done:
            return  # the client went away: the session is killed by the caller
        if pumps:
            await asyncio.wait(pumps, timeout=_DRAIN_SECONDS)
        code = exited.result()
        status = success_status() if code == 0 else exit_status(options.command, code, protocol)
        await _send(ws, protocol, ERROR, json.dumps(status).encode())
    finally:
        for task in (*pumps, client, exited):
            task.cancel()
        await asyncio.gather(*pumps, client, exited, return_exceptions=True)


async def _pump(
    ws: web.WebSocketResponse, protocol: str, channel: int, reader: asyncio.StreamReader
) -> None:
    while data := await reader.read(_READ_BYTES):
        await _send(ws, protocol, channel, data)


async def _from_client(ws: web.WebSocketResponse, protocol: str, session: ExecSession) -> None:
    """Apply the client's stdin, close and resize messages; ends when the client disconnects."""
    async for msg in ws:
        if msg.type not in (WSMsgType.BINARY, WSMsgType.TEXT):
            continue
        frame = decode_frame(protocol, msg.type, msg.data)
        if frame is None:
            continue
        channel, payload = frame
        if channel == STDIN and payload:
            await session.write_stdin(payload)
        elif channel == CLOSE and protocol == V5 and payload[:1] == bytes([STDIN]):
            session.close_stdin()
        elif channel == RESIZE:
            with contextlib.suppress(ValueError, TypeError, AttributeError):
                size = json.loads(payload)
                session.resize(int(size.get("Width", 0)), int(size.get("Height", 0)))
