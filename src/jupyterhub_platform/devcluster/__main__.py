"""``python -m jupyterhub_platform.devcluster``: run the emulator (and kubelet) in the foreground."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from pathlib import Path

from .cluster import KUBELET_MODES, DevCluster
from .kubelet.agent import ISOLATION

log = logging.getLogger("jupyterhub_platform.devcluster")


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jupyterhub-platform devcluster",
        description="Run the Kubernetes API emulator (and a kubelet) until SIGTERM/SIGINT.",
    )
    parser.add_argument(
        "--state-dir",
        required=True,
        type=Path,
        help="directory for kubeconfig.yaml, ready.json and kubelet state",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", default=0, type=int, help="port to listen on (0: any free port)")
    parser.add_argument(
        "--kubelet",
        default="process",
        choices=KUBELET_MODES,
        help="how pods run: real processes, light stand-ins, or not at all",
    )
    parser.add_argument(
        "--pod-isolation",
        default="auto",
        choices=ISOLATION,
        help="process pods in their own namespaces as their own users: when the "
        "kubelet runs as root (auto), always, or never",
    )
    parser.add_argument(
        "--private-path",
        action="append",
        default=[],
        type=Path,
        help="a directory no pod may see (repeatable); the state dir always is",
    )
    parser.add_argument(
        "--volume-sync-seconds",
        default=1.0,
        type=_positive_seconds,
        help="how often the kubelet rewrites running pods' secret/configMap volumes whose "
        "objects changed",
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        help="stderr log level",
    )
    return parser


async def serve(args: argparse.Namespace) -> None:
    cluster = DevCluster(
        args.state_dir,
        host=args.host,
        port=args.port,
        kubelet=args.kubelet,
        isolation=args.pod_isolation,
        private_paths=args.private_path,
        volume_sync_seconds=args.volume_sync_seconds,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await cluster.start()
        ready = {"url": cluster.url, "kubeconfig": str(cluster.kubeconfig_path), "pid": os.getpid()}
        ready_path = args.state_dir / "ready.json"
        ready_tmp = ready_path.with_suffix(".tmp")
        ready_tmp.write_text(json.dumps(ready))
        ready_tmp.replace(ready_path)  # readers never see a half-written file
        print(f"devcluster ready: {cluster.url}", flush=True)
        await stop.wait()
        log.info("stopping devcluster")
    finally:
        await cluster.stop()
        (args.state_dir / "ready.json").unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        asyncio.run(serve(args))
    except OSError as exc:
        print(
            f"devcluster: cannot start on {args.host}:{args.port} with state dir "
            f"{args.state_dir}: {exc}",
            file=sys.stderr,
        )
        return 2
    except RuntimeError as exc:  # e.g. --pod-isolation namespaces where it is impossible
        print(f"devcluster: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
