"""A local stand-in for Cloudflare Access: signing keys, tokens, get-identity, logout, the edge.

Serves what the hub's ``cloudflare-access`` authenticator talks to on the team domain
(``/cdn-cgi/access/certs``, ``get-identity``, ``logout``) and, under ``/_standin/``, a control API
for tests: mint tokens (any claims, any of its keys), rotate keys (scheduled: the previous key
stays published; manual: it is dropped), set users' groups, and simulate outages. Whoever can
mint tokens is anyone, so the control API answers only requests with the bearer token from
``--control-token-file`` and JSON bodies (a cross-site form or ``text/plain`` fetch cannot send
either); without that file it is off. With ``--upstream`` it is also the *edge*
(:mod:`.edge`): the sign-in page and a reverse proxy that adds ``Cf-Access-Jwt-Assertion`` to
every request it forwards.

Modules: :mod:`.keys` (RSA keys as JWKs), :mod:`.state` (keys, users, outages), :mod:`.routes`
(the HTTP endpoints), :mod:`.edge`, :mod:`.process` (the stand-in as a managed process; the
local platform runs it in Cloudflare mode) and ``python -m jupyterhub_platform.devcluster.cloudflare``.
The control-API client tests use is :class:`jupyterhub_platform.testing.CloudflareStandIn`.
"""
