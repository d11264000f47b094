"""Render an executed notebook to one self-contained HTML file with nbconvert.

Code is hidden (reviewers read results, not code) and nothing is loaded from the
network: the ``crm_offline`` template is nbconvert's ``lab`` template without the
require.js, MathJax, Mermaid and widget scripts it would fetch from a CDN. Figures are
embedded as PNG data.
"""
from __future__ import annotations

import re
from pathlib import Path

import nbformat

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


def render_html(nb: nbformat.NotebookNode, title: str) -> str:
    """HTML of an executed notebook, code hidden, openable offline.

    Parameters
    ----------
    nb : NotebookNode
        The executed (and :func:`~crm_lib.report.execute.make_reproducible`) notebook.
    title : str
        The page title.
    """
    nb.metadata["title"] = title
    body, _ = html_exporter().from_notebook_node(nb)
    return body


def remote_references(html: str) -> list[str]:
    """Snippets of ``html`` that would make a browser load something from the network."""
    return [html[max(0, m.start() - 20): m.end() + 60] for m in REMOTE_REFERENCE.finditer(html)]
