"""Test support, public so tests and benchmarks share one home (as kopf ships ``kopf.testing``).

Needs the ``dev`` extra. Nothing in the production packages imports it.

- :mod:`.oidc` — :class:`Provider`, the development OIDC provider with the test users, and its
  flows (code flow, dynamic client registration, revocation).
- :mod:`.hub` — :func:`start_hub`: a real hub + configurable-http-proxy that never spawns, and
  the authenticator settings for it (:func:`oidc_settings`, :func:`generic_settings`).
- :mod:`.cloudflare` — :class:`CloudflareStandIn`: the Cloudflare Access stand-in as a process
  plus a client of its control API (mint tokens, rotate keys, set users, cause outages).
- :mod:`.shipped` — the shipped values and their inline policy as a file.
- :mod:`.browser` — headless Chromium options for Playwright.

RSA/JWK helpers for forged tokens are :mod:`jupyterhub_platform.devcluster.cloudflare.keys`
(re-exported here); the whole local platform is :class:`jupyterhub_platform.devcluster.platform.LocalPlatform`.
"""

from __future__ import annotations

from jupyterhub_platform.devcluster.cloudflare.keys import SigningKey, new_rsa_key, public_jwk

from .browser import launch_options
from .cloudflare import CloudflareStandIn
from .hub import Hub, generic_settings, oidc_settings, start_hub
from .oidc import CLIENT_ID, CLIENT_SECRET, USERS, Provider, claims
from .shipped import shipped_policy_file, shipped_values

__all__ = [
    "CLIENT_ID",
    "CLIENT_SECRET",
    "USERS",
    "CloudflareStandIn",
    "Hub",
    "Provider",
    "SigningKey",
    "claims",
    "generic_settings",
    "launch_options",
    "new_rsa_key",
    "oidc_settings",
    "public_jwk",
    "shipped_policy_file",
    "shipped_values",
    "start_hub",
]
