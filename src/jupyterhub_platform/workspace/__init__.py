"""The workspace side of the platform: a jupyter_server extension run by jupyterhub-singleuser.

It makes the activity the server reports to the hub honest (docs/activity.md). It imports only
jupyter_server's neighbours (tornado, traitlets, psutil if present), never the hub side.
"""


def _jupyter_server_extension_points():
    return [{"module": "jupyterhub_platform.workspace"}]


def _load_jupyter_server_extension(serverapp):
    from .extension import load

    load(serverapp)
