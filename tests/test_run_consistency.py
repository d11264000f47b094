"""One run, one model, one window: every page of the CDNOW run states the same figures.

Renders notebooks 01-05 of params/cdnow.yaml through the real runner and reads the chosen
transaction model, the customer equity and the share of customers alive from every page
that shows them; they must agree between pages and with the run context's objects.
"""
from __future__ import annotations

import html as html_module
import re
from pathlib import Path

import pytest

from crm_lib.clv import MODEL_LABELS
from crm_lib.context import session
from crm_lib.report.runner import run_report

REPO = Path(__file__).resolve().parents[1]
LABELS = "|".join(re.escape(label) for label in MODEL_LABELS.values())
PATTERNS = {
    "customer_equity": re.compile(r"customer equity is ([\d,]+) USD"),
    "share_alive": re.compile(r"([\d.]+)% of customers are more likely alive than not"),
    "value_model": re.compile(rf"(?:value model of this run is ({LABELS}))|(?:({LABELS}) is used for the rest of this report)"),
}


def _text(path: Path) -> str:
    return html_module.unescape(re.sub(r"<[^>]+>", "", path.read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def cdnow_run(tmp_path_factory, kernel_sees_checkout):
    root = tmp_path_factory.mktemp("consistency")
    # The runner hands its private folder to the kernels (CRM_PRIVATE_ROOT); the cache lives there.
    with kernel_sees_checkout(CRM_PRIVATE_ROOT=str(root / "private")):
        result = run_report(REPO / "params" / "cdnow.yaml", output_dir=root / "reports",
                            notebooks_dir=REPO / "notebooks")
        ctx = session(REPO / "params" / "cdnow.yaml")
        headline = ctx.headline()
        cache_keys = sorted(p.name for p in (root / "private" / "cache").iterdir())
    return result, headline, cache_keys


@pytest.mark.slow
def test_every_page_states_the_same_model_equity_and_share_alive(cdnow_run):
    result, headline, cache_keys = cdnow_run
    assert result.ok and result.published, result.summary()
    # Every notebook opened the same run context: one cache folder for the whole run.
    assert len(cache_keys) == 1, cache_keys
    found: dict[str, dict[str, str]] = {name: {} for name in PATTERNS}
    for page in sorted(result.report_dir.glob("0*.html")):
        text = _text(page)
        for name, pattern in PATTERNS.items():
            values = {next(g for g in m.groups() if g) for m in pattern.finditer(text)}
            assert len(values) <= 1, (page.name, name, values)  # one figure within a page too
            if values:
                found[name][page.stem] = values.pop()
    # The model report and the segmentation report both state all three.
    for name in PATTERNS:
        assert {"02_segmentation", "04_lifetime_value"} <= set(found[name]), (name, found[name])
        assert len(set(found[name].values())) == 1, (name, found[name])
    # ... and they are the run context's objects.
    assert set(found["value_model"].values()) == {MODEL_LABELS[headline["value_model"]]}
    assert set(found["customer_equity"].values()) == {f"{headline['customer_equity']:,.0f}"}
    assert set(found["share_alive"].values()) == {f"{100 * headline['share_alive']:.1f}"}
