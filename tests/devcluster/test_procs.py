"""procs.has_exited sees the end of processes that are not our children (a pod's PID 1)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

from jupyterhub_platform.devcluster import procs

pytestmark = pytest.mark.processes


def test_a_running_process_has_not_exited():
    assert not procs.has_exited(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert not procs.has_exited(child.pid)
    finally:
        child.kill()
        child.wait()


def test_a_zombie_and_a_reaped_process_have_exited():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # exited, not yet reaped
    assert procs.has_exited(child.pid)
    child.wait()
    assert procs.has_exited(child.pid)


def test_free_ports_avoid_the_ephemeral_range_and_are_bindable():
    low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
    ports = {procs.free_port() for _ in range(20)}
    assert all(procs._LOWEST_PORT <= port < low for port in ports)
    for port in ports:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))


def test_stop_also_ends_descendants_that_left_the_group(tmp_path):
    """Like a hub's managed service or a jupyter kernel: a new session under the program."""
    pid_file = tmp_path / "escaped.pid"
    program = (
        "import os, subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'],"
        " start_new_session=True)\n"
        f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
        "time.sleep(60)\n"
    )
    proc = procs.ManagedProcess([sys.executable, "-c", program], name="parent")
    deadline = time.monotonic() + 30
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline, "the program did not start its child"
        time.sleep(0.05)
    escaped = int(pid_file.read_text())
    assert os.getpgid(escaped) != proc.pid  # outside the group signalled
    proc.stop(grace=1)
    deadline = time.monotonic() + 10
    while not procs.has_exited(escaped):
        assert time.monotonic() < deadline, "the escaped descendant outlived stop()"
        time.sleep(0.05)
