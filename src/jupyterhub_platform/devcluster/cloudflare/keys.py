"""RSA signing keys published as JWKs: what the stand-in signs Access tokens with, and what tests
use to forge tokens an issuer trusts."""

from __future__ import annotations

import secrets

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm


def new_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_jwk(key: rsa.RSAPrivateKey, kid: str) -> dict:
    """The public half of ``key`` as a JWK set entry (RS256 signatures)."""
    return {
        **RSAAlgorithm.to_jwk(key.public_key(), as_dict=True),
        "kid": kid,
        "alg": "RS256",
        "use": "sig",
    }


class SigningKey:
    """An RSA key pair with a key id, as Cloudflare Access (or any OIDC issuer) publishes it."""

    def __init__(self, kid: str | None = None) -> None:
        self.kid = kid or secrets.token_hex(16)
        self.private = new_rsa_key()

    def jwk(self) -> dict:
        return public_jwk(self.private, self.kid)

    def sign(self, claims: dict, **headers) -> str:
        return jwt.encode(
            claims, self.private, algorithm="RS256", headers={"kid": self.kid, **headers}
        )
