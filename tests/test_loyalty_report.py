"""Notebook 05 (loyalty versus profit) end to end through the real runner, on a small simulated log."""
from __future__ import annotations

import html as html_module
import re
from pathlib import Path

import pytest

from crm_lib import loyalty
from crm_lib.clv import fit_model, fit_spend_model
from crm_lib.report.runner import run_report
from crm_lib.summary import rfm_summary

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def rendered(tmp_path_factory, kernel_sees_checkout):
    """Notebook 05 rendered on 400 simulated customers without cost data."""
    root = tmp_path_factory.mktemp("loyalty")
    tx, _ = loyalty.simulate_loyalty_log(400, seed=5, price_lift_per_year=1.0, observation_days=450)
    tx.to_csv(root / "log.csv", index=False, date_format="%Y-%m-%d")
    (root / "small.yaml").write_text(
        "run_name: small\nnotebooks: [05_loyalty_profit]\nparameters:\n"
        "  data_path: log.csv\n"
        "  column_map: {customer_id: customer_id, date: date, amount: amount, quantity: quantity}\n"
        "  csv_separator: ','\n  date_format: '%Y-%m-%d'\n"
        "  gross_margin: 0.3\n  n_bootstrap: 100\n  cost_per_order: null\n"
    )
    with kernel_sees_checkout():
        result = run_report(root / "small.yaml", output_dir=root / "reports", notebooks_dir=REPO / "notebooks")
    return result, tx


def test_report_states_the_computed_verdicts_and_shares(rendered):
    result, tx = rendered
    assert result.published and result.ok
    html = (result.report_dir / "05_loyalty_profit.html").read_text()
    text = html_module.unescape(re.sub(r"<[^>]+>", "", html))
    # The same analysis in this process, with the notebook's defaults and the file's knobs.
    # time_unit "W" is the one default of every notebook (knob registry).
    summary = rfm_summary(tx, time_unit="W", observation_end=tx["date"].max())
    model = fit_model(summary, "pareto_nbd")
    spend = fit_spend_model(summary, nonpositive_spend="exclude")
    expected = loyalty.loyalty_analysis(tx, model, gross_margin=0.3, n_bootstrap=100, time_unit="W", seed=42,
                                        spend_model=spend, null_draws=249)
    assert f"{expected.matrix.share_long_low_profit:.0%} of long-lived customers are in the low-profit group" in text
    assert f"{expected.matrix.share_high_profit_short:.0%} of the high-profit customers are short-lived" in text
    # Both numbers: the statistic and what a base with no loyalty effect gives.
    for test in expected.calibration.tests[:3]:
        assert f"{test.hypothesis} {test.verdict} ({test.claim}): {test.explanation}" in text
        assert "a base with no loyalty effect would give" in test.explanation
    assert f"{expected.customers['censored'].mean():.0%} of lifetimes are censored" in text
    # No cost column and no cost_per_order: H4 says why it was not tested.
    assert "H4 not testable" in text and "the cost to serve is unknown" in text
    # Figures are embedded and every section rendered; the code is hidden.
    assert html.count("data:image/png;base64,") >= 5
    for heading in ("1. Lifetime and profit per customer", "2. The hypotheses", "3. The loyalty-profit matrix",
                    "4. Robustness", "What this means"):
        assert heading in text
    assert "loyalty_analysis(" not in text
