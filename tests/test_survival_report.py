"""End to end through the real runner: notebooks 03 (retention and survival) and 06
(contractual retention) render, and the figures they state are the library's."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from crm_lib.clv import predict_customer_value
from crm_lib.data import load_transactions
from crm_lib.datasets import CDNOW_COLUMN_MAP
from crm_lib.report.runner import run_report
from crm_lib.retention import ShiftedBetaGeometricFitter
from crm_lib.survival import kaplan_meier, lapse_backtest, lapse_vs_p_alive, time_to_churn

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _kernel_imports_this_checkout(monkeypatch):
    """The notebook kernel is a separate process: make it import crm_lib from this checkout."""
    import os

    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))


@pytest.fixture(scope="module")
def small_log(tmp_path_factory) -> Path:
    """1,500 CDNOW customers as a CSV with a channel column ('phone' is a group of 12)."""
    log = load_transactions(
        "embedded:CDNOW_master.txt", column_map=CDNOW_COLUMN_MAP, sep=r"\s+", date_format="%Y%m%d"
    )
    tx = log.transactions
    keep = tx["customer_id"].isin(sorted(tx["customer_id"].unique())[:1500])
    tx = tx[keep].copy()
    customers = sorted(tx["customer_id"].unique())
    channel = {c: ("phone" if i < 12 else "web" if i % 2 else "store") for i, c in enumerate(customers)}
    tx["channel"] = tx["customer_id"].map(channel)
    folder = tmp_path_factory.mktemp("data")
    path = folder / "transactions.csv"
    tx.assign(date=tx["date"].dt.strftime("%Y-%m-%d")).to_csv(path, index=False)
    return path


def _params(folder: Path, data: Path, **knobs) -> Path:
    params = {
        "run_name": "survival_small",
        "title": "Survival on a small log",
        "notebooks": ["03_retention_survival"],
        "parameters": {
            "data_path": str(data),
            "column_map": {"customer_id": "customer_id", "date": "date", "amount": "amount",
                           "quantity": "quantity", "channel": "channel"},
            "csv_separator": ",",
            "date_format": "%Y-%m-%d",
            "observation_end": "1998-06-30",
            **knobs,
        },
    }
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def test_retention_survival_notebook_renders_the_library_figures(small_log, tmp_path):
    params = _params(tmp_path, small_log, group_col="channel")
    result = run_report(params, output_dir=tmp_path / "reports", notebooks_dir=REPO / "notebooks")
    assert result.ok and result.published
    html = (result.report_dir / "03_retention_survival.html").read_text()

    tx = pd.read_csv(small_log, dtype={"customer_id": str}, parse_dates=["date"])
    churn = time_to_churn(tx, lapse_days=180, observation_end="1998-06-30")
    assert f"<strong>{churn['churned'].mean():.1%}</strong> of the 1,500 customers have churned" in html
    # Data to 1998-06-30 with a 180-day lapse identify the curve up to 364 days only: the
    # report says so instead of printing a 365-day retention.
    last = kaplan_meier(churn).survival_at(364).loc["all", "survival"]
    assert "The curve ends at 364 days after the first purchase" in html
    assert f"Retention at 365 days is therefore not identified by these data; at 364 days it is {last:.1%}." in html
    assert "of customers are still active 365 days" not in html
    # The backtest on data to 1997-12-31 (backtest_days 181) against the full window.
    backtest = lapse_backtest(tx, holdout_days=181, lapse_days=180, observation_end="1998-06-30",
                              horizons_days=[90, 180, 270, 365])
    assert backtest.truncate_at == pd.Timestamp("1997-12-31")
    assert backtest.sentence() in html
    assert "proportional hazards" in html.lower() and "Efron residuals, Kaplan-Meier time scale" in html
    # The tiny channel gets no curve, and the report says so; the others are compared.
    assert "&#x27;phone&#x27; (12 customers)" in html or "'phone' (12 customers)" in html
    assert "groups of channel (log-rank χ² = " in html
    # Cox ran with the channel and states its proportional-hazards verdict.
    assert "channel web" in html and "channel[web]" not in html and "proportional hazards" in html.lower()
    assert html.count("data:image/png;base64,") >= 7
    assert "Traceback" not in html
    # The lapse rule beside the default model's (Pareto/NBD) expected number of churned customers.
    p_alive = predict_customer_value(tx, model="pareto_nbd", observation_end="1998-06-30")["p_alive"]
    both = lapse_vs_p_alive(churn, p_alive, lapse_days=180).loc["all"]
    assert (f"The lapse rule counts <strong>{int(both['churned_by_rule']):,}</strong> of the 1,500 customers as gone at "
            f"1998-06-30") in html
    assert f"Pareto/NBD expects <strong>{both['expected_churned_by_model']:,.0f}</strong>" in html


def test_retention_survival_notebook_reports_a_bad_grouping_column(small_log, tmp_path):
    params = _params(tmp_path, small_log, group_col="segment", cox_covariates=["first_order_amount", "channel"],
                     lapse_days_grid=[180], p_alive_model=None)
    result = run_report(params, output_dir=tmp_path / "reports", notebooks_dir=REPO / "notebooks")
    assert result.ok and result.published  # the rest of the report still renders
    html = (result.report_dir / "03_retention_survival.html").read_text()
    assert "The log-rank test could not be run: grouping column: column(s) [&#x27;segment&#x27;] not found" in html \
        or "The log-rank test could not be run: grouping column: column(s) ['segment'] not found" in html
    assert "Set group_col in params to one of those." in html
    assert "What drives churn" in html and "first-day spend" in html
    assert "No P(alive) model is set for this run, so only the lapse rule is used." in html


def test_contractual_example_renders_the_published_fit(tmp_path):
    result = run_report(REPO / "params" / "contractual_example.yaml", output_dir=tmp_path,
                        notebooks_dir=REPO / "notebooks")
    assert result.ok and result.published and result.report_dir.name == "contractual_example"
    html = (result.report_dir / "06_contractual_retention.html").read_text()
    # Fader & Hardie (2007): (alpha, beta) = (0.668, 3.806) high end, (0.704, 1.182) regular.
    assert "α = 0.668" in html and "β = 3.806" in html
    assert "α = 0.704" in html and "β = 1.182" in html
    clv = ShiftedBetaGeometricFitter().fit([1000, 631, 468, 382, 326, 289, 262, 241]).customer_lifetime_value(100.0, 0.1)
    assert f"a new customer is worth <strong>{clv:,.2f} USD</strong>" in html
    assert np.isfinite(clv)
    # Both published cohorts have alpha < 1: the mean lifetime is said to be unbounded, not printed.
    assert "expected lifetime unbounded: α = 0.668 ≤ 1" in html
    assert "expected lifetime unbounded: α = 0.704 ≤ 1" in html
    assert html.count("data:image/png;base64,") >= 2
