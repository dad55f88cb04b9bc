"""A minimal issuer we hold the keys of: discovery + JWKS over real HTTP, tokens minted locally.

The forged-token cases that need a *trusted* signature (expired, wrong issuer, ...) cannot be
produced by the provider mock, so tests mint them with a key this issuer publishes.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from jupyterhub_platform.devcluster.procs import free_port
from jupyterhub_platform.testing import new_rsa_key, public_jwk


class StaticIssuer:
    """Serves ``/.well-known/openid-configuration`` and ``/jwks`` for ``keys`` on a free port."""

    def __init__(self, client_id: str):
        self.client_id = client_id
        self.key = new_rsa_key()
        self.kid = "test-key-1"
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.advertised_issuer = self.issuer  # what discovery claims; tests may make it lie
        self.extra_metadata: dict = {}  # more discovery fields, e.g. token endpoint auth methods
        self.userinfo: dict[str, dict] = {}  # access token -> claims /userinfo answers with
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's naming
                if self.path == "/userinfo":
                    token = self.headers.get("Authorization", "").removeprefix("Bearer ")
                    claims = issuer.userinfo.get(token)
                    self.send_response(200 if claims else 401)
                    self.send_header("Content-Type", "application/json")
                    self.end_headers()
                    self.wfile.write(json.dumps(claims or {"error": "invalid_token"}).encode())
                    return
                documents = {
                    "/.well-known/openid-configuration": issuer.metadata(),
                    "/jwks": {"keys": [public_jwk(issuer.key, issuer.kid)]},
                }
                body = json.dumps(documents.get(self.path)).encode()
                self.send_response(200 if self.path in documents else 404)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def metadata(self) -> dict:
        return {
            "issuer": self.advertised_issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
            "id_token_signing_alg_values_supported": ["RS256"],
            **self.extra_metadata,
        }

    def __enter__(self) -> StaticIssuer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()

    def claims(self, **overrides) -> dict:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": "alice",
            "aud": self.client_id,
            "iat": now,
            "exp": now + 300,
            "nonce": "the-nonce",
            "groups": ["researchers"],
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def mint(
        self,
        key: rsa.RSAPrivateKey | None = None,
        kid: str | None = None,
        with_kid: bool = True,
        **overrides,
    ) -> str:
        """A token signed with ``key`` (default: the published one); ``with_kid=False`` leaves
        the ``kid`` header out, as some providers do when they publish a single key."""
        return jwt.encode(
            self.claims(**overrides),
            key or self.key,
            algorithm="RS256",
            headers={"kid": kid or self.kid} if with_kid else {},
        )
