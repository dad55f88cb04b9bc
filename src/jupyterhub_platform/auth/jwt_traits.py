"""The token-verification settings every JWT-verifying authenticator shares, in one place.

``platform-oidc`` and ``cloudflare-access`` both verify RS256 tokens against a cached key set
(:class:`~.jwks.JWKSCache`), so both configure it with the same three traits. The names each had
before (``jwks_*`` on OIDC, ``certs_*`` on Cloudflare) remain as deprecated aliases, declared
with :func:`renamed`: setting one logs a warning and sets the new trait (the pattern of
JupyterHub's and oauthenticator's ``_deprecated_aliases``).
"""

from __future__ import annotations

from traitlets import Float
from traitlets.config import LoggingConfigurable

RENAMED_IN = "0.1"


def renamed(new: str) -> Float:
    """A deprecated trait that forwards what it is set to to the trait ``new``."""
    return Float(
        None,
        allow_none=True,
        config=True,
        help=f"Deprecated since {RENAMED_IN}: the same as ``{new}``, which replaces it.",
    ).tag(renamed_to=new)


class JWTVerifierTraits(LoggingConfigurable):
    """Clock-skew leeway and key-set caching for authenticators that verify JWTs."""

    leeway = Float(
        30.0,
        config=True,
        help="""Seconds of clock skew tolerated when checking ``exp``, ``nbf`` and ``iat``.""",
    )
    keys_cache_ttl = Float(
        3600.0,
        config=True,
        help="""Seconds the issuer's signing keys (JWKS) are cached before they are fetched again.""",
    )
    keys_min_refetch_interval = Float(
        60.0,
        config=True,
        help="""Minimum seconds between key-set fetches triggered by tokens with an unknown key id.""",
    )

    def __init__(self, **kwargs):
        # Observed before the config is applied, so values given under old names arrive too.
        self.observe(self._forward_renamed, names=list(self.traits(renamed_to=bool)))
        super().__init__(**kwargs)

    def _forward_renamed(self, change) -> None:
        new = self.trait_metadata(change.name, "renamed_to")
        cls = type(self).__name__
        self.log.warning(
            "%s.%s is deprecated since jupyterhub-platform %s: use %s.%s",
            cls,
            change.name,
            RENAMED_IN,
            cls,
            new,
        )
        if change.new is not None:
            setattr(self, new, change.new)
