"""The host's 127.0.0.1 services a namespaced pod needs, forwarded into its network namespace.

The hub API, the proxy and the API server listen on the host's 127.0.0.1, which inside a pod's
network namespace is the pod's own loopback. For each such port the pod is given (in its env),
the kubelet opens a listening socket on 127.0.0.1 *inside* the pod's namespace (a short-lived
thread joins the namespace to create it; the socket stays there) and relays every connection to
the same port on the host's 127.0.0.1. The pod keeps the URLs it was given, unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import re
import socket
import threading
from collections.abc import Iterable

log = logging.getLogger(__name__)

CLONE_NEWNET = 0x40000000
_LOOPBACK_URL = re.compile(r"(?:127\.0\.0\.1|localhost|\[::1\]):(\d{1,5})(?!\d)")
_BUFFER = 64 * 1024


def loopback_ports(values: Iterable[str]) -> set[int]:
    """Ports of host-loopback addresses (``127.0.0.1:P``, ``localhost:P``) in ``values`` (pure)."""
    return {
        int(m.group(1))
        for v in values
        for m in _LOOPBACK_URL.finditer(v)
        if 0 < int(m.group(1)) < 65536
    }


def _listen_in(netns: str, port: int) -> socket.socket:
    """A socket listening on 127.0.0.1:port in the network namespace at path ``netns``."""
    result: dict[str, object] = {}

    def create() -> None:
        try:
            fd = os.open(netns, os.O_RDONLY)
            try:
                if ctypes.CDLL(None, use_errno=True).setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), f"setns {netns}")
            finally:
                os.close(fd)
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", port))
            sock.listen(128)
            sock.setblocking(False)
            result["socket"] = sock
        except OSError as exc:
            result["error"] = exc

    # A thread of its own: it ends in the pod's namespace and takes nothing else there.
    thread = threading.Thread(target=create, name=f"netns listen {port}")
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]  # type: ignore[misc]
    return result["socket"]  # type: ignore[return-value]


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(_BUFFER):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        pass


class LoopbackForwarder:
    """Relays 127.0.0.1:P inside one pod's network namespace to the host's 127.0.0.1:P."""

    def __init__(self) -> None:
        self._servers: list[asyncio.base_events.Server] = []
        self._connections: set[asyncio.Task] = set()

    @classmethod
    async def start(cls, netns: str, ports: Iterable[int]) -> LoopbackForwarder:
        forwarder = cls()
        try:
            for port in sorted(set(ports)):
                sock = await asyncio.to_thread(_listen_in, netns, port)
                server = await asyncio.start_server(
                    lambda r, w, p=port: forwarder._relay(r, w, p), sock=sock
                )
                forwarder._servers.append(server)
        except BaseException:
            await forwarder.close()
            raise
        return forwarder

    async def _relay(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, port: int
    ) -> None:
        task = asyncio.current_task()
        self._connections.add(task)
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            writer.close()
            self._connections.discard(task)
            return
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            for w in (writer, up_writer):
                w.close()
            self._connections.discard(task)

    async def close(self) -> None:
        """Stop listening and cut every relayed connection (the sockets hold the namespace)."""
        for server in self._servers:
            server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        for server in self._servers:
            with contextlib.suppress(Exception):
                await server.wait_closed()
        self._servers.clear()
