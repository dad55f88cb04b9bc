"""A command run in a running container for ``pods/exec``: pipes, or a terminal with ``tty``.

The command runs in its own process group (stopped as one when the client goes away). With a
terminal the command's stdin, stdout and stderr are one pty whose size the client sets; the
terminal's output arrives on stdout, as with a real runtime.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import signal
import struct
import subprocess
import termios
from collections.abc import Callable, Mapping, Sequence

from ..nodeapi import ExecOptions


def exit_code(returncode: int) -> int:
    """A wait status as a container exit code (a signal N is 128+N, as in a shell)."""
    return 128 - returncode if returncode < 0 else returncode


class ProcessExec:
    """One running exec session (see :class:`..nodeapi.ExecSession`)."""

    def __init__(self, popen: subprocess.Popen, master: int | None = None):
        self.popen = popen
        self.on_close: Callable[[ProcessExec], None] | None = None
        """Called once :meth:`kill` released the session."""
        self._master = master
        self._transports: list[asyncio.BaseTransport] = []
        self._stdin: asyncio.WriteTransport | None = None
        self.stdout: asyncio.StreamReader | None = None
        self.stderr: asyncio.StreamReader | None = None
        self._exit: asyncio.Future | None = None

    @classmethod
    async def start(
        cls,
        argv: Sequence[str],
        options: ExecOptions,
        *,
        env: Mapping[str, str],
        cwd: str | None,
        pass_fds: Sequence[int] = (),
    ) -> ProcessExec:
        session = cls(*_spawn(argv, options, env=env, cwd=cwd, pass_fds=pass_fds))
        await session._connect(options)
        return session

    async def _connect(self, options: ExecOptions) -> None:
        loop = asyncio.get_running_loop()
        if self._master is not None:
            self.stdout = self._read_terminal() if options.stdout else None
            if options.stdin:
                writer = os.fdopen(os.dup(self._master), "wb", buffering=0)
                self._stdin, _ = await loop.connect_write_pipe(asyncio.Protocol, writer)
                self._transports.append(self._stdin)
        else:
            self.stdout = await self._reader(self.popen.stdout)
            self.stderr = await self._reader(self.popen.stderr)
            if self.popen.stdin is not None:
                self._stdin, _ = await loop.connect_write_pipe(asyncio.Protocol, self.popen.stdin)
                self._transports.append(self._stdin)
        self._exit = asyncio.ensure_future(asyncio.to_thread(self.popen.wait))

    async def _reader(self, pipe) -> asyncio.StreamReader | None:
        if pipe is None:
            return None
        reader = asyncio.StreamReader()
        transport, _ = await asyncio.get_running_loop().connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), pipe
        )
        self._transports.append(transport)
        return reader

    def _read_terminal(self) -> asyncio.StreamReader:
        """The terminal's output; EOF when the last process holding it exits (EIO on Linux)."""
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        master = self._master
        os.set_blocking(master, False)

        def readable() -> None:
            try:
                data = os.read(master, 65536)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if data:
                reader.feed_data(data)
            else:
                loop.remove_reader(master)
                reader.feed_eof()

        loop.add_reader(master, readable)
        return reader

    async def write_stdin(self, data: bytes) -> None:
        if self._stdin is not None and not self._stdin.is_closing():
            self._stdin.write(data)

    def close_stdin(self) -> None:
        if self._stdin is None:
            return
        if self._master is not None:
            self._stdin.write(b"\x04")  # a terminal's end of file is Ctrl-D
        else:
            self._stdin.close()

    def resize(self, width: int, height: int) -> None:
        if self._master is not None:
            size = struct.pack("HHHH", max(height, 0), max(width, 0), 0, 0)
            with contextlib.suppress(OSError):
                fcntl.ioctl(self._master, termios.TIOCSWINSZ, size)

    async def wait(self) -> int:
        return exit_code(await asyncio.shield(self._exit))

    async def kill(self) -> None:
        """Stop the command and everything it started; release pipes and terminal."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        await asyncio.shield(self._exit)
        for transport in self._transports:
            transport.close()
        self._transports.clear()
        if self._master is not None:
            with contextlib.suppress(ValueError, RuntimeError):
                asyncio.get_running_loop().remove_reader(self._master)
            os.close(self._master)
            self._master = None
        if self.on_close is not None:
            self.on_close(self)
            self.on_close = None


def _spawn(
    argv, options: ExecOptions, *, env, cwd, pass_fds
) -> tuple[subprocess.Popen, int | None]:
    """The command's process, with pipes or (``tty``) a terminal whose master end is returned."""
    if options.tty:
        master, slave = os.openpty()
        stdio = {"stdin": slave, "stdout": slave, "stderr": slave}
    else:
        master = slave = None
        pipe = lambda wanted: subprocess.PIPE if wanted else subprocess.DEVNULL  # noqa: E731
        stdio = {"stdin": pipe(options.stdin), "stdout": pipe(options.stdout),
                 "stderr": pipe(options.stderr)}  # fmt: skip
    try:
        popen = subprocess.Popen(
            list(argv), env=dict(env), cwd=cwd, start_new_session=True,
            pass_fds=tuple(pass_fds), **stdio,
        )  # fmt: skip
    except BaseException:
        if master is not None:
            os.close(master)
        raise
    finally:
        if slave is not None:
            os.close(slave)
    return popen, master
