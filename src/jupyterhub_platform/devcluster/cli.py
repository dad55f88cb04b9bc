"""``jupyterhub-platform dev``: run the whole platform locally until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time
from pathlib import Path

from jupyterhub_platform.chart.binaries import BinaryUnavailable, ensure_helm
from jupyterhub_platform.chart.hub_pod import HubPodError
from jupyterhub_platform.chart.locate import ChartNotFound, fetch_chart
from jupyterhub_platform.chart.render import ChartRenderError
from jupyterhub_platform.chart.values import ValuesError

from .idp import DEMO_USERS, IdPError
from .platform import AUTH_MODES, LocalPlatform, PlatformError
from .procs import ManagedProcess, WaitTimeout
from .proxy import ProxyInstallError

ERRORS = (
    PlatformError, ValuesError, ChartNotFound, ChartRenderError, HubPodError, BinaryUnavailable,
    ProxyInstallError, IdPError, WaitTimeout,
)  # fmt: skip
"""Failures reported as one message (they all name what to fix); anything else is a bug."""


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
        "--chart",
        type=Path,
        default=None,
        help="the unpacked z2jh 4.4.0 chart whose hub configuration runs (default: $Z2JH_CHART, "
        "else ../shared/z2jh/chart beside the source tree)",
    )
    parser.add_argument(
        "--fetch-chart",
        type=Path,
        metavar="DIR",
        default=None,
        help="download the chart into DIR with the pinned helm first (needs hub.jupyter.org), "
        "and use it",
    )
    parser.add_argument(
        "--values",
        "-f",
        type=Path,
        action="append",
        default=None,
        help="chart values file, repeatable in helm -f order (default: the shipped "
        "chart-values/values.yaml, plus cloudflare-access.yaml with --auth cloudflare)",
    )
    parser.add_argument(
        "--existing-secret",
        type=Path,
        default=None,
        help="YAML mapping of key -> string: the content of the Secret hub.existingSecret names",
    )
    parser.add_argument(
        "--auth",
        choices=AUTH_MODES,
        default="oidc",
        help="how users log in: the development OIDC provider (default), or a local stand-in "
        "for Cloudflare Access in front of the hub (docs/cloudflare-access.md)",
    )
    parser.add_argument(
        "--backups",
        action="store_true",
        help="also run the home-volume backup service (chart-values/backup-restic.yaml) with a "
        "local S3 store (rclone serve s3) in the state directory; needs restic (docs/backup.md)",
    )
    parser.add_argument(
        "--credentials",
        action="store_true",
        help="also run the platform-credentials service (chart-values/credentials.yaml) with a "
        "local STS + S3 server (moto's) for the policy's s3-sts sets (docs/credentials.md)",
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
    users = "\n".join(
        f"    {login:<18} {u.note}" for login, u in zip(logins, DEMO_USERS, strict=True)
    )
    logs = ", ".join(f"{p.name}.log" for p in platform.components())
    backups = (
        f"Backups: {platform.public_url}/services/backup/ (run one now: POST "
        "api/run as an admin)\n\n"
        if platform.backup_store is not None
        else ""
    )
    if platform.credential_store is not None:
        backups += (
            f"Credentials: {platform.public_url}/services/credentials/api/v1/sets (in a "
            "server: from jupyterhub_platform.workspace.credentials import get)\n\n"
        )
    return (
        f"\nThe platform is running (started in {seconds:.1f}s):\n\n"
        f"    {platform.public_url}\n\n{how}\n{users}\n\n{backups}"
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
        chart=args.chart,
        values_files=args.values,
        existing_secret=args.existing_secret,
        port=args.port,
        auth=args.auth,
        backups=args.backups,
        credentials=args.credentials,
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
    if args.chart is not None and args.fetch_chart is not None:
        print("jupyterhub-platform dev: give --chart or --fetch-chart, not both", file=sys.stderr)
        return 2
    try:
        if args.fetch_chart is not None:
            args.chart = fetch_chart(ensure_helm(), args.fetch_chart)
            print(f"Fetched the chart into {args.chart}", flush=True)
        return asyncio.run(run(args))
    except ERRORS as exc:
        print(f"jupyterhub-platform dev: {exc}", file=sys.stderr)
        return 1
