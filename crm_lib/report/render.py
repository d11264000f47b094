"""Render an executed notebook to one self-contained HTML file with nbconvert.

Code is hidden (reviewers read results, not code) and nothing is loaded from the
network: the ``crm_offline`` template is nbconvert's ``lab`` template without the
require.js, MathJax, Mermaid and widget scripts it would fetch from a CDN. Figures are
embedded as PNG data.
"""
from __future__ import annotations

import re
from pathlib import Path

import copy
from typing import Sequence

import nbformat

from crm_lib.report.chrome import add_chrome, annotate_figures, code_version

TEMPLATES_DIR = Path(__file__).parent / "templates"
TEMPLATE_NAME = "crm_offline"

#: Anything that makes a browser fetch from another host.
REMOTE_REFERENCE = re.compile(
    r"""(?:<script[^>]+src\s*=\s*["']?(?:https?:)?//)"""
    r"""|(?:<link[^>]+href\s*=\s*["']?(?:https?:)?//)"""
    r"""|(?:@import\s+(?:url\()?["']?(?:https?:)?//)"""
    r"""|(?:url\(\s*["']?(?:https?:)?//)"""
    r"""|(?:<img[^>]+src\s*=\s*["']?(?:https?:)?//)""",
    re.IGNORECASE,
)


def html_exporter():
    """The configured nbconvert exporter: offline template, code and prompts hidden."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(
        template_name=TEMPLATE_NAME,
        extra_template_basedirs=[str(TEMPLATES_DIR)],
    )
    exporter.exclude_input = True
    exporter.exclude_input_prompt = True
    exporter.exclude_output_prompt = True
    exporter.embed_images = True
    return exporter


def render_html(nb: nbformat.NotebookNode, title: str, *, pages: Sequence[tuple[str, str]] = (),
                current: str = "", packages: dict[str, str] | None = None) -> str:
    """HTML of an executed notebook, code hidden, openable offline, with its page chrome.

    Parameters
    ----------
    nb : NotebookNode
        The executed (and :func:`~crm_lib.report.execute.make_reproducible`) notebook.
    title : str
        The page title.
    pages : sequence of (file name, title)
        The reports of the run in order, for the previous/next links.
    current : str
        This page's file name in ``pages``.
    packages : dict, optional
        Package versions for the footer (default: :func:`~crm_lib.report.index.package_versions`).
    """
    from crm_lib.report.index import package_versions  # index imports nothing from here; avoids a cycle later

    nb = annotate_figures(copy.deepcopy(nb))
    nb.metadata["title"] = title
    body, _ = html_exporter().from_notebook_node(nb)
    return add_chrome(body, pages=pages, current=current,
                      packages=packages if packages is not None else package_versions(), version=code_version())


def remote_references(html: str) -> list[str]:
    """Snippets of ``html`` that would make a browser load something from the network."""
    return [html[max(0, m.start() - 20): m.end() + 60] for m in REMOTE_REFERENCE.finditer(html)]
