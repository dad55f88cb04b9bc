"""``GET /hub/api/platform/quotas``: use by quota group, for admins (JSON).

A hub API handler rather than a CLI: use lives in the running hub's memory (pending spawns,
reservations), which no other process sees. It needs ``admin:users`` (who runs what is private)
and reads the same policy, profiles and spawners the quota check does: no Kubernetes request.
"""

from __future__ import annotations

import json

from jupyterhub import orm
from jupyterhub.apihandlers.base import APIHandler
from jupyterhub.scopes import needs_scope
from tornado import web

from jupyterhub_platform.policy.quota_decision import group_use

from .quota_gate import counted_servers
from .startup import configured_sources

ROUTE = r"/api/platform/quotas"


class QuotaUsageAPIHandler(APIHandler):
    @needs_scope("admin:users")
    def get(self):
        sources = configured_sources(self.settings["config"], self.log)
        if sources.policy is None:
            raise web.HTTPError(404, "No group policy is configured, so there are no quotas")
        policy, catalogue = sources.policy.current(), sources.catalogue.current()
        key = policy.normaliser.key
        wanted = {key(q.group) for q in policy.quotas.groups}
        groups = [g for g in self.db.query(orm.Group) if key(g.name) in wanted]
        by_key = {key(g.name): g for g in groups}
        members = {
            q.group: [u.name for u in by_key[key(q.group)].users]
            for q in policy.quotas.groups
            if key(q.group) in by_key
        }
        wrappers = [self.users[u.id] for g in groups for u in g.users if u.id in self.users]
        unique = list({u.name: u for u in wrappers}.values())
        counted = counted_servers(catalogue, unique, skip=("", ""))
        self.write(
            json.dumps(
                {
                    "multi_group": policy.quotas.multi_group,
                    "groups": group_use(policy.quotas, members, counted),
                }
            )
        )


def quota_api_handlers() -> list[tuple[str, type]]:
    """The admin view's route, for an authenticator's ``get_handlers``."""
    return [(ROUTE, QuotaUsageAPIHandler)]
