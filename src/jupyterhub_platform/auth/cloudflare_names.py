"""The names Cloudflare Access gives things on the wire: one place for the authenticator, the
get-identity client and the local stand-in."""

from __future__ import annotations

TOKEN_HEADER = "Cf-Access-Jwt-Assertion"
"""The header Cloudflare adds to every request it forwards: the signed Access token."""
TOKEN_COOKIE = "CF_Authorization"
"""The cookie holding the same token in the browser (and what get-identity reads)."""
CERTS_PATH = "/cdn-cgi/access/certs"
GET_IDENTITY_PATH = "/cdn-cgi/access/get-identity"
LOGOUT_PATH = "/cdn-cgi/access/logout"
LOGIN_PATH = "/cdn-cgi/access/login"
