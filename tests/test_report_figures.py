"""Figure captions, numbering and alt text, the density rule, and the run index's headline (fast).

The headline is built from hand-made findings files written as the shared schema says
(``{"notebook": ..., "findings": [{key, text, value, unit, lower, upper, anchor}, ...]}``),
so these tests do not depend on how a notebook produces them.
"""
from __future__ import annotations

import io
import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import nbformat  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import PathCollection, QuadMesh  # noqa: E402

from crm_lib.plots.theme import (  # noqa: E402
    DENSITY_MIN_POINTS,
    OKABE_ITO,
    caption_of,
    draw_points,
    money_formatter,
    set_caption,
)
from crm_lib.report.chrome import annotate_figures  # noqa: E402
from crm_lib.report.index import (  # noqa: E402
    headline,
    headline_json,
    headline_rows,
    read_findings,
    render_index,
    write_headline,
)
from crm_lib.report.render import render_html  # noqa: E402
from tests.test_report_chrome import _png  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def _finding(key, text, value, unit, anchor="", lower=None, upper=None):
    return {"key": key, "text": text, "value": value, "unit": unit, "lower": lower, "upper": upper, "anchor": anchor}


@pytest.fixture
def findings_folder(tmp_path):
    folder = tmp_path / "findings"
    folder.mkdir()
    files = {
        "01_data_overview": [_finding("customers", "23,570 customers bought 69,659 times.", 23570, "customers",
                                      "1.-The-log"),
                             _finding("revenue", "They spent 2,500,316 USD.", 2500315.63, "USD", "1.-The-log")],
        "04_lifetime_value": [_finding("customer_equity", "Expected equity is 1,234,567 USD.", 1234567.4, "USD",
                                       "6.-Customer-equity", 1100000.0, 1400000.0),
                              _finding("customers", "A duplicate key: the first notebook wins.", 1, "customers")],
        "05_loyalty_profit": [_finding("loyalty_H1", "H1: not supported.", "not supported", "verdict", "")],
        "02_segmentation": [_finding("segment_share_champions", "Champions are 29.7% of customers.", 0.2971, "share",
                                     "2.-RFM-segments")],
    }
    for name, items in files.items():
        (folder / f"{name}.json").write_text(json.dumps({"notebook": name, "findings": items}, sort_keys=True, indent=1))
    (folder / "broken.json").write_text("{not json")
    return folder


def test_headline_follows_the_schema(findings_folder):
    content = headline(read_findings(findings_folder), run="cdnow", observation_end="1998-06-30",
                       calibration_end="1997-09-30", notebooks=["01_data_overview", "04_lifetime_value",
                                                                "05_loyalty_profit"])
    assert set(content) == {"run", "observation_end", "calibration_end", "figures"}
    assert set(content["figures"]) == {"customers", "revenue", "customer_equity", "loyalty_H1", "segment_share_champions"}
    equity = content["figures"]["customer_equity"]
    assert equity["page"] == "04_lifetime_value.html#6.-Customer-equity"
    assert (equity["lower"], equity["upper"], equity["notebook"]) == (1100000.0, 1400000.0, "04_lifetime_value")
    assert content["figures"]["customers"]["value"] == 23570  # 01 runs first: its figure is kept
    assert content["figures"]["loyalty_H1"]["page"] == "05_loyalty_profit.html"  # no anchor, no '#'
    text = headline_json(content)
    assert json.loads(text) == content and text == json.dumps(content, sort_keys=True, indent=1) + "\n"


def test_index_opens_with_linked_headline_and_folds_the_parameters(findings_folder, tmp_path):
    content = write_headline(tmp_path, findings_folder, run="cdnow", observation_end="1998-06-30",
                             calibration_end=None, notebooks=["01_data_overview", "04_lifetime_value"])
    assert json.loads((tmp_path / "headline.json").read_text()) == content

    def render():
        return render_index(title="CDNOW", run_name="cdnow", params_file="cdnow.yaml",
                            parameters={"lapse_days": 180, "currency": "USD"},
                            notebooks=[{"name": "04_lifetime_value", "title": "Lifetime value", "html":
                                        "04_lifetime_value.html", "status": "ok", "error": None}],
                            data=None, packages={"pandas": "9.9"}, code_version="abc", headline=content)

    page = render()
    assert page == render()
    top = page.index('id="headline"')
    assert top < page.index("<h2>Reports</h2>") < page.index("<summary>Parameters set in") < page.index("lapse_days")
    assert '<a href="04_lifetime_value.html#6.-Customer-equity">' in page
    assert "1,234,567 USD (1,100,000 to 1,400,000)" in page
    assert "23,570 customers" in page and "2,500,316 USD" in page and "not supported" in page
    assert page.index("Customers") < page.index("Revenue") < page.index("Customer equity") < page.index("hypothesis H1")
    assert "Lifetime value &rarr;" in page
    # Segment shares are listed folded under the cards.
    assert page.index("hypothesis H1") < page.index("1 more finding of this run") < page.index("Segment share: champions: 29.7%")


def test_index_without_findings_has_no_headline_section():
    page = render_index(title="T", run_name="r", params_file="p.yaml", parameters={}, notebooks=[], data=None,
                        packages={}, headline=None)
    assert 'id="headline"' not in page


def test_caption_numbered_and_rendered_under_the_figure():
    nb = nbformat.v4.new_notebook()
    caption = "Revenue per month: 2,500,316 USD in all; the highest month, 1997-03, brought 12.3%."
    cells = []
    for own in (caption, None):
        cell = nbformat.v4.new_code_cell("plot()")
        metadata = {"image/png": {"crm_caption": own, "alt": own}} if own else {}
        cell.outputs = [nbformat.v4.new_output("display_data", data={"image/png": _png()}, metadata=metadata)]
        cells.append(cell)
    nb.cells = [nbformat.v4.new_markdown_cell("## Revenue\n\nRevenue peaks in March."), *cells]
    annotated = annotate_figures(nb)
    first, second = (c.outputs[0].metadata for c in annotated.cells[1:])
    assert (first["crm_figure"], first["crm_caption"]) == (1, caption)
    assert first["crm_alt"] == f"Figure 1: {caption}"
    assert second["crm_figure"] == 2 and second["crm_alt"] == "Figure 2 (Revenue): Revenue peaks in March."
    page = render_html(nb, "Run: Revenue", packages={})
    assert f'<figcaption><strong>Figure 1.</strong> {caption}</figcaption>' in page
    assert 'id="figure-1"' in page and f'alt="Figure 1: {caption}"' in page


def test_long_alt_text_is_cut_at_a_word():
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("plot()")
    long = "word " * 100
    cell.outputs = [nbformat.v4.new_output("display_data", data={"image/png": _png()},
                                           metadata={"image/png": {"crm_caption": long}})]
    nb.cells = [cell]
    alt = annotate_figures(nb).cells[0].outputs[0].metadata["crm_alt"]
    assert len(alt) <= 240 and alt.endswith("word\u2026")


def _png_bytes(fig) -> int:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=96)
    return len(buffer.getvalue())


def test_large_samples_drawn_as_bounded_density():
    rng = np.random.default_rng(1)
    sizes = {}
    for n in (2_000, 20_000, 200_000):
        fig, ax = plt.subplots(figsize=(8, 5))
        ax.set_yscale("symlog", linthresh=1.0)
        groups = np.where(rng.uniform(size=n) < 0.3, "a", "b")
        density = draw_points(ax, rng.gamma(2, 50, n), rng.normal(0, 100, n), groups=groups,
                              colors={"a": OKABE_ITO[0], "b": OKABE_ITO[1]}, labels={"a": "a", "b": "b"})
        assert density == (n > DENSITY_MIN_POINTS)
        kinds = {type(c) for c in ax.collections}
        assert (QuadMesh in kinds) == density and (not density or all(
            len(c.get_offsets()) == 0 for c in ax.collections if isinstance(c, PathCollection)))
        sizes[n] = _png_bytes(fig)
    # Ten times more customers cost at most a few percent more bytes once drawn as a density.
    assert sizes[200_000] < 1.1 * sizes[20_000]
    assert sizes[200_000] < 120_000


def test_density_counts_every_point_once():
    rng = np.random.default_rng(2)
    x, y = rng.integers(1, 30, 10_000), rng.lognormal(3, 1, 10_000)
    fig, ax = plt.subplots()
    ax.set_yscale("log")
    draw_points(ax, x, y)
    mesh = next(c for c in ax.collections if isinstance(c, QuadMesh))
    assert mesh.get_array().sum() == 10_000  # integer x gets one column per value: no point falls out


def test_money_ticks_put_the_sign_before_the_symbol_and_captions_are_kept():
    ticks = money_formatter("USD")
    assert [ticks(v, 0) for v in (-1, 0, 1500, -2_000_000)] == ["-$1", "$0", "$1.5k", "-$2.0m"]
    assert money_formatter("CHF")(-12, 0) == "-12 CHF"
    fig, ax = plt.subplots()
    set_caption(ax, "  Two\n lines ")
    assert caption_of(ax) == caption_of(fig) == "Two lines"


def test_folded_findings_show_a_shared_sentence_once():
    shared = "Customers by RFM segment: champions 29.7%, lost 19.0%."
    figures = {f"segment_share_{name}": {**_finding(f"segment_share_{name}", shared, share, "share"),
                                         "notebook": "02_segmentation", "page": "02_segmentation.html"}
               for name, share in [("champions", 0.297), ("lost", 0.19)]}
    rows = [row for row in headline_rows({"figures": figures}) if not row["main"]]
    assert [row["label"] for row in rows] == ["Segment share: champions", "Segment share: lost"]
    assert [row["text"] for row in rows] == [shared, ""]
