"""Pod IPs on the loopback network.

Linux answers on all of 127.0.0.0/8 without setup, so each pod gets its own loopback address and
every pod can listen on the same port (8888) like pods on a real cluster network. Each kubelet
draws a random 127.X.Y.0 block and walks on from there, so two kubelets on one machine (parallel
test runs) practically never meet; an address is used only if the pod's ports are free on it.
Addresses are not reused within one kubelet, so a new pod never inherits a previous pod's
lingering connections.
"""

from __future__ import annotations

import errno
import random
import socket
from collections.abc import Iterable

HOST_IP = "127.0.0.1"
# how many addresses to try before concluding something listens on the ports on every address
_MAX_ATTEMPTS = 64


class AddressUnavailable(Exception):
    """No loopback address with the pod's ports free was found."""


def ports_free(ip: str, ports: Iterable[int]) -> bool:
    """Whether every TCP port in ``ports`` can be bound on ``ip`` right now."""
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((ip, port))
            except OSError as exc:
                if exc.errno in (errno.EADDRINUSE, errno.EADDRNOTAVAIL):
                    return False
                raise
    return True


class PodNetwork:
    """Hands out loopback pod IPs from a random block of 127.0.0.0/8."""

    def __init__(self, rng: random.Random | None = None):
        rng = rng or random.Random()
        # 127.0.x.x holds the usual loopback services (127.0.0.1, 127.0.0.53, 127.0.1.1)
        self._second = rng.randrange(1, 255)
        self._index = rng.randrange(0, 256) * 254

    def _next_ip(self) -> str:
        third, fourth = divmod(self._index % (256 * 254), 254)
        self._index += 1
        return f"127.{self._second}.{third}.{fourth + 1}"

    def allocate(self, ports: Iterable[int] = ()) -> str:
        """A fresh pod IP on which all of ``ports`` are free."""
        ports = sorted(set(ports))
        for _ in range(_MAX_ATTEMPTS):
            ip = self._next_ip()
            if ports_free(ip, ports):
                return ip
        raise AddressUnavailable(
            f"ports {ports} are in use on {_MAX_ATTEMPTS} pod addresses in a row; "
            "is a process listening on 0.0.0.0 on one of them?"
        )
