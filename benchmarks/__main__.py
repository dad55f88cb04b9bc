"""Run every benchmark module (``bench_*.py``) and print its report.

Each module exposes ``run(args) -> list[Figure]``; a figure is a named measurement with, where
the comparison makes sense, the upstream baseline measured in the same run and their ratio.
``python -m benchmarks [name ...]`` runs only the named modules (e.g. ``devcluster``).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import pkgutil
import sys
import time

import benchmarks
from benchmarks.figures import print_report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("names", nargs="*", help="benchmark modules to run (default: all)")
    args = parser.parse_args(argv)
    available = sorted(
        m.name.removeprefix("bench_")
        for m in pkgutil.iter_modules(benchmarks.__path__)
        if m.name.startswith("bench_")
    )
    unknown = sorted(set(args.names) - set(available))
    if unknown:
        parser.error(
            f"unknown benchmark(s) {', '.join(unknown)}; available: {', '.join(available)}"
        )
    failed = False
    for name in args.names or available:
        module = importlib.import_module(f"benchmarks.bench_{name}")
        started = time.monotonic()
        print(f"\n== {name}", flush=True)
        try:
            figures = asyncio.run(module.run())
        except Exception as exc:  # report and go on with the other benchmarks
            failed = True
            print(f"   FAILED: {type(exc).__name__}: {exc}", flush=True)
            continue
        print_report(figures)
        print(f"   ({time.monotonic() - started:.1f}s)", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
