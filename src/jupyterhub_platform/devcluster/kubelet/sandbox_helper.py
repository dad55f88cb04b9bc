"""The kubelet's root helper: holds a pod's namespaces and starts containers inside them.

Run by path (``python -I sandbox_helper.py ...``), never imported by the platform: it uses only
the standard library and starts in milliseconds. Two commands:

``pod HOSTNAME KUBELET_PID READY_FD``
    The pod sandbox (Kubernetes' "pause" container): new network, PID, IPC and UTS namespaces,
    the pod's hostname, and a PID 1 that reaps orphans. It writes PID 1's host PID to READY_FD
    and waits.
    Both processes die with the kubelet (parent-death signal); when PID 1 dies the kernel kills
    every process of the pod, and the network namespace with its veth goes away.

``enter PLAN_FD [STARTED_FD]``
    One container (or one exec session): reads a JSON plan from the file descriptor, joins the
    sandbox's namespaces, and forks the container process, which gets its own mount namespace
    (private /tmp, the kubelet's state hidden, only its own volumes bound back, read-only where
    asked), drops to the container's user and capabilities and execs the command. An exec
    session joins the mount namespace of the running container instead. This process waits and
    exits with the container's status, so the kubelet sees an ordinary child. On STARTED_FD it
    reports ``pid <host PID>`` of the container process, which writes ``ready`` once its view is
    complete, just before it execs (the descriptor closes then, or at a failed setup).
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import json
import os
import signal
import socket
import sys
import termios

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
PR_SET_PDEATHSIG = 1
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
POD_NAMESPACES = (
    ("net", CLONE_NEWNET),
    ("ipc", CLONE_NEWIPC),
    ("uts", CLONE_NEWUTS),
    ("pid", CLONE_NEWPID),
)
# Linux capability numbers, in order (capability.h).
CAPABILITIES = (
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID",
    "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW",
    "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT",
    "SYS_ADMIN", "SYS_BOOT", "SYS_NICE", "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD",
    "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG",
    "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
)  # fmt: skip
#: exit status when the container could not be set up (like a runtime's "cannot run")
SETUP_FAILED = 128

_libc = ctypes.CDLL(None, use_errno=True)


class SetupError(Exception):
    pass


def _check(result: int, what: str) -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise SetupError(f"{what}: {os.strerror(code)}")


def _prctl(option: int, value: int) -> None:
    _check(_libc.prctl(option, ctypes.c_ulong(value), 0, 0, 0), f"prctl({option})")


def _mount(
    source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None
) -> None:
    encode = lambda v: None if v is None else v.encode()  # noqa: E731
    _check(
        _libc.mount(
            encode(source), encode(target), encode(fstype), ctypes.c_ulong(flags), encode(data)
        ),
        f"mount {source or fstype} on {target}",
    )


def _setns(fd: int, kind: int, what: str) -> None:
    _check(_libc.setns(fd, kind), f"joining the pod's {what} namespace")


# -- pod ---------------------------------------------------------------------------------
def pod(hostname: str, kubelet_pid: int, ready_fd: int) -> int:
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != kubelet_pid:
        return 1  # the kubelet is already gone
    _check(_libc.unshare(CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS), "unshare")
    socket.sethostname(hostname)
    alive_read, alive_write = os.pipe()  # open in this process for as long as it lives
    init = os.fork()
    if init == 0:
        os.close(alive_write)
        _pod_init(alive_read)
    os.close(alive_read)
    os.write(ready_fd, b"%d\n" % init)
    os.close(ready_fd)
    while True:
        try:
            _, status = os.waitpid(init, 0)
            return os.waitstatus_to_exitcode(status)
        except InterruptedError:
            continue


def _pod_init(parent_alive: int) -> None:
    """PID 1 of the pod: reaps orphans until the kubelet ends the sandbox."""
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    # (getppid() is 0 in a new PID namespace: the pipe tells whether the parent still lives)
    os.set_blocking(parent_alive, False)
    try:
        if os.read(parent_alive, 1) == b"":
            os._exit(1)  # the parent died before the death signal was armed
    except BlockingIOError:
        pass
    os.close(parent_alive)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes pause() when a child exits
    for fd in range(3):
        os.close(fd)
    while True:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            signal.pause()
        except InterruptedError:
            pass


# -- enter -------------------------------------------------------------------------------
def enter(plan_fd: int, started_fd: int | None = None) -> int:
    with os.fdopen(plan_fd, "rb") as plan_file:
        plan = json.loads(plan_file.read())
    sandbox = plan["sandbox_pid"]
    joins = [
        (os.open(f"/proc/{sandbox}/ns/{name}", os.O_RDONLY), kind, name)
        for name, kind in POD_NAMESPACES
    ]
    mount_ns = None
    if plan.get("join_mounts_of"):
        mount_ns = os.open(f"/proc/{plan['join_mounts_of']}/ns/mnt", os.O_RDONLY)
    for fd, kind, name in joins:
        _setns(fd, kind, name)
        os.close(fd)
    child = os.fork()
    if child == 0:
        _container(plan, mount_ns, started_fd)
    if started_fd is not None:
        os.write(started_fd, b"pid %d\n" % child)
        os.close(started_fd)
    # The kubelet signals the whole process group, the container included; this process only
    # waits and reports (a forwarded signal would reach the container twice).
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(sig, signal.SIG_IGN)
    while True:
        try:
            _, status = os.waitpid(child, 0)
            break
        except InterruptedError:
            continue
    if os.WIFSIGNALED(status):  # die of the same signal (SIGKILL has no handler to reset)
        sig = os.WTERMSIG(status)
        if sig not in (signal.SIGKILL, signal.SIGSTOP):
            signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
    return os.waitstatus_to_exitcode(status)


def _container(plan: dict, mount_ns: int | None, started_fd: int | None) -> None:
    try:
        if mount_ns is not None:
            _setns(mount_ns, CLONE_NEWNS, "container's mount")
        else:
            _check(_libc.unshare(CLONE_NEWNS), "unshare mount namespace")
            build_mounts(plan)
        if plan.get("tty"):
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        become(plan)
        try:
            os.chdir(plan["cwd"])
        except OSError as exc:
            raise SetupError(
                f'chdir to cwd ("{plan["cwd"]}") set in the container failed: {exc.strerror}'
            ) from None
    except (SetupError, OSError) as exc:
        os.write(2, f"cannot start the container: {exc}\n".encode())
        os._exit(SETUP_FAILED)
    argv, env = plan["argv"], plan["env"]
    if started_fd is not None:
        os.write(started_fd, b"ready\n")
        os.set_inheritable(started_fd, False)  # closed by the exec: the kubelet sees EOF
    try:
        os.execvpe(argv[0], argv, env)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            message = f'exec: "{argv[0]}": executable file not found in $PATH'
            code = 127
        else:
            message, code = f'exec: "{argv[0]}": {exc.strerror}', 126
        os.write(2, (message + "\n").encode())
        os._exit(code)


def build_mounts(plan: dict) -> None:
    """The container's view: private temporary dirs, masks, then its own binds."""
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    sources = [os.open(b["source"], os.O_PATH) for b in plan["binds"]]
    ours = set()
    for path in plan["private_dirs"]:
        if os.path.isdir(path):
            _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777")
            ours.add(os.stat(path).st_dev)
    for path in plan["masks"]:
        if os.path.isdir(path):  # not already hidden under an earlier mask
            _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, "mode=755")
            ours.add(os.stat(path).st_dev)
    for bind, fd in zip(plan["binds"], sources, strict=True):
        target = bind["target"]
        _ensure_target(target, is_dir=os.path.isdir(f"/proc/self/fd/{fd}"), ours=ours)
        _mount(f"/proc/self/fd/{fd}", target, None, MS_BIND | MS_REC)
        if bind.get("read_only"):
            _mount(None, target, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
        os.close(fd)
    _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)


def _ensure_target(target: str, *, is_dir: bool, ours: set[int]) -> None:
    """Create a missing mount point, only ever on a tmpfs this namespace mounted."""
    if os.path.lexists(target):
        return
    missing = [target]
    parent = os.path.dirname(target)
    while not os.path.lexists(parent):
        missing.append(parent)
        parent = os.path.dirname(parent)
    if os.stat(parent).st_dev not in ours:
        raise SetupError(f"mount point {target} does not exist")
    for path in reversed(missing[1:]):
        os.mkdir(path, 0o755)
    if is_dir:
        os.mkdir(target, 0o755)
    else:
        os.close(os.open(target, os.O_CREAT | os.O_WRONLY, 0o644))


def become(plan: dict) -> None:
    """Drop to the container's capabilities, groups and user."""
    kept = plan.get("capabilities")
    if kept is not None:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            last = int(f.read())
        for number in range(last + 1):
            name = CAPABILITIES[number] if number < len(CAPABILITIES) else ""
            if name not in kept:
                _prctl(PR_CAPBSET_DROP, number)
    os.setgroups(plan["groups"])
    os.setresgid(plan["gid"], plan["gid"], plan["gid"])
    os.setresuid(plan["uid"], plan["uid"], plan["uid"])
    if plan.get("no_new_privs"):
        _prctl(PR_SET_NO_NEW_PRIVS, 1)


def main(argv: list[str]) -> int:
    try:
        if argv[:1] == ["pod"] and len(argv) == 4:
            return pod(argv[1], int(argv[2]), int(argv[3]))
        if argv[:1] == ["enter"] and len(argv) in (2, 3):
            return enter(int(argv[1]), int(argv[2]) if len(argv) == 3 else None)
    except SetupError as exc:
        print(f"sandbox_helper: {exc}", file=sys.stderr)
        return SETUP_FAILED
    print(
        "usage: sandbox_helper.py pod HOSTNAME KUBELET_PID READY_FD | enter PLAN_FD [STARTED_FD]",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
