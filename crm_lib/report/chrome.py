"""Page chrome of a rendered report: contents, previous/next, footer, alt text, fixed ids.

Everything here is a pure function of the executed notebook, the run's list of pages
and the code version, so two renders of the same data are byte-identical (no clock, no
random ids: pandas Styler's random ``T_xxxxx`` table ids are renumbered in page order).
No script is added: the table of contents is plain HTML (``<details>``), so the pages
stay readable offline and with scripts disabled.
"""
from __future__ import annotations

import functools
import html
import re
import subprocess
from pathlib import Path
from typing import Sequence

import nbformat

#: Markers the ``crm_offline`` template leaves for :func:`add_chrome` to fill.
TOP_MARK = "<!--crm:top-->"
BOTTOM_MARK = "<!--crm:bottom-->"
#: What nbconvert writes when an image has no alt text; never shown on our pages.
DEFAULT_ALT = "No description has been provided for this image"
ALT_MAX_CHARS = 240

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
# Emphasis stars, code ticks and link targets go; underscores stay (they are in knob names).
_MD_NOISE = re.compile(r"[*`]|\[([^\]]*)\]\([^)]*\)")
# pandas Styler's default uuid is five hex digits: T_1a2b3 (and T_1a2b3_row0_col1 ...).
_STYLER_ID = re.compile(r"(?<![\w-])T_([0-9a-f]{5})(?![0-9a-zA-Z])")
_LIST_ITEM = re.compile(r"([-*+]|\d+\.)\s")
_H23 = re.compile(r'<h([23])\s+id="([^"]+)"[^>]*>(.*?)</h\1>', re.DOTALL)
_TAG = re.compile(r"<[^>]+>")
_TABLE_OPEN = re.compile(r"<table\b")
_TABLE_CLOSE = re.compile(r"</table>")


def _plain(markdown: str) -> str:
    """Markdown inline text without emphasis, code ticks or link targets."""
    return " ".join(_MD_NOISE.sub(lambda m: m.group(1) or "", markdown).split())


def _first_sentence(markdown: str) -> str:
    """The first sentence of the first paragraph of prose (not a heading, table, list or HTML)."""
    paragraph: list[str] = []
    for line in markdown.splitlines() + [""]:
        stripped = line.strip()
        prose = stripped and not _HEADING.match(stripped) and not stripped.startswith(("|", "<", ">"))
        prose = prose and not _LIST_ITEM.match(stripped)
        if prose:
            paragraph.append(stripped)
        elif paragraph:
            break
    text = _plain(" ".join(paragraph))
    match = re.match(r"(.+?[.!?])(\s|$)", text)
    return (match.group(1) if match else text)[:ALT_MAX_CHARS]


def _shorten(text: str, limit: int = ALT_MAX_CHARS) -> str:
    """``text`` cut at a word boundary to at most ``limit`` characters (with an ellipsis when cut)."""
    if len(text) <= limit:
        return text
    return text[: limit - 1].rsplit(" ", 1)[0].rstrip(",;:") + "\u2026"


def annotate_figures(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Give every image output a figure number, a caption and an alt text.

    The caption is the one the plot function computed (``metadata['image/png']
    ['crm_caption']``, see :func:`crm_lib.plots.theme.set_caption`): output metadata
    ``crm_figure`` is the number, ``crm_caption`` the caption and ``crm_alt``
    ``"Figure 3: <caption>"`` cut to :data:`ALT_MAX_CHARS`. A figure without one is described
    from the section it sits in: ``"Figure 3 (Cohort retention): <first sentence of the text
    above it>"``. An alt text the notebook set itself (``metadata['image/png']['alt']``) is kept.
    """
    heading, sentence, number = "", "", 0
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                match = _HEADING.match(line)
                if match:
                    heading = _plain(match.group(2))
            sentence = _first_sentence(cell.source) or sentence
            continue
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if not any(key.startswith("image/") for key in data):
                continue
            number += 1
            image = output.get("metadata", {}).get("image/png", {})
            caption = image.get("crm_caption", "")
            where = f" ({heading})" if heading else ""
            own = image.get("alt") if image.get("alt") != caption else ""
            text = own or (f"Figure {number}: {caption}" if caption else f"Figure {number}{where}: {sentence}")
            metadata = output.setdefault("metadata", {})
            metadata["crm_figure"] = number
            metadata["crm_caption"] = caption
            metadata["crm_alt"] = _shorten(text.rstrip(": "))
    return nb


def fix_styler_ids(page: str) -> str:
    """Replace pandas Styler's random ``T_xxxxx`` ids by ``T_t01``, ``T_t02``, ... in page order."""
    order: dict[str, str] = {}

    def renumber(match: re.Match) -> str:
        return order.setdefault(match.group(1), f"T_t{len(order) + 1:02d}")

    return _STYLER_ID.sub(renumber, page)


def scroll_tables(page: str) -> str:
    """Wrap every top-level table in a box that scrolls sideways on its own (narrow screens)."""
    out, depth, position = [], 0, 0
    for match in sorted([*_TABLE_OPEN.finditer(page), *_TABLE_CLOSE.finditer(page)], key=lambda m: m.start()):
        out.append(page[position:match.start()])
        if match.group(0).startswith("<table"):
            if depth == 0:
                out.append('<div class="crm-scroll">')
            out.append(match.group(0))
            depth += 1
        else:
            out.append(match.group(0))
            depth = max(0, depth - 1)
            if depth == 0:
                out.append("</div>")
        position = match.end()
    out.append(page[position:])
    return "".join(out)


def table_of_contents(page: str) -> str:
    """A static ``<nav>`` listing the page's h2 and h3 headings (empty when there are none)."""
    items = []
    for level, anchor, inner in _H23.findall(page):
        text = html.unescape(_TAG.sub("", inner)).replace("\u00b6", "").strip()
        if text:
            css = "crm-toc-h3" if level == "3" else "crm-toc-h2"
            items.append(f'<li class="{css}"><a href="#{anchor}">{html.escape(text)}</a></li>')
    if not items:
        return ""
    return ('<nav class="crm-toc" aria-label="Contents"><details open><summary>Contents</summary><ol>'
            + "".join(items) + "</ol></details></nav>")


def page_navigation(pages: Sequence[tuple[str, str]], current: str) -> str:
    """Links to the run index, all runs and the previous and next report of the run."""
    names = [name for name, _ in pages]
    links = ['<a href="index.html">&uarr; this run</a>', '<a href="../index.html">all runs</a>']
    if current in names:
        at = names.index(current)
        if at > 0:
            name, title = pages[at - 1]
            links.insert(0, f'<a rel="prev" href="{html.escape(name)}">&larr; {html.escape(title)}</a>')
        if at + 1 < len(pages):
            name, title = pages[at + 1]
            links.append(f'<a rel="next" href="{html.escape(name)}">{html.escape(title)} &rarr;</a>')
    return '<nav class="crm-pager" aria-label="Reports of this run">' + " ".join(links) + "</nav>"


@functools.lru_cache(maxsize=1)
def code_version(project: Path | None = None) -> str:
    """The project's git commit (``+ uncommitted changes`` when dirty), or ``not a git checkout``."""
    root = project or Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return "not a git checkout"
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                                check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "not a git checkout"
    return f"{commit} + uncommitted changes" if dirty else commit


def footer(packages: dict[str, str], version: str) -> str:
    """The provenance footer: code version and package versions."""
    listed = ", ".join(f"{html.escape(name)} {html.escape(value)}" for name, value in packages.items())
    return (f'<footer class="crm-footer"><p>Rendered by crm-workbench from code version '
            f"<code>{html.escape(version)}</code>.</p><p>Packages: {listed}.</p></footer>")


def add_chrome(page: str, *, pages: Sequence[tuple[str, str]], current: str, packages: dict[str, str],
               version: str) -> str:
    """The rendered page with fixed ids, scrolling tables, contents, navigation and footer."""
    page = scroll_tables(fix_styler_ids(page))
    page = page.replace(DEFAULT_ALT, "Figure")
    nav = page_navigation(pages, current)
    top = nav + table_of_contents(page)
    return page.replace(TOP_MARK, top, 1).replace(BOTTOM_MARK, nav + footer(packages, version), 1)
