"""jupyterhub-platform: a multi-tenant research platform on the stock Zero-to-JupyterHub chart."""

__version__ = "0.1.0.dev0"
