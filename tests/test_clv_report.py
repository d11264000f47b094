"""Notebook 04 (lifetime value) end to end through the real runner, on a small slice of CDNOW."""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from crm_lib import clv
from crm_lib.data import load_transactions
from crm_lib.datasets import cdnow_master_path
from crm_lib.report.runner import run_report
from crm_lib.segments import pseudonymize
from crm_lib.summary import calibration_holdout_summary, rfm_summary

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def small_cdnow_run(tmp_path_factory, kernel_sees_checkout):
    """The first 3,000 CDNOW customers as a CSV, rendered by notebook 04 only."""
    root = tmp_path_factory.mktemp("clv_report")
    raw = pd.read_csv(cdnow_master_path(), sep=r"\s+", dtype=str)
    raw = raw[raw["customer_id"].astype(int) <= 3000]
    data = root / "cdnow_3000.csv"
    raw.to_csv(data, index=False)
    params = root / "small.yaml"
    params.write_text(
        "run_name: small_clv\n"
        "title: CLV on 3,000 CDNOW customers\n"
        "notebooks:\n"
        "  - 04_lifetime_value\n"
        "parameters:\n"
        f"  data_path: {data}\n"
        "  column_map: {customer_id: customer_id, date: date, amount: dollar_value, quantity: number_of_cds}\n"
        "  csv_separator: ','\n"
        "  date_format: '%Y%m%d'\n"
        "  observation_end: '1998-06-30'\n"
        "  equity_draws: 40\n"
        "  customer_table_name: customers.parquet\n"
    )
    with kernel_sees_checkout():
        result = run_report(params, output_dir=root / "reports", notebooks_dir=REPO / "notebooks",
                            only=["04_lifetime_value"])
    return result, data


def test_notebook_04_states_the_computed_figures(small_cdnow_run):
    result, data = small_cdnow_run
    assert result.ok and result.published, result
    html = (result.report_dir / "04_lifetime_value.html").read_text()
    # Recompute the headline figures independently of the notebook.
    tx = load_transactions(data, column_map={"customer_id": "customer_id", "date": "date", "amount": "dollar_value",
                                             "quantity": "number_of_cds"},
                           sep=",", date_format="%Y%m%d", observation_end="1998-06-30").transactions
    cal = calibration_holdout_summary(tx, calibration_end="1997-09-30", observation_end="1998-06-30", time_unit="W")
    comparison = clv.holdout_validation(cal)
    winner = comparison.winner
    assert f"{comparison.table.loc[winner, 'holdout_rmse']:.4f}" in html
    assert f"<strong>{clv.MODEL_LABELS[winner]}</strong> is used for the rest of this report" in html
    summary = rfm_summary(tx, observation_end="1998-06-30", time_unit="W")
    model = clv.fit_model(summary, winner)
    next_year = model.conditional_expected_number_of_purchases_up_to_time(
        52, summary["frequency"], summary["recency"], summary["T"]).sum()
    assert f"{next_year:,.0f} repeat transactions in the next 52 weeks" in html
    # Both equity intervals are named for what they cover (issue 10): the expected equity and the realised one.
    assert "parameter-uncertainty interval" in html and "predictive interval" in html
    # The weekly charts and the model table count the holdout differently (issue 9): the page says by how much.
    # Independent count: customers of the calibration cohort buying between the calibration end (a Tuesday) and
    # the end of its calendar week (Sunday 1997-10-05); each counts once, as purchases in one week count once.
    first = tx.groupby("customer_id")["date"].min()
    cohort = first.index[first <= "1997-09-30"]
    straddling = tx[(tx["date"] > "1997-09-30") & (tx["date"] <= "1997-10-05") & tx["customer_id"].isin(cohort)]
    gap = straddling["customer_id"].nunique()
    assert gap > 0
    assert f"the {gap:,} repeat purchases made from 1997-10-01 to 1997-10-05" in html
    assert "bootstrap" not in html.split('id="How-this-was-computed"')[0]  # the settings list may name the seed's uses
    # Every chart is embedded and titled; the code is hidden.
    assert html.count("data:image/png;base64,") >= 9
    assert "holdout_validation(" not in html


def test_notebook_04_writes_the_customer_table_next_to_the_report(small_cdnow_run):
    result, _ = small_cdnow_run
    table = pd.read_parquet(result.private_dir / "customers.parquet")
    assert len(table) == 3000
    assert {"p_alive", "expected_purchases", "clv"} <= set(table.columns)
    assert table["p_alive"].between(0, 1).all() and (table["clv"] >= 0).all()


def test_notebook_04_shows_pseudonymous_ids_only(small_cdnow_run):
    result, _ = small_cdnow_run
    html = (result.report_dir / "04_lifetime_value.html").read_text()
    table = pd.read_parquet(result.private_dir / "customers.parquet")
    pseudonyms = pseudonymize(table.index, "crm-workbench")
    # The P(alive) history names its customer by pseudonym.
    named = re.search(r"Customer <strong>([0-9a-f]+)</strong> \(pseudonymous id\)", html)
    assert named and named.group(1) in set(pseudonyms)
    real = pseudonyms.index[pseudonyms == named.group(1)][0]
    assert f"<strong>{real}</strong>" not in html
    # The ten most valuable customers are listed under pseudonyms, never under their real ids.
    for customer in table.sort_values("clv", ascending=False).head(10).index:
        assert re.search(rf"<th[^>]*>{pseudonyms[customer]}</th>", html)
        assert not re.search(rf"<th[^>]*>{customer}</th>", html)
