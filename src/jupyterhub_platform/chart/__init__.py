"""The stock Zero-to-JupyterHub chart, used as released: finding it, rendering it, reading its values.

Both ``jupyterhub-platform dev`` (which runs the chart's own hub configuration locally) and
``jupyterhub-platform check`` (which checks values files before ``helm upgrade``) go through the
real chart and the pinned helm; nothing here re-implements the chart's mapping of values to
JupyterHub configuration.
"""
