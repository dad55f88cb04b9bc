"""Pods isolated like containers, when the kubelet runs as root: namespaces, users, mounts.

Per pod, a sandbox (sandbox_helper.py ``pod``) holds new network, PID, IPC and UTS namespaces;
its network gets a veth and the pod IP (podnet.py) and the host services the pod is given are
forwarded in (forward.py). Per container, sandbox_helper.py ``enter`` joins them and gives the
process its own mount namespace built from a *plan* this module computes:

- private tmpfs on ``/tmp``, ``/var/tmp`` and ``/dev/shm``, and the pod's ``/etc/hosts``,
  ``/etc/hostname`` and ``/etc/resolv.conf``;
- *masks* (empty tmpfs) over the kubelet's state directory, the private paths the kubelet is
  given (the platform's state) and every directory on the way to a mount that others may not
  search (such as ``/root``), so no pod sees another pod's volumes or the platform's secrets;
- *binds* of the container's own volumes back at their local paths (read-only where the mount
  says so; a mount inside ``/tmp``, ``/var/tmp`` or ``/dev/shm`` at its mount path too) and, read-only, of the runtime it needs from behind such directories (the Python
  installation a virtualenv links to, the prefixes of its ``PATH``);
- the container's user, groups and capabilities (security.py), then its command.

Without root (or without namespace support) the kubelet runs pods as plain processes instead;
docs/devcluster.md says what stays shared then.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import functools
import json
import logging
import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .. import procs
from .containers import Mount, ProcessSpec
from .forward import LoopbackForwarder
from .podnet import (
    NamespaceAddresses,
    host_side_commands,
    pod_side_commands,
    route_command,
    veth_name,
)
from .security import Identity
from .volumes import PodLayout

log = logging.getLogger(__name__)

HELPER = Path(__file__).with_name("sandbox_helper.py")
PRIVATE_DIRS = ("/tmp", "/var/tmp", "/dev/shm")
_F_SETPIPE_SZ = 1031
_PLAN_PIPE_BYTES = 1024 * 1024
_SANDBOX_START_SECONDS = 10.0
#: how long the kubelet waits for a destroyed pod's processes to be gone (they die with SIGKILL)
_SANDBOX_EXIT_SECONDS = 30.0


class SandboxError(Exception):
    """The pod's sandbox could not be created (the pod fails with FailedCreatePodSandBox)."""


@functools.cache
def unavailable_reason() -> str | None:
    """Why pods cannot be isolated on this machine, or None when they can (probed once)."""
    if os.geteuid() != 0:
        return "the kubelet does not run as root"
    for program in ("ip", "nsenter"):
        if not _which(program):
            return f"`{program}` (iproute2/util-linux) is not installed"
    probe = subprocess.run(
        [sys.executable, "-I", "-c", _PROBE],
        capture_output=True,
        text=True,
        check=False,
        start_new_session=True,
    )
    if probe.returncode != 0:
        return f"the kernel refuses new namespaces: {probe.stderr.strip() or probe.returncode}"
    return None


_PROBE = """
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
flags = 0x40000000 | 0x20000000 | 0x08000000 | 0x04000000 | 0x00020000
if libc.unshare(flags) != 0:
    sys.exit(os.strerror(ctypes.get_errno()))
"""


@functools.cache
def _which(program: str) -> str | None:
    """The program's path (the sbin directories included, which a user's PATH may lack)."""
    return shutil.which(program, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")


def primary_gid(uid: int) -> int | None:
    """The user's group in this machine's passwd database (the "image" pods run from)."""
    try:
        return pwd.getpwuid(uid).pw_gid
    except KeyError:
        return None


# -- plans (pure) --------------------------------------------------------------------------
@dataclass(frozen=True)
class Bind:
    source: str
    target: str
    read_only: bool = False


def _searchable(mode: int) -> bool:
    return bool(mode & stat.S_IXOTH)


def closed_ancestor(path: str, mode_of: Callable[[str], int | None]) -> str | None:
    """The outermost directory above ``path`` that others may not search, if any."""
    parts = Path(path).parts
    for depth in range(2, len(parts)):
        ancestor = str(Path(*parts[:depth]))
        mode = mode_of(ancestor)
        if mode is not None and not _searchable(mode):
            return ancestor
    return None


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def masks_for(
    hidden: Iterable[str], targets: Iterable[str], mode_of: Callable[[str], int | None]
) -> list[str]:
    """Directories to cover with an empty tmpfs: the hidden ones and the closed ancestors of
    the targets, outermost only (a mask inside another is already covered)."""
    wanted = {str(Path(h)) for h in hidden}
    wanted |= {a for t in targets if (a := closed_ancestor(t, mode_of))}
    ordered = sorted(wanted, key=lambda p: (len(Path(p).parts), p))
    kept: list[str] = []
    for path in ordered:
        if not any(_within(path, outer) for outer in kept):
            kept.append(path)
    return kept


def runtime_prefixes(search_path: str, interpreter: Sequence[str]) -> list[str]:
    """What a container needs to run the platform's programs: the interpreter's prefixes and the
    prefix (parent) of each ``PATH`` directory, resolved (pure but for ``realpath``)."""
    prefixes = [os.path.realpath(p) for p in interpreter]
    for entry in search_path.split(os.pathsep):
        if entry and os.path.isdir(entry):
            prefixes.append(os.path.dirname(os.path.realpath(entry)))
    unique: list[str] = []
    for prefix in prefixes:
        if prefix not in ("/", "") and prefix not in unique:
            unique.append(prefix)
    return unique


def _mode_of(path: str) -> int | None:
    try:
        return os.stat(path).st_mode
    except OSError:
        return None


@dataclass(frozen=True)
class MountView:
    """What one container sees of this machine's filesystem."""

    masks: tuple[str, ...]
    binds: tuple[Bind, ...]


def mount_view(
    spec: ProcessSpec,
    mounts: Sequence[Mount],
    *,
    layout: PodLayout,
    hidden: Sequence[str],
    interpreter: Sequence[str],
    mode_of: Callable[[str], int | None] = _mode_of,
) -> MountView:
    """The container's masks and binds (see the module docstring)."""
    binds = [Bind(str(m.local), str(m.local), m.read_only) for m in mounts]
    # a mount inside a private directory is also bound at its own path, on the container's own
    # tmpfs (nothing of the host changes): programs that use a fixed path there find the pod's
    # volume, e.g. X11's /tmp/.X11-unix shared between a desktop and its GUI sidecars
    binds += [
        Bind(str(m.local), m.mount_path, m.read_only)
        for m in mounts
        if any(_within(m.mount_path, d) and m.mount_path != d for d in PRIVATE_DIRS)
    ]
    if not any(_within(str(spec.env.get("HOME", "")), b.target) for b in binds):
        binds.append(Bind(str(layout.home_dir), str(layout.home_dir)))
    for name in ("hosts", "hostname", "resolv.conf"):
        binds.append(Bind(str(layout.etc_dir / name), f"/etc/{name}", read_only=True))
    exposed = []
    for prefix in runtime_prefixes(spec.env.get("PATH", ""), interpreter):
        if any(_within(h, prefix) for h in hidden):
            log.warning("not exposing %s to pods: it holds private state", prefix)
            continue
        if closed_ancestor(prefix, mode_of) is not None:
            exposed.append(Bind(prefix, prefix, read_only=True))
    binds += exposed
    targets = [b.target for b in binds if b.target == b.source]
    masks = masks_for(hidden, targets, mode_of)
    binds.sort(key=lambda b: len(Path(b.target).parts))
    return MountView(tuple(masks), tuple(binds))


def container_plan(
    spec: ProcessSpec,
    identity: Identity,
    view: MountView | None,
    *,
    sandbox_pid: int,
    argv: Sequence[str] | None = None,
    tty: bool = False,
    join_mounts_of: int | None = None,
) -> dict:
    """The JSON plan ``sandbox_helper.py enter`` executes (pure)."""
    return {
        "sandbox_pid": sandbox_pid,
        "join_mounts_of": join_mounts_of,
        "private_dirs": list(PRIVATE_DIRS),
        "masks": list(view.masks) if view else [],
        "binds": [b.__dict__ for b in view.binds] if view else [],
        "uid": identity.uid,
        "gid": identity.gid,
        "groups": list(identity.groups),
        "capabilities": None if identity.capabilities is None else sorted(identity.capabilities),
        "no_new_privs": identity.no_new_privs,
        "argv": list(argv if argv is not None else spec.argv),
        "env": dict(spec.env),
        "cwd": str(spec.cwd),
        "tty": tty,
    }


def hosts_file(ip: str, hostname: str) -> str:
    """The pod's /etc/hosts, as the kubelet writes it."""
    return (
        "# Kubernetes-managed hosts file.\n"
        "127.0.0.1\tlocalhost\n"
        "::1\tlocalhost ip6-localhost ip6-loopback\n"
        f"{ip}\t{hostname}\n"
    )


RESOLV_CONF = (
    "# devcluster pods have no DNS server: names resolve from /etc/hosts only\n"
    "options timeout:1 attempts:1\n"
)


# -- running it ----------------------------------------------------------------------------
@dataclass
class HelperCommand:
    """How to start ``sandbox_helper.py enter``: its argv and the pipe ends it inherits."""

    argv: list[str]
    pass_fds: tuple[int, ...]
    #: read end of the pipe on which the helper reports the container's start, if asked
    started: int | None = None

    def close_child_ends(self) -> None:
        """Once the helper runs, the parent drops its copies of the child's ends."""
        for fd in self.pass_fds:
            os.close(fd)


def helper_command(plan: dict, *, report_start: bool = False) -> HelperCommand:
    """The command for ``enter``, with a pipe holding the plan (and one reporting the start)."""
    read, write = os.pipe()
    try:
        data = _json(plan)
        if len(data) > 65536:
            fcntl.fcntl(write, _F_SETPIPE_SZ, _PLAN_PIPE_BYTES)
        if len(data) > _PLAN_PIPE_BYTES:
            raise SandboxError(f"the container's plan is too large ({len(data)} bytes)")
        os.write(write, data)
    except BaseException:
        os.close(read)
        raise
    finally:
        os.close(write)
    argv = [sys.executable, "-I", str(HELPER), "enter", str(read)]
    if not report_start:
        return HelperCommand(argv, (read,))
    started_read, started_write = os.pipe()
    return HelperCommand([*argv, str(started_write)], (read, started_write), started_read)


async def container_started(started: int) -> int | None:
    """The container's host PID once it is about to exec its command; None if its setup failed."""

    def read() -> bytes:
        with os.fdopen(started, "rb") as pipe:
            return pipe.read()

    pid, ready = None, False
    for line in (await asyncio.wait_for(asyncio.to_thread(read), _SANDBOX_START_SECONDS)).split(
        b"\n"
    ):
        if line.startswith(b"pid "):
            pid = int(line[4:])
        ready = ready or line == b"ready"
    return pid if ready else None


def _json(plan: dict) -> bytes:
    return json.dumps(plan).encode()


async def _ip(
    args: Sequence[str], *, batch: str | None = None, netns_pid: int | None = None
) -> None:
    ip = _which("ip") or "ip"
    argv = [ip, *args] if batch is None else [ip, "-batch", "-"]
    if netns_pid is not None:
        argv = [_which("nsenter") or "nsenter", f"--net=/proc/{netns_pid}/ns/net", *argv]
    result = await asyncio.to_thread(
        subprocess.run, argv, input=(batch or "").encode(), capture_output=True,
        start_new_session=True, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        raise SandboxError(f"{' '.join(argv)}: {result.stderr.decode(errors='replace').strip()}")


class PodSandbox:
    """One pod's namespaces (held by its sandbox process), network and forwards."""

    def __init__(self, layout: PodLayout, process: procs.ManagedProcess, init_pid: int):
        self.layout = layout
        self.process = process
        self.init_pid = init_pid
        self.ip = ""
        self.veth = ""
        self.forwarder: LoopbackForwarder | None = None

    @classmethod
    async def create(cls, layout: PodLayout, hostname: str) -> PodSandbox:
        layout.pod_dir.mkdir(parents=True, exist_ok=True)
        read, write = os.pipe()
        try:
            process = procs.ManagedProcess(
                [sys.executable, "-I", str(HELPER), "pod", hostname, str(os.getpid()), str(write)],
                name=f"sandbox {layout.namespace}/{layout.pod}",
                log_path=layout.pod_dir / "sandbox.log",
                pass_fds=(write,),
            )
        finally:
            os.close(write)
        try:
            with os.fdopen(read, "rb") as ready:
                line = await asyncio.wait_for(
                    asyncio.to_thread(ready.readline), _SANDBOX_START_SECONDS
                )
        except BaseException:
            await process.astop(0)
            raise
        if not line.strip().isdigit():
            await process.astop(0)
            raise SandboxError(f"the pod sandbox did not start: {process.log_tail(5).strip()}")
        return cls(layout, process, int(line))

    @property
    def netns(self) -> str:
        return f"/proc/{self.init_pid}/ns/net"

    async def connect(self, addresses: NamespaceAddresses) -> str:
        """Give the pod its veth and an IP (claiming a free one); return the IP."""
        self.veth = veth_name(self.layout.uid)
        await _ip(["link", "add", self.veth, "type", "veth", "peer", "name", "eth0",
                   "netns", str(self.init_pid)])  # fmt: skip
        await _ip([], batch=host_side_commands(self.veth))
        for ip in addresses.candidates():
            try:
                await _ip(route_command(ip, self.veth))
            except SandboxError as exc:
                if "File exists" in str(exc):
                    continue  # another pod on this machine has it
                raise
            self.ip = ip
            break
        else:
            raise SandboxError("no free pod IP left in the pod network")
        await _ip([], batch=pod_side_commands(self.ip), netns_pid=self.init_pid)
        return self.ip

    async def forward(self, ports: Iterable[int]) -> None:
        """Make the host's 127.0.0.1 ``ports`` reachable on the pod's own 127.0.0.1."""
        self.forwarder = await LoopbackForwarder.start(self.netns, ports)

    def write_etc(self, hostname: str) -> None:
        etc = self.layout.etc_dir
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "hosts").write_text(hosts_file(self.ip, hostname))
        (etc / "hostname").write_text(hostname + "\n")
        (etc / "resolv.conf").write_text(RESOLV_CONF)

    async def destroy(self) -> None:
        """End the sandbox: every process of the pod dies with its PID 1; the veth goes too."""
        if self.forwarder is not None:
            await self.forwarder.close()
            self.forwarder = None
        self.process.signal_group(signal.SIGKILL)
        await self.process.astop(0)
        # PID 1 finishes exiting only once the kernel has killed and reaped every process of
        # the pod (it waits for them, in state S): then nothing of the pod is left.
        try:
            await procs.wait_for(
                lambda: procs.has_exited(self.init_pid),
                timeout=_SANDBOX_EXIT_SECONDS,
                what=f"the pod {self.layout.namespace}/{self.layout.pod}'s processes to exit",
            )
        except procs.WaitTimeout as exc:
            log.warning("kubelet: %s", exc)
        if self.veth:
            with contextlib.suppress(SandboxError):
                await _ip(["link", "del", self.veth])  # usually gone with the namespace already


class Isolation:
    """The kubelet-wide side: which paths pods never see, and the pod address space."""

    def __init__(self, state_dir: Path, private_paths: Iterable[Path] = ()):
        self.hidden = [str(Path(state_dir).resolve())] + [
            str(Path(p).resolve()) for p in private_paths
        ]
        self.addresses = NamespaceAddresses(_host_routes())
        self.interpreter = (sys.base_prefix, sys.prefix)

    def view(self, spec: ProcessSpec, mounts: Sequence[Mount], layout: PodLayout) -> MountView:
        return mount_view(
            spec, mounts, layout=layout, hidden=self.hidden, interpreter=self.interpreter
        )


def _host_routes() -> list[str]:
    """The host's IPv4 routes (``dest/len``) from /proc/net/route."""
    routes = []
    try:
        lines = Path("/proc/net/route").read_text().splitlines()[1:]
    except OSError:
        return routes
    for line in lines:
        fields = line.split()
        if len(fields) >= 8:
            dest = int(fields[1], 16).to_bytes(4, "little")
            mask = bin(int(fields[7], 16)).count("1")
            routes.append(f"{'.'.join(map(str, dest))}/{mask}")
    return routes
