"""Hub configuration the benchmarks share."""

from __future__ import annotations

#: For users made through the REST API: the API puts them in groups, and they have no tokens to
#: refresh (the authenticator would do both at login). Goes under chart values ``hub.config``.
API_USERS = {
    "Authenticator": {
        "manage_groups": False,
        "auth_refresh_age": 0,
        "refresh_pre_spawn": False,
    }
}
