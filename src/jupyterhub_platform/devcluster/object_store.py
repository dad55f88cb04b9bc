"""The local STS + S3 stand-in of the credentials service (``LocalPlatform(credentials=True)``):
moto's server in this process, with IAM authentication on, so S3 refuses unknown and wrong keys
as AWS does.

AWS serves ``AssumeRoleWithWebIdentity`` unsigned (the web identity token is the credential);
moto 5.2 with authentication on would try to read a signature it does not have, so such a POST
is served with authentication off for that request alone. moto checks neither the token nor the
role's trust policy: what stands between a user and the keys is the hub's own token verification
(:mod:`jupyterhub_platform.auth.token_verifier`), which is what the tests exercise.

At start (authentication still off) boto3 creates, against this very server, the role (a trust
policy for web identities, an inline policy allowing ``s3:*``) and the bucket; then the ready
file gets ``{"url", "role_arn", "bucket", "region"}`` as JSON.

``python -m jupyterhub_platform.devcluster.object_store --port N --ready-file F --bucket B --role R``
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import sys
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from urllib.parse import parse_qs

from .procs import ManagedProcess, ProcessExited, wait_for

REGION = "us-east-1"
ACCOUNT = "123456789012"
"""moto's default account: the role ARN's."""
SETUP_KEYS = {"aws_access_key_id": "setup", "aws_secret_access_key": "setup"}
"""What boto3 signs the setup calls with (authentication is off until they are done)."""
ASSUME = "AssumeRoleWithWebIdentity"

log = logging.getLogger("object-store")


def trust_policy() -> str:
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Federated": "*"},
            "Action": "sts:AssumeRoleWithWebIdentity",
        }],
    })  # fmt: skip


def s3_policy() -> str:
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
    })  # fmt: skip


def unsigned_assume(environ: dict) -> bool:
    """Whether the request is an unsigned ``AssumeRoleWithWebIdentity`` POST; the body is read
    and put back, so the application reads it again."""
    if environ.get("REQUEST_METHOD") != "POST" or environ.get("HTTP_AUTHORIZATION"):
        return False
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return False
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    form = parse_qs(body.decode("utf-8", "replace"))
    return form.get("Action") == [ASSUME]


def with_unsigned_assume(app: Callable) -> Callable:
    """``app`` with unsigned ``AssumeRoleWithWebIdentity`` served without authentication; one
    log line per request names the STS action (never the token)."""
    from moto.core.authorization import disable_iam_authentication

    def serve(environ: dict, start_response: Callable) -> Iterable[bytes]:
        if unsigned_assume(environ):
            log.info("request: sts %s", ASSUME)
            with disable_iam_authentication():
                return list(app(environ, start_response))
        return app(environ, start_response)

    return serve


def set_up(url: str, bucket: str, role: str) -> str:
    """The role and the bucket, created through boto3; the role's ARN."""
    import boto3

    iam = boto3.client("iam", endpoint_url=url, region_name=REGION, **SETUP_KEYS)
    arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=trust_policy())["Role"]["Arn"]
    iam.put_role_policy(RoleName=role, PolicyName="s3-all", PolicyDocument=s3_policy())
    s3 = boto3.client("s3", endpoint_url=url, region_name=REGION, **SETUP_KEYS)
    s3.create_bucket(Bucket=bucket)
    return arn


def authentication_on() -> None:
    """From now on every signed request must carry valid keys (moto counts requests served
    without authentication; none are left)."""
    from moto import settings

    settings.INITIAL_NO_AUTH_ACTION_COUNT = 0


def serve(host: str, port: int, ready_file: Path, bucket: str, role: str) -> None:
    """Serve until killed; the ready file is written once the role and bucket exist."""
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    app = with_unsigned_assume(DomainDispatcherApplication(create_backend_app))
    server = make_server(host, port, app, threaded=False, request_handler=MotoRequestHandler)
    url = f"http://{host}:{port}"

    def setup() -> None:
        try:
            arn = set_up(url, bucket, role)
        except Exception:
            log.exception("setting up the role and the bucket failed")
            server.shutdown()
            return
        authentication_on()
        ready = {"url": url, "role_arn": arn, "bucket": bucket, "region": REGION}
        tmp = ready_file.with_name(ready_file.name + ".tmp")
        tmp.write_text(json.dumps(ready))
        tmp.replace(ready_file)
        log.info("ready: %s (role %s, bucket %s)", url, arn, bucket)

    threading.Thread(target=setup, daemon=True).start()
    server.serve_forever()


def command(port: int, ready_file: Path, bucket: str, role: str) -> list[str]:
    """The command line that runs the store on ``127.0.0.1:port``."""
    return [
        sys.executable, "-m", __name__, "--port", str(port), "--ready-file", str(ready_file),
        "--bucket", bucket, "--role", role,
    ]  # fmt: skip


async def wait_ready(proc: ManagedProcess, ready_file: Path, timeout: float = 60.0) -> dict:
    """The ready file's contents once the store wrote it; fails with its log if it exits."""

    def ready() -> dict | None:
        if not proc.running():
            raise ProcessExited(f"the object store exited ({proc.returncode}):\n{proc.log_tail()}")
        return json.loads(ready_file.read_text()) if ready_file.exists() else None

    return await wait_for(ready, timeout=timeout, interval=0.1, what="the object store")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m jupyterhub_platform.devcluster.object_store")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ready-file", type=Path, required=True)
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--role", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(name)s: %(message)s")
    serve(args.host, args.port, args.ready_file, args.bucket, args.role)


if __name__ == "__main__":
    main()
