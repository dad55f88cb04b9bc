"""``python -m jupyterhub_platform.devcluster.cloudflare --port P --aud AUD``: run the stand-in.

With ``--upstream URL`` it is also the edge in front of that URL (the hub's proxy).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from aiohttp import web

from .routes import make_app
from .state import DEFAULT_AUD, AccessState


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m jupyterhub_platform.devcluster.cloudflare",
        description="A local stand-in for Cloudflare Access (development and tests only).",
    )
    parser.add_argument("--port", type=int, required=True, help="port to listen on (127.0.0.1)")
    parser.add_argument("--aud", default=DEFAULT_AUD, help="the Access application AUD tag")
    parser.add_argument("--issuer", help="the team domain URL (default: this server's URL)")
    parser.add_argument("--upstream", help="run as the edge in front of this URL (the hub's proxy)")
    parser.add_argument(
        "--token-ttl", type=float, default=8 * 3600, help="lifetime of minted tokens, seconds"
    )
    parser.add_argument(
        "--control-token-file",
        help="file holding the bearer token of the /_standin control API (without it the API is off)",
    )
    args = parser.parse_args(argv)
    state = AccessState(
        issuer=args.issuer or f"http://127.0.0.1:{args.port}",
        audience=args.aud,
        token_ttl=args.token_ttl,
    )
    control_token = (
        Path(args.control_token_file).read_text().strip() if args.control_token_file else None
    )
    app = make_app(state, args.upstream, control_token)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None)


if __name__ == "__main__":
    main()
