"""Sphinx configuration: the Markdown pages (MyST) and the configuration reference generated from
the traits (autodoc-traits). Built by ``nox -s docs`` with warnings as errors."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))

import configurables  # noqa: E402

import jupyterhub_platform  # noqa: E402

project = "jupyterhub-platform"
author = "the jupyterhub-platform developers"
copyright = "the jupyterhub-platform developers; BSD-3-Clause"  # noqa: A001
release = jupyterhub_platform.__version__
version = release

extensions = ["myst_parser", "autodoc_traits", "sphinx.ext.autodoc"]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "_ext", "README.md"]
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]
autodoc_member_order = "bysource"
# Links to the repository's files outside docs/ (chart values, profiles, images) point at GitHub.
REPOSITORY = "https://github.com/example/jupyterhub-platform/blob/main"

html_theme = "pydata_sphinx_theme"
html_title = "jupyterhub-platform"
html_static_path = ["_static"]
html_theme_options = {
    "github_url": "https://github.com/example/jupyterhub-platform",
    "navigation_with_keys": False,
    "show_toc_level": 2,
}
html_context = {"default_mode": "light"}
html_show_sourcelink = False


def _write_reference(app) -> None:
    """The configuration reference, from the code's traits (never edited by hand)."""
    page = HERE / "reference" / "configuration.md"
    page.parent.mkdir(exist_ok=True)
    text = configurables.reference_page(configurables.configurables())
    if not page.exists() or page.read_text() != text:
        page.write_text(text)


def _repository_links(app, docname, source) -> None:
    """``](../chart-values/x)``-style links leave the docs: they become links to the repository."""
    source[0] = source[0].replace("](../", f"]({REPOSITORY}/")


def setup(app):
    app.connect("builder-inited", _write_reference)
    app.connect("source-read", _repository_links)
