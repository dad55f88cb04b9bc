"""A local stand-in for Cloudflare Access: signing keys, tokens, get-identity, logout.

Serves what the hub's ``cloudflare-access`` authenticator talks to on the team domain
(``/cdn-cgi/access/certs``, ``get-identity``, ``logout``) and, under ``/_standin/``, a control API
for tests: mint tokens (any claims, any of its keys), rotate keys (scheduled: the previous key
stays published; manual: it is dropped), set users' groups, and simulate outages. Whoever can
mint tokens is anyone, so the control API answers only requests with the bearer token from
``--control-token-file`` and JSON bodies (a cross-site form or ``text/plain`` fetch cannot send
either); without that file it is off. With
``--upstream`` it is also the *edge* (:mod:`.cloudflare_edge`): the sign-in page and a reverse
proxy that adds ``Cf-Access-Jwt-Assertion`` to every forwarded request.

Run it with ``python -m jupyterhub_platform.devcluster.cloudflare_standin --port P --aud AUD``;
:class:`CloudflareStandIn` starts it as a managed process and drives its API.
"""

from __future__ import annotations

import argparse
import hmac
import os
import secrets
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from .idp import DEMO_USERS
from .procs import ManagedProcess, free_port, wait_serving

DEFAULT_AUD = "standin-application-aud"
TOKEN_COOKIE = "CF_Authorization"
HUB_APP_PATH = "/hub"  # the hub's Access application covers this path only (docs/security.md)
CONTROL_PREFIX = "/_standin/"


class SigningKey:
    """An RSA key pair with a key id, as Cloudflare Access publishes it."""

    def __init__(self) -> None:
        self.kid = secrets.token_hex(16)
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwk(self) -> dict:
        return {
            **RSAAlgorithm.to_jwk(self.private.public_key(), as_dict=True),
            "kid": self.kid,
            "alg": "RS256",
            "use": "sig",
        }

    def sign(self, claims: dict) -> str:
        return jwt.encode(claims, self.private, algorithm="RS256", headers={"kid": self.kid})


@dataclass
class AccessState:
    """Everything the stand-in knows; one instance per process."""

    issuer: str
    audience: str
    token_ttl: float = 8 * 3600
    current: SigningKey = field(default_factory=SigningKey)
    previous: SigningKey | None = None
    unpublished: SigningKey = field(default_factory=SigningKey)  # signs "unknown kid" tokens
    users: dict[str, dict] = field(default_factory=dict)
    down: dict[str, bool] = field(default_factory=lambda: {"certs": False, "identity": False})
    calls: dict[str, int] = field(default_factory=lambda: {"certs": 0, "identity": 0})

    def __post_init__(self) -> None:
        for demo in DEMO_USERS:
            self.set_user(f"{demo.username}@example.org", list(demo.groups))

    def set_user(self, email: str, groups: list[str], identity: dict | None = None) -> None:
        self.users[email] = {
            "groups": groups,
            "identity": identity or {},
            "uuid": str(uuid.uuid4()),
        }

    @property
    def published(self) -> list[SigningKey]:
        return [k for k in (self.current, self.previous) if k is not None]

    def rotate(self, keep_previous: bool) -> None:
        """Scheduled rotation keeps the old key published; a manual one revokes it at once."""
        self.previous = self.current if keep_previous else None
        self.current = SigningKey()

    def mint(self, spec: dict) -> str:
        """A token for ``spec``: ``email`` or ``common_name``, offsets, overrides, key choice."""
        now = int(time.time())
        iat = now + int(spec.get("iat_offset", 0))
        claims: dict = {
            "aud": [spec.get("aud", self.audience)],
            "iss": spec.get("iss", self.issuer),
            "iat": iat,
            "nbf": now + int(spec.get("nbf_offset", 0)),
            "exp": iat + int(spec.get("ttl", self.token_ttl)),
            "type": "app",
            "identity_nonce": spec.get("identity_nonce") or secrets.token_urlsafe(12),
            "country": "XX",
        }
        if "common_name" in spec:  # a service token: no email, empty sub
            claims.update(common_name=spec["common_name"], sub="")
        else:
            email = spec.get("email", "alice@example.org")
            user = self.users.get(email, {})
            claims.update(
                email=email, sub=user.get("uuid", str(uuid.uuid5(uuid.NAMESPACE_DNS, email)))
            )
        claims.update(spec.get("claims", {}))
        for name in spec.get("drop", []):
            claims.pop(name, None)
        key = {"current": self.current, "previous": self.previous, "unpublished": self.unpublished}[
            spec.get("key", "current")
        ]
        if key is None:
            raise web.HTTPConflict(text="no previous key to sign with")
        return key.sign(claims)

    def verify(self, token: str) -> dict | None:
        """The claims of a token this stand-in issued and still publishes the key of, else None."""
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            key = next(k for k in self.published if k.kid == kid)
            return jwt.decode(
                token,
                key.private.public_key(),
                algorithms=["RS256"],
                audience=self.audience,
                issuer=self.issuer,
            )
        except (jwt.PyJWTError, StopIteration):
            return None

    def identity(self, claims: dict) -> dict:
        """What get-identity answers: groups as Cloudflare's ``{id, name, email}`` objects."""
        email = claims.get("email", "")
        user = self.users.get(email, {"groups": [], "identity": {}, "uuid": claims.get("sub", "")})
        groups = [
            {"id": f"group-{g}", "name": g, "email": f"{g}@example.org"} for g in user["groups"]
        ]
        return {
            "email": email,
            "name": email.partition("@")[0].capitalize(),
            "user_uuid": user["uuid"],
            "identity_nonce": claims.get("identity_nonce"),
            "idp": {"id": "standin", "type": "standin"},
            "groups": groups,
            **user["identity"],
        }


def access_routes(state: AccessState) -> web.RouteTableDef:
    """The team-domain endpoints plus the ``/_standin`` control API."""
    routes = web.RouteTableDef()

    @routes.get("/cdn-cgi/access/certs")
    async def certs(request: web.Request) -> web.Response:
        state.calls["certs"] += 1
        if state.down["certs"]:
            raise web.HTTPServiceUnavailable(text="certs endpoint down (simulated)")
        return web.json_response({"keys": [k.jwk() for k in state.published]})

    @routes.get("/cdn-cgi/access/get-identity")
    async def get_identity(request: web.Request) -> web.Response:
        state.calls["identity"] += 1
        if state.down["identity"]:
            raise web.HTTPServiceUnavailable(text="get-identity down (simulated)")
        claims = state.verify(request.cookies.get(TOKEN_COOKIE, ""))
        if claims is None:
            raise web.HTTPBadRequest(text=f"no valid {TOKEN_COOKIE} cookie")
        return web.json_response(state.identity(claims))

    @routes.get("/cdn-cgi/access/logout")
    async def logout(request: web.Request) -> web.Response:
        response = web.Response(
            text="<!doctype html><title>Signed out</title><p>You are signed out of Cloudflare Access "
            '(local stand-in). <a href="/">Sign in again</a></p>',
            content_type="text/html",
        )
        response.del_cookie(TOKEN_COOKIE, path=HUB_APP_PATH)
        return response

    @routes.post("/_standin/tokens")
    async def mint(request: web.Request) -> web.Response:
        return web.json_response({"token": state.mint(await request.json())})

    @routes.post("/_standin/rotate")
    async def rotate(request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else {}
        state.rotate(keep_previous=body.get("keep_previous", True))
        return web.json_response(kids(state))

    @routes.post("/_standin/retire-previous")
    async def retire(request: web.Request) -> web.Response:
        state.previous = None  # the overlap window ended
        return web.json_response(kids(state))

    @routes.put("/_standin/users/{email}")
    async def put_user(request: web.Request) -> web.Response:
        body = await request.json()
        state.set_user(
            request.match_info["email"], list(body.get("groups", [])), body.get("identity")
        )
        return web.Response(status=204)

    @routes.put("/_standin/outage")
    async def outage(request: web.Request) -> web.Response:
        state.down.update(
            {k: bool(v) for k, v in (await request.json()).items() if k in state.down}
        )
        return web.json_response(state.down)

    @routes.get("/_standin/stats")
    async def stats(request: web.Request) -> web.Response:
        return web.json_response({"calls": state.calls, **kids(state)})

    return routes


def kids(state: AccessState) -> dict:
    return {
        "current": state.current.kid,
        "previous": state.previous.kid if state.previous else None,
        "unpublished": state.unpublished.kid,
    }


def control_guard(control_token: str | None):
    """Middleware: ``/_standin/*`` needs ``Authorization: Bearer <token>`` and JSON bodies."""

    @web.middleware
    async def guard(request: web.Request, handler):
        if not request.path.startswith(CONTROL_PREFIX):
            return await handler(request)
        if control_token is None:
            raise web.HTTPNotFound(text="the control API is off (no --control-token-file)")
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {control_token}".encode()):
            raise web.HTTPUnauthorized(
                text="the control API needs its bearer token",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if request.can_read_body and request.content_type != "application/json":
            raise web.HTTPUnsupportedMediaType(text="the control API takes application/json bodies")
        return await handler(request)

    return guard


def make_app(
    state: AccessState, upstream: str | None = None, control_token: str | None = None
) -> web.Application:
    app = web.Application(middlewares=[control_guard(control_token)])
    app.add_routes(access_routes(state))
    if upstream:
        from .cloudflare_edge import add_edge_routes

        add_edge_routes(app, state, upstream)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="cloudflare_standin", description=__doc__.split("\n\n")[0]
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


@dataclass
class CloudflareStandIn:
    """The stand-in as a managed process, and a client for its control API."""

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
        return f"{self.url}/cdn-cgi/access/certs"

    def hub_config_overrides(self) -> dict[str, dict]:
        """The hub config that makes ``cloudflare-access`` trust this stand-in as Cloudflare."""
        return {
            "JupyterHub": {"authenticator_class": "cloudflare-access"},
            "CloudflareAccessAuthenticator": {"team_domain": self.url, "audience": [self.audience]},
        }

    def argv(self) -> list[str]:
        """The command line; writes the control token to an owner-only file it names."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        token_file = self.log_dir / "cloudflare-standin.control-token"
        token_file.touch(mode=0o600)
        os.chmod(token_file, 0o600)
        token_file.write_text(self.control_token)
        argv = [sys.executable, "-m", __name__, "--port", str(self.port), "--aud", self.audience]
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

    async def _call(self, method: str, path: str, body: dict | None = None) -> dict | None:
        headers = {"Authorization": f"Bearer {self.control_token}"}
        url = f"{self.url}{CONTROL_PREFIX}{path.lstrip('/')}"
        async with (
            aiohttp.ClientSession() as s,
            s.request(method, url, json=body, headers=headers) as r,
        ):
            if r.status >= 400:
                raise RuntimeError(f"stand-in {method} {path}: {r.status} {await r.text()}")
            return await r.json() if r.status != 204 else None

    async def mint(self, **spec) -> str:
        """A token: ``email=``/``common_name=``, ``ttl=``, ``nbf_offset=``, ``iat_offset=``,
        ``aud=``, ``iss=``, ``key="current"|"previous"|"unpublished"``, ``claims=``, ``drop=``."""
        return (await self._call("POST", "/tokens", spec))["token"]

    async def rotate(self, keep_previous: bool = True) -> dict:
        return await self._call("POST", "/rotate", {"keep_previous": keep_previous})

    async def retire_previous(self) -> dict:
        return await self._call("POST", "/retire-previous", {})

    async def set_user(self, email: str, groups: list[str], identity: dict | None = None) -> None:
        await self._call("PUT", f"/users/{email}", {"groups": groups, "identity": identity})

    async def outage(self, **down: bool) -> None:
        await self._call("PUT", "/outage", down)

    async def stats(self) -> dict:
        return await self._call("GET", "/stats")


if __name__ == "__main__":
    main()
