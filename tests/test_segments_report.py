"""End to end: notebooks/02_segmentation through the real runner on a small generated log.

Checks that the sentences state the figures crm_lib computes, that no real customer id
reaches the HTML, and that the action files land next to the report."""
from __future__ import annotations

import html
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crm_lib.clv import predict_customer_value
from crm_lib.export import read_customer_actions
from crm_lib.report.runner import run_report
from crm_lib.segments import (
    active_passive_loyalty,
    pseudonymize,
    rfm_segmentation,
    segment_migration,
    segment_profile,
    value_loyalty_portfolio,
)

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def small_log() -> pd.DataFrame:
    """60 customers over 2021-2022 with seeded rhythms; a third stop buying in mid-2022."""
    rng = np.random.default_rng(20)
    rows = []
    for i in range(60):
        day = float(rng.integers(0, 120))
        gap = rng.uniform(15, 120)
        stop = 500 if i % 3 == 0 else 729
        while day <= stop:
            rows.append((f"CUST-{i:04d}", pd.Timestamp("2021-01-01") + pd.Timedelta(days=int(day)),
                         round(float(rng.gamma(2.0, 20.0)), 2)))
            day += gap * rng.uniform(0.7, 1.3)
    return pd.DataFrame(rows, columns=["client", "day", "spend"])


def text_of(page: Path) -> str:
    content = re.sub(r"<(style|script)\b.*?</\1>", "", page.read_text(), flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", "", content)))


def test_segmentation_notebook_renders_computed_figures(tmp_path, monkeypatch):
    # The kernel must import this tree's crm_lib, whatever copy is installed in the venv.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    log = small_log()
    (tmp_path / "data").mkdir()
    log.to_csv(tmp_path / "data" / "shop.csv", index=False)
    params = tmp_path / "shop.yaml"
    params.write_text(
        "run_name: shop\nnotebooks: [02_segmentation]\nparameters:\n"
        "  data_path: data/shop.csv\n  column_map: {customer_id: client, date: day, amount: spend}\n"
        "  csv_separator: ','\n  date_format: '%Y-%m-%d'\n  calibration_end: '2021-12-31'\n"
        "  loyalty_min_relationship_days: 200\n  winback_list_size: 3\n"
        # 60 customers do not identify Pareto/NBD's drop-out without a small penalty.
        "  penalizer_coef: 0.001\n"
        # The model and the margin are set, so the sentences below do not depend on the holdout winner.
        "  value_model: pareto_nbd\n  gross_margin: 1.0\n"
    )
    result = run_report(params, output_dir=tmp_path / "reports", notebooks_dir=REPO / "notebooks")
    assert result.published and result.ok, result.summary()
    page = result.report_dir / "02_segmentation.html"
    text = text_of(page)

    # The same figures computed directly with crm_lib.
    tx = log.rename(columns={"client": "customer_id", "day": "date", "spend": "amount"})
    seg = rfm_segmentation(tx)
    profile = segment_profile(seg)
    best = profile.index[0]
    assert (f"{best.capitalize()}, the best segment, are {profile.loc[best, 'customers']:,} customers "
            f"({profile.loc[best, 'share_of_customers']:.1%}) and bring {profile.loc[best, 'share_of_revenue']:.1%} "
            "of revenue") in text
    migration = segment_migration(tx, calibration_end="2021-12-31")
    assert f"{migration.moved_up:.1%} moved up" in text and f"{migration.moved_down:.1%} moved down" in text
    assert f"{len(seg.customers):,} customers written to customer_actions.csv and customer_actions.parquet" in text
    assert "Retain:" in text and "of value" in text
    # Value and loyalty are the chosen model's (Pareto/NBD) 12-month CLV and P(alive), weekly as the run context.
    predictions = predict_customer_value(tx, model="pareto_nbd", penalizer_coef=0.001, time_unit="W",
                                         observation_end=log["day"].max())
    assert (f"Customer value is predicted 12-month CLV: the value model of this run is Pareto/NBD for purchases and "
            f"drop-out, Gamma-Gamma for spend per purchase, fitted on the whole log; 10% annual discount rate, "
            f"revenue CLV: customer equity is {predictions['clv'].sum():,.0f} USD") in text
    assert f"{predictions['p_alive'].mean():.1%} on average" in text
    portfolio = value_loyalty_portfolio(seg.customers, predictions)
    assert f"Value is predicted 12-month CLV (high above {portfolio.value_threshold:,.2f} USD" in text
    retain = portfolio.cells.loc["high value, high loyalty"]
    assert (f"Retain: {retain['customers']:,} customers ({retain['share_of_customers']:.1%}) holding "
            f"{retain['share_of_value']:.1%} of value") in text
    assert page.read_text().count("data:image/png;base64,") >= 5

    # Real ids only in the action file; the win-back list shows pseudonyms from the salt.
    assert "CUST-" not in page.read_text()
    loyalty = active_passive_loyalty(seg.customers, predictions, min_relationship_days=200)
    top = loyalty.winback_list("test-salt", n=3)
    assert len(top) > 0
    for pseudonym in top.index:
        assert pseudonym in text
    actions = read_customer_actions(result.private_dir / "customer_actions.parquet")
    assert len(actions) == 60 and actions.index.str.startswith("CUST-").all()
    assert actions.loc[actions["pseudonymous_id"] == top.index[0]].index[0] in seg.customers.index
    assert pseudonymize(actions.index, "test-salt").tolist() == actions["pseudonymous_id"].tolist()
    pd.testing.assert_frame_equal(read_customer_actions(result.private_dir / "customer_actions.csv"), actions,
                                  check_dtype=False)
