"""A real Prometheus (Debian's ``prometheus`` package, the binary only: the packaged service is
never started) scraping the local platform through its proxy, and its HTTP query API."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import yaml
from hub_user import require_programs
from platform_values import METRICS_ENDPOINTS

from jupyterhub_platform.devcluster.procs import ManagedProcess, free_port, wait_serving

PROGRAM = "prometheus"
SCRAPE_PATHS = METRICS_ENDPOINTS
"""Prometheus job → metrics path under the proxy (the jobs of docs/observability.md)."""


def scrape_config(address: str, token_file: Path, interval: str) -> dict:
    """Prometheus' configuration: each of :data:`SCRAPE_PATHS` at ``address`` (host:port of the
    proxy) every ``interval``, with the bearer token in ``token_file``."""
    return {
        "global": {
            "scrape_interval": interval,
            "scrape_timeout": interval,
            "evaluation_interval": interval,
        },
        "scrape_configs": [
            {
                "job_name": job,
                "metrics_path": path,
                "authorization": {"type": "Bearer", "credentials_file": str(token_file)},
                "static_configs": [{"targets": [address]}],
            }
            for job, path in SCRAPE_PATHS.items()
        ],
    }


@dataclass
class Prometheus:
    url: str
    process: ManagedProcess

    async def query(self, expr: str) -> list[dict]:
        """The instant vector ``expr`` evaluates to now (``/api/v1/query``)."""
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{self.url}/api/v1/query", params={"query": expr}) as resp,
        ):
            body = await resp.json()
        if resp.status != 200 or body.get("status") != "success":
            raise AssertionError(f"{expr!r}: Prometheus answered {resp.status}: {body}")
        assert body["data"]["resultType"] == "vector", body
        return body["data"]["result"]

    async def targets(self) -> Mapping[str, dict]:
        """job → its active target (``/api/v1/targets``): health, lastError."""
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{self.url}/api/v1/targets") as resp,
        ):
            body = await resp.json()
        return {t["labels"]["job"]: t for t in body["data"]["activeTargets"]}


def write_config(state_dir: Path, address: str, token: str, interval: str) -> Path:
    """``state_dir``'s ``prometheus.yml`` (and the token file it names)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    token_file = state_dir / "token"
    token_file.write_text(token)
    token_file.chmod(0o600)
    config = state_dir / "prometheus.yml"
    config.write_text(yaml.safe_dump(scrape_config(address, token_file, interval)))
    return config


@asynccontextmanager
async def prometheus(state_dir: Path, address: str, token: str, interval: str = "1s"):
    """Prometheus scraping ``address`` with ``token``; its data and log in ``state_dir``."""
    require_programs(PROGRAM)
    config = write_config(state_dir, address, token, interval)
    port = free_port()
    process = ManagedProcess(
        [
            shutil.which(PROGRAM),
            f"--config.file={config}",
            f"--storage.tsdb.path={state_dir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        name=PROGRAM,
        log_path=state_dir / "prometheus.log",
    )
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_serving(process, f"{url}/-/ready", timeout=30, what=PROGRAM)
        yield Prometheus(url, process)
    finally:
        await process.astop()
