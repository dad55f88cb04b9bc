"""procs.has_exited sees the end of processes that are not our children (a pod's PID 1)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

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
