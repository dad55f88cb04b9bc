"""The shipped chart-values combinations (``-f`` order) and the authenticator each configures:
``test_stock_chart`` runs each on the stock hub config, ``test_check`` runs ``check`` on each."""

from __future__ import annotations

COMBINATIONS = {
    "values": ["values.yaml"],
    "values+cloudflare-access": ["values.yaml", "cloudflare-access.yaml"],
    "values+oidc-keycloak": ["values.yaml", "oidc-keycloak.yaml"],
    "values+oidc-google": ["values.yaml", "oidc-google.yaml"],
    "values+gpu": ["values.yaml", "gpu.yaml"],
    "values+backup-restic": ["values.yaml", "backup-restic.yaml"],
    "values+backup-snapshots": ["values.yaml", "backup-snapshots.yaml"],
    "values+credentials": ["values.yaml", "credentials.yaml"],
    "values+monitoring": ["values.yaml", "monitoring.yaml"],
}
EXPECTED_AUTHENTICATOR = {
    "values": "OIDCAuthenticator",
    "values+cloudflare-access": "CloudflareAccessAuthenticator",
    "values+oidc-keycloak": "OIDCAuthenticator",
    "values+oidc-google": "OIDCAuthenticator",
    "values+gpu": "OIDCAuthenticator",
    "values+backup-restic": "OIDCAuthenticator",
    "values+backup-snapshots": "OIDCAuthenticator",
    "values+credentials": "OIDCAuthenticator",
    "values+monitoring": "OIDCAuthenticator",
}
