"""Pod IPs: a loopback address per pod, or a network namespace per pod.

**Loopback** (light mode, and process mode without root): Linux answers on all of 127.0.0.0/8
without setup, so each pod gets its own loopback address and every pod can listen on the same
port (8888) like pods on a real cluster network. Each kubelet draws a random 127.X.Y.0 block and
walks on from there, so two kubelets on one machine (parallel test runs) practically never
meet; an address is used only if the pod's ports are free on it. Addresses are not reused
within one kubelet, so a new pod never inherits a previous pod's lingering connections.

**Namespaces** (process mode as root): each pod has its own network namespace with a veth pair
to the host, like a CNI plugin sets up: the pod's ``eth0`` carries its IP from 198.18.0.0/15
(the benchmarking range, which no real network routes), the host end carries the link-local
gateway 169.254.1.1 and a /32 route to the pod. A program binding 0.0.0.0 in a pod listens on
the pod's IP and loopback only. Adding the /32 route is the claim on an address: it fails if
another kubelet on this machine routes it already. Pods have no default route (the host does not
forward), so they reach only the host, through the gateway, and the host's 127.0.0.1 services
the kubelet forwards into them (see forward.py).
"""

from __future__ import annotations

import errno
import ipaddress
import random
import socket
from collections.abc import Iterable, Iterator

HOST_IP = "127.0.0.1"
GATEWAY_IP = "169.254.1.1"
"""The host as namespaced pods see it (the host end of every pod's veth)."""
POD_NETWORK = ipaddress.ip_network("198.18.0.0/15")
# how many addresses to try before concluding something listens on the ports on every address
_MAX_ATTEMPTS = 64


class AddressUnavailable(Exception):
    """No address with the pod's ports free was found."""


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


class NamespaceAddresses:
    """Candidate IPs for namespaced pods: a random walk through :data:`POD_NETWORK`.

    Addresses inside a network the host already routes (other than its default route) are
    skipped; the route each pod adds is the final, atomic claim.
    """

    def __init__(self, host_routes: Iterable[str] = (), rng: random.Random | None = None):
        rng = rng or random.Random()
        self._size = POD_NETWORK.num_addresses
        self._index = rng.randrange(self._size)
        self._routed = [
            net
            for net in (ipaddress.ip_network(r, strict=False) for r in host_routes)
            if net.prefixlen > 0 and net.overlaps(POD_NETWORK)
        ]

    def candidates(self) -> Iterator[str]:
        for _ in range(self._size):
            address = POD_NETWORK[self._index % self._size]
            self._index += 1
            last_octet = int(address) & 0xFF
            if last_octet in (0, 255) or any(address in net for net in self._routed):
                continue
            yield str(address)


def veth_name(pod_uid: str) -> str:
    """The host end's interface name (15 characters at most): ``dc`` + the UID's first hex digits."""
    return "dc" + pod_uid.replace("-", "")[:12]


def host_side_commands(veth: str) -> str:
    """``ip -batch`` lines bringing the host end up as the pods' gateway (pure)."""
    return f"addr add {GATEWAY_IP}/32 dev {veth}\nlink set {veth} up\n"


def pod_side_commands(ip: str) -> str:
    """``ip -batch`` lines run inside the pod's namespace (pure)."""
    return (
        "link set lo up\n"
        f"addr add {ip}/32 dev eth0\n"
        "link set eth0 up\n"
        f"route add {GATEWAY_IP} dev eth0 scope link\n"
    )


def route_command(ip: str, veth: str) -> list[str]:
    return ["route", "add", f"{ip}/32", "dev", veth, "src", GATEWAY_IP]
