"""The stand-in as a managed process: its URLs, its command line and the hub config to trust it."""

from __future__ import annotations

import os
import secrets
import sys
from dataclasses import dataclass, field
from pathlib import Path

from jupyterhub_platform.auth.cloudflare_names import CERTS_PATH

from ..procs import ManagedProcess, free_port, wait_serving
from .state import DEFAULT_AUD

CONTROL_TOKEN_FILE = "cloudflare-standin.control-token"


@dataclass
class StandInProcess:
    """One stand-in on a free port of 127.0.0.1; in edge mode (``upstream``) also the hub's
    public URL. Its control API takes ``control_token`` (written to an owner-only file)."""

    log_dir: Path
    audience: str = DEFAULT_AUD
    upstream: str | None = None
    port: int = field(default_factory=free_port)
    proc: ManagedProcess | None = None
    control_token: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)

    @property
    def url(self) -> str:
        """The team domain (and, in edge mode, the hub's public URL)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def ready_url(self) -> str:
        """A public endpoint that answers 200 once the stand-in serves."""
        return f"{self.url}{CERTS_PATH}"

    def hub_config_overrides(self) -> dict[str, dict]:
        """The hub config that makes ``cloudflare-access`` trust this stand-in as Cloudflare."""
        return {
            "JupyterHub": {"authenticator_class": "cloudflare-access"},
            "CloudflareAccessAuthenticator": {"team_domain": self.url, "audience": [self.audience]},
        }

    def argv(self) -> list[str]:
        """The command line; writes the control token to an owner-only file it names."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        token_file = self.log_dir / CONTROL_TOKEN_FILE
        token_file.touch(mode=0o600)
        os.chmod(token_file, 0o600)
        token_file.write_text(self.control_token)
        package = __name__.rpartition(".")[0]
        argv = [sys.executable, "-m", package, "--port", str(self.port), "--aud", self.audience]
        argv += ["--control-token-file", str(token_file)]
        return argv + (["--upstream", self.upstream] if self.upstream else [])

    async def start(self) -> None:
        self.proc = ManagedProcess(
            self.argv(), name="cloudflare-standin", log_path=self.log_dir / "cloudflare-standin.log"
        )
        await wait_serving(
            self.proc, self.ready_url, timeout=30, what="the Cloudflare Access stand-in"
        )

    async def stop(self) -> None:
        if self.proc is not None:
            await self.proc.astop(grace=2)
            self.proc = None
