"""Every JupyterHub/KubeSpawner internal the package relies on is still there, as expected."""

from __future__ import annotations

from jupyterhub.apihandlers.users import default_handlers

from jupyterhub_platform import upstream
from jupyterhub_platform.spawner.refusals import RefusingServerAPIHandler, server_api_handlers


def test_every_listed_internal_is_as_expected():
    assert upstream.problems() == []


def test_a_changed_internal_is_reported_by_name():
    gone = upstream.Internal("jupyterhub.handlers.base:BaseHandler", "no_such_method", "a test")
    rewired = upstream.Internal(
        "jupyterhub.handlers.base:BaseHandler", "get_current_user", "a test", "no such line"
    )
    assert gone.problem() == (
        "jupyterhub.handlers.base:BaseHandler.no_such_method (used by a test): missing"
    )
    assert "no longer contains 'no such line'" in rewired.problem()


def test_the_refusing_handler_serves_every_server_api_route():
    served = {pattern for pattern, handler in server_api_handlers()}
    upstream_routes = {p for p, h, *_ in default_handlers if h is upstream.SERVER_API_HANDLER}
    assert served == upstream_routes and len(served) == 2  # default and named servers
    assert all(h is RefusingServerAPIHandler for _, h in server_api_handlers())
