"""Run in a hub pod's environment: the stock hub config through ``JupyterHub.initialize()``, then
a ProfileSpawner per offered profile building its pod. Writes a JSON report to ``argv[2]``.

Usage: ``python stock_hub_probe.py <etc>/jupyterhub_config.py report.json`` (cwd: the hub's
working directory). Nothing listens and nothing is spawned.
"""

from __future__ import annotations

import asyncio
import json
import sys

from jupyterhub import orm
from jupyterhub.app import JupyterHub
from kubernetes_asyncio.client import ApiClient

ADMIN_GROUP = "platform-admins"  # the shipped policy offers every profile to this group


async def probe(config_file: str) -> dict:
    JupyterHub.clear_instance()
    app = JupyterHub.instance()
    await app.initialize(
        ["--config", config_file, "--JupyterHub.db_url=sqlite://", "--JupyterHub.pid_file="]
    )
    group = orm.Group(name=ADMIN_GROUP)
    orm_user = orm.User(name="probe")
    orm_user.groups.append(group)
    app.db.add_all([group, orm_user])
    app.db.commit()
    user = app.users.add(orm_user)
    first = user.spawners[""]
    report = {
        "authenticator": type(app.authenticator).__name__,
        "spawner": type(first).__name__,
        "discovered": getattr(getattr(app.authenticator, "discovery", None), "metadata", None)
        is not None,
        "pods": {},
    }
    async with ApiClient() as api:
        for offer in first.available()[1]:
            slug = offer.profile.slug
            app.db.add(orm.Spawner(name=slug, user=orm_user))  # a named server per profile
            app.db.commit()
            spawner = user.spawners[slug]
            spawner.user_options = {"profile": slug}
            await spawner.load_user_options()
            spawner.api_token = "probe-token"
            pod = await spawner.get_pod_manifest()
            report["pods"][slug] = api.sanitize_for_serialization(pod)
    return report


if __name__ == "__main__":
    result = asyncio.run(probe(sys.argv[1]))
    with open(sys.argv[2], "w") as out:
        json.dump(result, out)
