"""Container logs kept as a real kubelet keeps them: the whole log, every line timestamped.

The kubelet reads each container's stdout and stderr from pipes and appends them to one file in
the CRI logging format (``<RFC3339Nano> <stream> <F|P> <content>``, F a full line, P a part of a
longer one), which is what ``pods/log`` serves: ``tailLines``, ``sinceSeconds``/``sinceTime``,
``timestamps``, ``limitBytes`` and ``follow`` (until the container's output ends).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from ..nodeapi import LogOptions, cri_timestamp, parse_timestamp

#: longest line kept in one entry; longer lines are split into partial (P) entries, as in CRI
MAX_LINE_BYTES = 16 * 1024
_READ_CHUNK = 64 * 1024


@dataclass(frozen=True)
class LogEntry:
    time_ns: int
    stream: str  # stdout | stderr
    partial: bool
    content: bytes

    def encode(self) -> bytes:
        tag = b"P" if self.partial else b"F"
        return b"%s %s %s %s\n" % (
            cri_timestamp(self.time_ns).encode(),
            self.stream.encode(),
            tag,
            self.content,
        )

    def output(self, timestamps: bool) -> bytes:
        """What ``pods/log`` prints for this entry."""
        prefix = cri_timestamp(self.time_ns).encode() + b" " if timestamps else b""
        return prefix + self.content + (b"" if self.partial else b"\n")


def decode_entry(line: bytes) -> LogEntry | None:
    """One file line (without its newline); None for a line that is not a CRI entry."""
    parts = line.split(b" ", 3)
    if len(parts) < 3 or parts[2] not in (b"F", b"P"):
        return None
    try:
        when = parse_timestamp(parts[0].decode())
    except ValueError:
        return None
    content = parts[3] if len(parts) == 4 else b""
    return LogEntry(when, parts[1].decode(errors="replace"), parts[2] == b"P", content)


def split_output(
    buffer: bytes, stream: str, now_ns: int, *, final: bool
) -> tuple[list[LogEntry], bytes]:
    """Entries for the complete lines in ``buffer`` and the rest still waiting for its newline.

    Lines longer than :data:`MAX_LINE_BYTES` become partial entries; with ``final`` (the stream
    ended) an unterminated rest becomes a partial entry too.
    """
    entries = []
    while True:
        newline = buffer.find(b"\n", 0, MAX_LINE_BYTES + 1)
        if newline >= 0:
            entries.append(LogEntry(now_ns, stream, False, buffer[:newline]))
            buffer = buffer[newline + 1 :]
        elif len(buffer) > MAX_LINE_BYTES:
            entries.append(LogEntry(now_ns, stream, True, buffer[:MAX_LINE_BYTES]))
            buffer = buffer[MAX_LINE_BYTES:]
        else:
            break
    if final and buffer:
        entries.append(LogEntry(now_ns, stream, True, buffer))
        buffer = b""
    return entries, buffer


def select_entries(entries: list[LogEntry], options: LogOptions, now_ns: int) -> list[LogEntry]:
    """The entries a (non-follow part of a) ``pods/log`` request shows (pure)."""
    since = options.since_time_ns
    if options.since_seconds is not None:
        since = now_ns - options.since_seconds * 1_000_000_000
    if since is not None:
        entries = [e for e in entries if e.time_ns >= since]
    if options.tail_lines is not None:
        entries = entries[-options.tail_lines :] if options.tail_lines else []
    return entries


class ContainerLog:
    """One container's log file: the kubelet pumps the process's pipes into it; readers follow."""

    def __init__(self, path: Path):
        self.path = path
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: BinaryIO | None = None
        self._changed = asyncio.get_running_loop().create_future()
        self._pump: asyncio.Task | None = None
        self.ended = asyncio.Event()
        """Set once every pipe reached end of file (the container's output is complete)."""

    def record(self, stdout, stderr) -> None:
        """Start appending the two pipes (file objects of a child's stdout/stderr)."""
        self._file = open(self.path, "ab", buffering=0)  # noqa: SIM115 - closed when the pump ends
        self._pump = asyncio.create_task(self._record(stdout, stderr), name=f"log {self.path}")

    def record_nothing(self) -> None:
        """The container never ran: its log is complete (and empty)."""
        self.path.touch()
        self.ended.set()

    async def close(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump

    async def _record(self, stdout, stderr) -> None:
        try:
            await asyncio.gather(self._pipe(stdout, "stdout"), self._pipe(stderr, "stderr"))
        finally:
            if self._file is not None:
                self._file.close()
                self._file = None
            self.ended.set()
            self._wake()

    async def _pipe(self, pipe, stream: str) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=2 * _READ_CHUNK)
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), pipe
        )
        buffer = b""
        try:
            while True:
                chunk = await reader.read(_READ_CHUNK)
                entries, buffer = split_output(
                    buffer + chunk, stream, time.time_ns(), final=not chunk
                )
                self._append(entries)
                if not chunk:
                    return
        finally:
            transport.close()

    def _append(self, entries: Iterable[LogEntry]) -> None:
        data = b"".join(e.encode() for e in entries)
        if data and self._file is not None:
            self._file.write(data)
            self._wake()

    def _wake(self) -> None:
        if not self._changed.done():
            self._changed.set_result(None)
        self._changed = asyncio.get_running_loop().create_future()

    def next_change(self) -> asyncio.Future:
        """Resolves at the next append (or the end of the output)."""
        return self._changed

    def entries(self) -> list[LogEntry]:
        return list(read_entries(self.path))

    def tail_text(self, lines: int) -> str:
        """The last ``lines`` lines of output, for termination messages."""
        text = b"".join(e.output(False) for e in self.entries()[-lines:])
        return text.decode(errors="replace").rstrip("\n")

    async def serve(self, options: LogOptions) -> AsyncIterator[bytes]:
        """The bytes ``pods/log`` sends: the selected entries, then (``follow``) new ones."""
        budget = options.limit_bytes
        change = self.next_change()
        data, offset = _read_from(self.path, 0)
        lines, rest = _complete_lines(data)
        entries = select_entries(
            [e for e in map(decode_entry, lines) if e is not None], options, time.time_ns()
        )
        chunk = b"".join(e.output(options.timestamps) for e in entries)
        while True:
            if chunk:
                if budget is not None:
                    chunk, budget = chunk[:budget], budget - len(chunk[:budget])
                yield chunk
                if budget == 0:
                    return
            if not options.follow or (
                self.ended.is_set() and not rest and _size(self.path) <= offset
            ):
                return
            if _size(self.path) <= offset:
                await change
            change = self.next_change()
            data, offset = _read_from(self.path, offset)
            lines, rest = _complete_lines(rest + data)
            chunk = b"".join(
                e.output(options.timestamps) for e in map(decode_entry, lines) if e is not None
            )


def read_entries(path: Path) -> Iterable[LogEntry]:
    data, _ = _read_from(path, 0)
    lines, _ = _complete_lines(data)
    return (e for e in map(decode_entry, lines) if e is not None)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _read_from(path: Path, offset: int) -> tuple[bytes, int]:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return b"", offset
    return data, offset + len(data)


def _complete_lines(data: bytes) -> tuple[list[bytes], bytes]:
    *lines, rest = data.split(b"\n")
    return lines, rest
