"""Run in a hub pod's environment: the stock hub config through ``JupyterHub.initialize()``, then
a ProfileSpawner per offered profile building its pod (default choices), and one building the
jupyterlab profile's ``ml-gpu`` size. Writes a JSON report to ``argv[2]``.

Usage: ``python stock_hub_probe.py <etc>/jupyterhub_config.py report.json [GROUP]`` (cwd: the
hub's working directory); the probe user is in GROUP (default: platform-admins, to whom the
shipped policy offers every profile). Nothing listens and nothing is spawned.
"""

from __future__ import annotations

import asyncio
import json
import sys

from jupyterhub import orm
from jupyterhub.app import JupyterHub
from kubernetes_asyncio.client import ApiClient
from tornado import web

ADMIN_GROUP = "platform-admins"  # the shipped policy offers every profile to this group
GPU_PROFILE, GPU_SIZE = "jupyterlab", "ml-gpu"


async def probe(config_file: str, group_name: str = ADMIN_GROUP) -> dict:
    JupyterHub.clear_instance()
    app = JupyterHub.instance()
    await app.initialize(
        ["--config", config_file, "--JupyterHub.db_url=sqlite://", "--JupyterHub.pid_file="]
    )
    group = orm.Group(name=group_name)
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

        async def pod_of(name: str, user_options: dict) -> dict:
            app.db.add(orm.Spawner(name=name, user=orm_user))  # a named server each
            app.db.commit()
            spawner = user.spawners[name]
            spawner.user_options = user_options
            await spawner.load_user_options()
            spawner.api_token = "probe-token"
            return api.sanitize_for_serialization(await spawner.get_pod_manifest())

        for offer in first.available()[1]:
            slug = offer.profile.slug
            report["pods"][slug] = await pod_of(slug, {"profile": slug})
        try:
            report["gpu_pod"] = await pod_of("gpu", {"profile": GPU_PROFILE, "size": GPU_SIZE})
        except web.HTTPError as exc:  # the policy does not give the group that size
            report["gpu_pod"] = {"refused": exc.status_code}
    return report


if __name__ == "__main__":
    result = asyncio.run(probe(*sys.argv[1:2], *sys.argv[3:4]))
    with open(sys.argv[2], "w") as out:
        json.dump(result, out)
