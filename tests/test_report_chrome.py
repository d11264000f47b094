"""Page chrome of rendered reports (fast): contents, navigation, footer, alt text, fixed Styler ids.

Pages are rendered by the real nbconvert template from a hand-made executed notebook, so no
kernel runs; the browser-level checks are in tests/test_report_browser.py (slow).
"""
from __future__ import annotations

import base64
import functools
import re
import struct
import zlib

import nbformat

from crm_lib.report.chrome import DEFAULT_ALT, fix_styler_ids, page_navigation, scroll_tables
from crm_lib.report.render import render_html

PAGES = [("01_a.html", "First"), ("02_b.html", "Second"), ("03_c.html", "Third")]


def _png() -> str:
    """A valid 1x1 PNG, base64."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
    raw += chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00")) + chunk(b"IEND", b"")
    return base64.b64encode(raw).decode()


def _notebook(styler_uuid: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    figure = nbformat.v4.new_code_cell("plot()")
    figure.outputs = [nbformat.v4.new_output("display_data", data={"image/png": _png(), "text/plain": "<Figure>"})]
    table = nbformat.v4.new_code_cell("styled")
    table.outputs = [nbformat.v4.new_output("display_data", data={
        "text/html": f'<style>#T_{styler_uuid}_row0_col0 {{color: red;}}</style>'
                     f'<table id="T_{styler_uuid}"><tr><td id="T_{styler_uuid}_row0_col0">1</td></tr></table>',
        "text/plain": "1"})]
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Second"),
        nbformat.v4.new_markdown_cell("## Monthly revenue\n\nRevenue peaks in **March** and falls after. More."),
        figure,
        nbformat.v4.new_markdown_cell("### Top customers"),
        table,
    ]
    for index, cell in enumerate(nb.cells):  # as make_reproducible does in the runner
        cell["id"] = f"cell-{index:03d}"
    return nb


@functools.lru_cache(maxsize=None)
def _render(uuid: str) -> str:
    return render_html(_notebook(uuid), "Run: Second", pages=PAGES, current="02_b.html",
                       packages={"pandas": "9.9"})


def test_page_has_contents_navigation_footer_and_alt_text():
    page = _render("a1b2c")
    toc = re.search(r'<nav class="crm-toc".*?</nav>', page, re.DOTALL).group(0)
    assert 'href="#Monthly-revenue"' in toc and 'href="#Top-customers"' in toc
    assert toc.index("Monthly revenue") < toc.index("Top customers")
    assert 'id="Monthly-revenue"' in page  # the anchor the contents link to exists
    assert '<a rel="prev" href="01_a.html">&larr; First</a>' in page
    assert '<a rel="next" href="03_c.html">Third &rarr;</a>' in page
    assert 'href="../index.html"' in page
    assert "pandas 9.9" in page and "code version" in page
    alts = re.findall(r'<img[^>]*alt="([^"]*)"', page)
    assert alts == ["Figure 1 (Monthly revenue): Revenue peaks in March and falls after."]
    assert DEFAULT_ALT not in page
    assert '<div class="crm-scroll"><table' in page


def test_styler_ids_do_not_depend_on_the_random_uuid():
    first, second = _render("a1b2c"), _render("9f8e7")
    assert first == second
    assert "T_a1b2c" not in first and 'id="T_t01"' in first and "#T_t01_row0_col0" in first


def test_styler_ids_numbered_in_page_order_and_named_ids_kept():
    page = '<table id="T_bbbbb"></table><table id="T_aaaaa"></table><table id="T_retention"></table> #T_bbbbb_row0'
    assert fix_styler_ids(page) == ('<table id="T_t01"></table><table id="T_t02"></table>'
                                    '<table id="T_retention"></table> #T_t01_row0')


def test_nested_tables_get_one_scroll_box():
    assert scroll_tables("<table><tr><td><table></table></td></tr></table>") == (
        '<div class="crm-scroll"><table><tr><td><table></table></td></tr></table></div>')


def test_first_and_last_page_have_one_neighbour():
    first, last = page_navigation(PAGES, "01_a.html"), page_navigation(PAGES, "03_c.html")
    assert 'rel="prev"' not in first and 'href="02_b.html"' in first
    assert 'rel="next"' not in last and 'href="02_b.html"' in last


def test_alt_text_skips_tables_and_keeps_knob_names():
    from crm_lib.report.chrome import _first_sentence

    assert _first_sentence("## H\n\n| a | b |\n|---|---|\n\nSet by `rfm_segment_rules` here. Then more.") == (
        "Set by rfm_segment_rules here.")
    assert _first_sentence("- a list\n\n**Bold** start. Next.") == "Bold start."
