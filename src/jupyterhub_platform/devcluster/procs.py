"""Child processes that never outlive their owner, free ports, and condition waits.

Every process the local platform, the kubelet or a test starts runs in its own session (so its
own process group) and is stopped through that group: SIGTERM to the group, SIGKILL after a grace
period. Programs such as code-server or a VNC server spawn children that ignore their parent's
death; signalling the group is what leaves no orphans.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

_LOWEST_PORT = 10000


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now, below the ephemeral range when possible.

    The port is handed to another program that binds it later. Ports the OS picks for
    ``bind(0)`` come from the ephemeral range, which every outgoing connection draws from too,
    so under load one of them can take the port first; a random free port below that range
    only collides with another caller's random pick. A port this process handed out before is
    never handed out again: its program may not have bound it yet (a platform picks its hub's and
    its identity provider's ports before starting either).
    """
    low, _ = _ephemeral_range()
    candidates = random.sample(range(_LOWEST_PORT, low), 20) if low - _LOWEST_PORT > 1000 else []
    for port in candidates:
        if port in _HANDED_OUT:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            _HANDED_OUT.add(port)
            return port
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port = sock.getsockname()[1]
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


_HANDED_OUT: set[int] = set()


def port_is_open(host: str, port: int, timeout: float = 0.2) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class ManagedProcess:
    """A child process in its own process group, with its output in a log file."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        name: str,
        log_path: Path | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Path | str | None = None,
        capture: bool = False,
        pass_fds: Sequence[int] = (),
    ):
        """``capture``: stdout and stderr become pipes (``popen.stdout``/``popen.stderr``) for
        a caller that records them itself, instead of going to ``log_path``. ``pass_fds`` are
        inherited by the child (e.g. a pipe carrying its instructions)."""
        self.name = name
        self.argv = list(argv)
        self.log_path = None if capture else log_path
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = open(self.log_path, "ab", buffering=0)  # noqa: SIM115 - closed in stop()
        else:
            self._log = subprocess.DEVNULL
        self.popen = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if capture else self._log,
            stderr=subprocess.PIPE if capture else subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
            pass_fds=tuple(pass_fds),
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    def running(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of the log, for error messages."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def signal_group(self, sig: int) -> None:
        """Send ``sig`` to the whole process group (the child was made its leader)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    def stop(self, grace: float = 5.0) -> int | None:
        """SIGTERM the group, SIGKILL it after ``grace`` seconds; reap the child.

        The group is signalled even after the leader exited, since its children may live on.
        Descendants that left the group (JupyterHub's managed services and jupyter kernels run
        in sessions of their own) are taken stock of first and killed at the end if the
        program did not stop them itself.
        """
        family = descendants(self.pid)
        self.signal_group(signal.SIGTERM)
        try:
            self.popen.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
        self.signal_group(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=5)
        for process in family:
            process.kill()
        if self._log is not subprocess.DEVNULL:
            self._log.close()
            self._log = subprocess.DEVNULL
        return self.popen.returncode

    async def astop(self, grace: float = 5.0) -> int | None:
        """:meth:`stop` without blocking the event loop."""
        return await asyncio.to_thread(self.stop, grace)


class ProcessGroupSet:
    """Processes started together and stopped together, newest first."""

    def __init__(self) -> None:
        self._procs: list[ManagedProcess] = []

    def start(self, argv: Sequence[str], **kwargs) -> ManagedProcess:
        proc = ManagedProcess(argv, **kwargs)
        self._procs.append(proc)
        return proc

    def __iter__(self):
        return iter(self._procs)

    def forget(self, proc: ManagedProcess) -> None:
        """Drop a process that was stopped on its own (it is not stopped again)."""
        self._procs.remove(proc)

    def stop_all(self, grace: float = 5.0) -> None:
        while self._procs:
            self._procs.pop().stop(grace)


def _stat(pid: int | str) -> list[str] | None:
    """``/proc/<pid>/stat`` after the command name: state, ppid, ... (None: gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None


def has_exited(pid: int) -> bool:
    """Whether ``pid`` is gone or a zombie (works for processes that are not our children)."""
    stat = _stat(pid)
    return stat is None or stat[0] in ("Z", "X")


@dataclass(frozen=True)
class Descendant:
    """A process seen below ours; its start time tells it from a later one reusing the pid."""

    pid: int
    started: str

    def kill(self) -> None:
        stat = _stat(self.pid)
        if stat is not None and stat[19] == self.started and stat[0] not in ("Z", "X"):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(self.pid, signal.SIGKILL)


def descendants(pid: int) -> list[Descendant]:
    """Every live process below ``pid`` (children, grandchildren, ...), from /proc."""
    children: dict[int, list[Descendant]] = {}
    for entry in Path("/proc").iterdir():
        stat = _stat(entry.name) if entry.name.isdigit() else None
        if stat is not None and stat[0] not in ("Z", "X"):
            children.setdefault(int(stat[1]), []).append(Descendant(int(entry.name), stat[19]))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), ()):
            found.append(child)
            todo.append(child.pid)
    return found


class WaitTimeout(TimeoutError):
    """A condition was not met before its deadline."""


async def wait_for(
    condition: Callable[[], Awaitable[object] | object],
    *,
    timeout: float,
    interval: float = 0.05,
    what: str = "condition",
) -> object:
    """Poll ``condition`` until it returns something truthy; return that value.

    ``condition`` may be a plain or an async callable. Raises :class:`WaitTimeout` naming
    ``what`` when ``timeout`` seconds pass first.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
            result = await result
        if result:
            return result
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"timed out after {timeout:g}s waiting for {what}")
        await asyncio.sleep(interval)


class ProcessExited(RuntimeError):
    """A process we were waiting on exited; the message ends with its log."""


async def wait_serving(proc: ManagedProcess, url: str, *, timeout: float, what: str) -> None:
    """Wait until ``url`` answers 200; fail at once, with the end of its log, if ``proc`` exits."""
    import aiohttp  # the local platform's extra; imported here so procs needs nothing else

    async with aiohttp.ClientSession() as session:

        async def serving() -> bool:
            if not proc.running():
                raise ProcessExited(f"{what} exited ({proc.returncode}):\n{proc.log_tail(60)}")
            try:
                async with session.get(url) as resp:
                    return resp.status == 200
            except aiohttp.ClientError:
                return False

        await wait_for(serving, timeout=timeout, interval=0.1, what=what)
