"""End one browser's hub session the way JupyterHub's logout does, from inside ``refresh_user``.

Refusing a stale session is not enough when someone else now sits at the browser: JupyterHub
ties the OAuth tokens it issued to the user's servers for this browser to the session id, and
the servers' cookies hold those tokens, so the previous user's servers would keep answering.
Like ``BaseHandler.clear_login_cookie`` (the logout), this revokes the user's tokens of the
session id and clears the hub's cookies; it also expires the user's server cookies in the same
response, so the browser drops them at once (a server may otherwise trust a revoked token for
up to its ``HubAuth.cache_max_age``).
"""

from __future__ import annotations

from jupyterhub import orm
from jupyterhub.handlers.base import SESSION_COOKIE_NAME
from jupyterhub.utils import url_escape_path, url_path_join


def end_browser_session(handler, user) -> int:
    """End ``user``'s session at the browser of ``handler``'s request; the tokens revoked."""
    session_id = handler.get_session_cookie()
    revoked = 0
    if session_id:
        tokens = handler.db.query(orm.APIToken).filter_by(user_id=user.id, session_id=session_id)
        for token in tokens:
            handler.db.delete(token)
            revoked += 1
        handler.db.commit()
        handler.clear_cookie(SESSION_COOKIE_NAME, path=handler.base_url)
    handler.clear_cookie(handler.hub.cookie_name, path=handler.hub.base_url)
    for spawner in user.all_spawners():
        # a server's HubOAuth cookie is named by its OAuth client id, scoped to its URL prefix
        if spawner.oauth_client_id:
            prefix = url_path_join(user.base_url, url_escape_path(spawner.name), "/")
            handler.clear_cookie(spawner.oauth_client_id, path=prefix)
    return revoked
