"""The profile- and group-aware idle culler (``jupyterhub-platform-culler``), docs/culler.md."""
