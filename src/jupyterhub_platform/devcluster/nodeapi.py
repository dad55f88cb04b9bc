"""What the API server asks of the kubelet running a pod: its containers' logs and exec sessions.

A real API server reaches the node's kubelet over HTTPS (port 10250) for ``pods/log`` and
``pods/exec``; the devcluster runs its kubelet in the same process, so the API server calls it
through this interface instead. The API server checks what it checks (the container name, the
node binding); the kubelet checks what it knows (whether the container runs, has logs).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Protocol


class NodeStreamError(Exception):
    """The kubelet refuses the request; ``status`` is the HTTP status the client gets."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class ExecStartFailed(NodeStreamError):
    """The command cannot be started in the container; the client learns it on the stream's
    error channel (as InternalError), like from a real kubelet."""

    def __init__(self, message: str):
        super().__init__(500, message)


@dataclass(frozen=True)
class LogOptions:
    """``pods/log`` query parameters (PodLogOptions), already validated."""

    follow: bool = False
    previous: bool = False
    timestamps: bool = False
    tail_lines: int | None = None
    since_seconds: int | None = None
    since_time_ns: int | None = None
    limit_bytes: int | None = None


@dataclass(frozen=True)
class ExecOptions:
    """``pods/exec`` query parameters (PodExecOptions), already validated."""

    command: tuple[str, ...]
    stdin: bool = False
    stdout: bool = True
    stderr: bool = True
    tty: bool = False


class ExecSession(Protocol):
    """A command running in a container; output readers end at the command's exit."""

    stdout: asyncio.StreamReader | None
    stderr: asyncio.StreamReader | None

    async def write_stdin(self, data: bytes) -> None: ...

    def close_stdin(self) -> None: ...

    def resize(self, width: int, height: int) -> None: ...

    async def wait(self) -> int:
        """The exit code (128+N for a signal N)."""
        ...

    async def kill(self) -> None:
        """Stop the command and everything it started."""
        ...


class NodeStreams(Protocol):
    """The kubelet side of ``pods/log`` and ``pods/exec`` for the pods it runs."""

    def container_log(self, pod: dict, container: str, options: LogOptions) -> AsyncIterator[bytes]:
        """The log's bytes; raises :class:`NodeStreamError` before the first chunk if refused."""
        ...

    async def exec(self, pod: dict, container: str, options: ExecOptions) -> ExecSession: ...


def command_text(command: Sequence[str]) -> str:
    """A command as the kubelet quotes it in messages: ``[sh -c exit 3]``."""
    return "[" + " ".join(command) + "]"


def cri_timestamp(time_ns: int) -> str:
    """RFC 3339 with nanoseconds, UTC: ``2024-05-01T12:00:00.123456789Z``."""
    seconds, nanos = divmod(time_ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{nanos:09d}Z"


def parse_timestamp(text: str) -> int:
    """Nanoseconds since the epoch of an RFC 3339 time (any fraction length, ``Z`` or offset)."""
    text = text.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    fraction = 0
    if "." in text:
        head, rest = text.split(".", 1)
        digits = len(rest) - len(rest.lstrip("0123456789"))
        fraction = int((rest[:digits] + "000000000")[:9])
        text = head + rest[digits:]
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp()) * 1_000_000_000 + fraction
