"""``jupyterhub-platform dev``: run the whole platform locally until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time
from pathlib import Path

from .chart import ChartValuesError
from .idp import DEMO_USERS, IdPError
from .platform import AUTH_MODES, LocalPlatform, PlatformError
from .procs import ManagedProcess, WaitTimeout
from .proxy import ProxyInstallError


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="jupyterhub-platform dev",
        description="Start JupyterHub, configurable-http-proxy, a development OIDC provider and "
        "the Kubernetes API emulator with its process kubelet, all on this machine.",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=Path(".platform"),
        help="where state (cluster objects, home directories, hub database) and logs live "
        "(default: .platform)",
    )
    parser.add_argument(
        "--port", type=int, default=0, help="public port of the proxy (default: a free port)"
    )
    parser.add_argument(
        "--values",
        type=Path,
        default=None,
        help="chart values file (default: the shipped chart-values/values.yaml)",
    )
    parser.add_argument(
        "--auth",
        choices=AUTH_MODES,
        default="oidc",
        help="how users log in: the development OIDC provider (default), or a local stand-in "
        "for Cloudflare Access in front of the hub (docs/cloudflare-access.md)",
    )
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error(f"--port: {args.port} is not a TCP port")
    return args


def banner(platform: LocalPlatform, seconds: float) -> str:
    if platform.auth == "cloudflare":
        how = "Sign in at the Cloudflare Access stand-in with one of these addresses (no password):"
        logins = [f"{u.username}@example.org" for u in DEMO_USERS]
    else:
        how = (
            "Log in with 'Platform login'; on the development identity provider's page type one "
            "of\nthese usernames (no password):"
        )
        logins = [u.username for u in DEMO_USERS]
    users = "\n".join(f"    {login:<18} {u.note}" for login, u in zip(logins, DEMO_USERS, strict=True))
    logs = ", ".join(f"{p.name}.log" for p in platform.processes)
    return (
        f"\nThe platform is running (started in {seconds:.1f}s):\n\n"
        f"    {platform.public_url}\n\n{how}\n{users}\n\n"
        f"Logs: {platform.logs_dir}/ ({logs})\n"
        "Press Ctrl-C to stop everything.\n"
    )


async def watch(platform: LocalPlatform, stop_requested: asyncio.Event) -> ManagedProcess | None:
    """Until Ctrl-C/SIGTERM: return a component that died (the platform is broken without it)."""
    while not stop_requested.is_set():
        crashed = platform.exited()
        if crashed is not None:
            return crashed
        with contextlib.suppress(asyncio.TimeoutError):  # TimeoutError only from 3.11
            await asyncio.wait_for(stop_requested.wait(), timeout=1.0)
    return None


async def run(args: argparse.Namespace) -> int:
    loop = asyncio.get_running_loop()
    stop_requested = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop_requested.set)

    platform = LocalPlatform(
        args.state_dir,
        values_path=args.values,
        port=args.port,
        auth=args.auth,
        say=lambda m: print(m, flush=True),
    )
    print(f"Starting the local platform in {platform.state_dir} ...", flush=True)
    began = time.monotonic()
    starting = asyncio.ensure_future(platform.start())
    stopping = asyncio.ensure_future(stop_requested.wait())
    await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    try:
        if not starting.done():
            starting.cancel()  # start() stops what it had started before re-raising
            await asyncio.gather(starting, return_exceptions=True)
            print("Stopped before the platform was ready.", flush=True)
            return 130
        starting.result()
        print(banner(platform, time.monotonic() - began), flush=True)
        crashed = await watch(platform, stop_requested)
        if crashed is not None:
            print(
                f"jupyterhub-platform dev: {crashed.name} exited with code {crashed.returncode}; "
                f"stopping the platform. End of {crashed.log_path}:\n{crashed.log_tail()}",
                file=sys.stderr,
                flush=True,
            )
            return 1
        print("Stopping ...", flush=True)
        return 0
    finally:
        stopping.cancel()
        await platform.stop()
        print("All components stopped.", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        return asyncio.run(run(args))
    except (PlatformError, ChartValuesError, ProxyInstallError, IdPError, WaitTimeout) as exc:
        print(f"jupyterhub-platform dev: {exc}", file=sys.stderr)
        return 1
