"""How the hub authenticates itself at the provider's token endpoint (RFC 6749 §2.3.1).

OAuthenticator sends the client secret in the form body unless told otherwise, but a provider may
accept only HTTP Basic, or accept it only for some grants (Authlib's refresh grant, e.g. in
oidc-provider-mock 0.3.x, takes only ``client_secret_basic``). The method therefore follows the
provider's discovery document, ``token_endpoint_auth_methods_supported``, which defaults to
``client_secret_basic`` when absent (RFC 8414 §2, OIDC Discovery §3), and is the same for every
token request: the code exchange and every refresh.
"""

from __future__ import annotations

from collections.abc import Sequence

BASIC = "client_secret_basic"
POST = "client_secret_post"
METHODS = (BASIC, POST)
"""The methods this authenticator can use, in order of preference."""
DEFAULT_WHEN_UNADVERTISED = BASIC


class ClientAuthMethodError(ValueError):
    """The provider accepts none of the methods the hub can use."""


def choose_method(advertised: Sequence[str], forced: str = "") -> str:
    """The client authentication method for the token endpoint.

    ``forced`` (the ``token_endpoint_auth_method`` trait) wins; otherwise the first of
    :data:`METHODS` the provider advertises, or ``client_secret_basic`` when it advertises none.
    """
    if forced:
        if forced not in METHODS:
            raise ClientAuthMethodError(
                f"token_endpoint_auth_method: {forced!r} is not one of {', '.join(METHODS)}"
            )
        return forced
    if not advertised:
        return DEFAULT_WHEN_UNADVERTISED
    for method in METHODS:
        if method in advertised:
            return method
    raise ClientAuthMethodError(
        "the provider's token endpoint accepts only "
        f"{', '.join(advertised)} (token_endpoint_auth_methods_supported); "
        f"platform-oidc authenticates with {' or '.join(METHODS)}"
    )
