"""Which tests start processes: they must carry the ``processes`` marker.

``pytest -m "not processes"`` then runs every test that starts no process (no hub, proxy,
provider, helm, kubelet pod, ...) — the fast loop. A Python audit hook sees every way a process
starts (``subprocess``, ``asyncio`` subprocesses, ``os.fork``/``exec``/``posix_spawn``); a test that
starts one without the marker fails, naming the program. ``e2e`` tests carry it implicitly.
"""

from __future__ import annotations

import sys

import pytest

MARKER = "processes"
IMPLIED_BY = ("e2e",)
PROCESS_FIXTURES = frozenset(
    {"provider", "hubs", "hub_factory", "cloudflare", "cf_hub_factory", "platform", "hub"}
)
"""Fixtures that start processes (OIDC provider, hubs + proxies, the Cloudflare stand-in, the
local platform): a test using one carries the marker without saying so."""
SPAWN_EVENTS = frozenset(
    {
        "subprocess.Popen",
        "os.posix_spawn",
        "os.spawn",
        "os.exec",
        "os.fork",
        "os.forkpty",
        "os.system",
        "pty.spawn",
    }
)


def _library_lookup(event: str, args: tuple) -> bool:
    """``ctypes.util.find_library`` running ``ldconfig -p``: an import's side effect (pamela,
    which ``jupyterhub.auth`` imports, looks up libc), whichever test happens to import it first."""
    return (
        event == "subprocess.Popen" and len(args) > 1 and list(args[1]) == ["/sbin/ldconfig", "-p"]
    )


class ProcessAudit:
    """Records the processes started while a test (its setup, call and teardown) runs."""

    def __init__(self) -> None:
        self.started: list[str] = []
        sys.addaudithook(self._hook)  # hooks cannot be removed; it only appends to a list

    def _hook(self, event: str, args: tuple) -> None:
        if event in SPAWN_EVENTS and not _library_lookup(event, args):
            program = args[0] if args else "?"
            self.started.append(f"{event} {program!r}")

    def take(self) -> list[str]:
        started, self.started = self.started, []
        return started


def mark_implied(items: list[pytest.Item]) -> None:
    """The marker on e2e tests and tests that use a process fixture or the process kubelet."""
    for item in items:
        kubelet = item.get_closest_marker("kubelet")
        if (
            any(item.get_closest_marker(name) for name in IMPLIED_BY)
            or PROCESS_FIXTURES & set(getattr(item, "fixturenames", ()))
            or (kubelet is not None and kubelet.args == ("process",))
        ):
            item.add_marker(MARKER)


def marked(item: pytest.Item) -> bool:
    return any(item.get_closest_marker(name) for name in (MARKER, *IMPLIED_BY))


def configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}: the test starts processes (hubs, proxies, providers, helm, pods); "
        f'`pytest -m "not {MARKER}"` runs the rest, which must start none',
    )
    config.stash[_AUDIT] = ProcessAudit()


def collected(session: pytest.Session) -> None:
    """Forget what collection started (test modules' imports: e.g. pamela, imported by
    ``jupyterhub.auth``, runs ``ldconfig`` to find libpam): it belongs to no test."""
    session.config.stash[_AUDIT].take()


def check(item: pytest.Item, report: pytest.TestReport) -> None:
    """After a test's last phase: fail it if it started a process without the marker."""
    audit = item.config.stash[_AUDIT]
    started = item.stash.setdefault(_STARTED, [])
    started += audit.take()
    if report.when != "teardown" or not started or marked(item):
        return
    programs = ", ".join(dict.fromkeys(started))
    report.outcome = "failed"
    report.longrepr = (
        f"{item.nodeid} started processes ({programs}) but has no @pytest.mark.{MARKER}: "
        f'mark it, so that `pytest -m "not {MARKER}"` stays free of processes'
    )


_AUDIT = pytest.StashKey[ProcessAudit]()
_STARTED = pytest.StashKey[list]()
