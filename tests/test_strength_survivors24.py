"""Checks written against the survivors of the seed-24 mutation sample (issue 16).

Each expected value comes from a hand computation, exact rational arithmetic, numpy or
pandas applied to the input directly, never from the function under test.
"""
from __future__ import annotations

import logging
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest

from crm_lib import clv, loyalty


def test_customer_equity_with_every_draw_finite_warns_of_nothing(caplog):
    from crm_lib.models import GammaGammaFit

    model = clv.BetaGeoFit()
    model.params_ = pd.Series({"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426})  # FHL (2005) CDNOW
    model.log_params_covariance_ = np.diag([0.01, 0.01, 0.01, 0.01])
    spend = GammaGammaFit()
    spend.params_ = pd.Series({"p": 6.25, "q": 3.74, "v": 15.44})  # Fader-Hardie note 025, CDNOW
    spend.log_params_covariance_ = np.diag([1e-4, 1e-4, 1e-4])  # q stays far above 1: every mean finite
    summary = pd.DataFrame({"frequency": [0.0, 2.0, 5.0], "recency": [0.0, 20.0, 30.0], "T": [38.0, 38.0, 38.0],
                            "monetary_value": [0.0, 30.0, 25.0]})
    with caplog.at_level(logging.WARNING, logger="crm_lib.clv.value"):
        equity = clv.customer_equity(model, spend, summary, n_draws=4, seed=1, horizon_months=3)
    assert np.isfinite(equity.estimate)
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


@pytest.fixture(scope="module")
def panel_end_table():
    from tests.test_strength_loyalty_choices import KNOBS, ONE_ROW
    from tests.test_strength_loyalty_outputs import _pnbd

    tx, _ = loyalty.simulate_loyalty_log(150, seed=5, observation_days=300, price_lift_per_year=0.5)
    table = loyalty.robustness_table(tx, {"Pareto/NBD": _pnbd()}, **{**ONE_ROW, "panel_ends": ("last_purchase",)},
                                     **KNOBS)
    analysis = loyalty.loyalty_analysis(tx, _pnbd(), n_bootstrap=0, **KNOBS)
    return table, analysis


def test_classical_rows_give_the_within_customer_h2_slope_and_name_the_panel_end_change(panel_end_table):
    table, analysis = panel_end_table
    assert table.loc["H2 panel up to the last purchase", "changed"] == "H2 panel end"
    assert table.attrs["null_draws"] == 0  # no spend model: no simulated null, whatever null_draws says
    # the baseline's H2 slope by hand: profit and tenure demeaned within customer (customers with 2+ periods)
    panel = analysis.panel
    kept = panel[panel.groupby("customer_id")["tenure_period"].transform("size") >= 2]
    xd = kept["tenure_period"] - kept.groupby("customer_id")["tenure_period"].transform("mean")
    yd = kept["profit"] - kept.groupby("customer_id")["profit"].transform("mean")
    assert table.loc["baseline", "H2 slope"] == pytest.approx((xd * yd).sum() / (xd * xd).sum(), rel=1e-9)


def test_customer_slopes_stay_exact_for_large_profits():
    # Profits of the order of 10^9 (a currency with small units, e.g. VND) and a slope of 1,000 per
    # period: the exact slope, by rational arithmetic, needs the profits centred within customer.
    tenure = [0, 1, 3, 7, 0, 2, 5]
    profit = [4_000_000_123.0, 4_000_001_311.0, 4_000_003_017.0, 4_000_007_255.0,
              7_000_000_001.0, 7_000_002_093.0, 7_000_004_987.0]
    panel = pd.DataFrame({"customer_id": ["a"] * 4 + ["b"] * 3, "tenure_period": tenure, "profit": profit})

    def exact(x, y):
        x, y = [Fraction(v) for v in x], [Fraction(v) for v in y]
        mx, my = sum(x) / len(x), sum(y) / len(y)
        return float(sum((a - mx) * (b - my) for a, b in zip(x, y)) / sum((a - mx) ** 2 for a in x))

    slopes = loyalty.customer_slopes(panel)
    assert slopes["a"] == pytest.approx(exact(tenure[:4], profit[:4]), rel=1e-12, abs=0)
    assert slopes["b"] == pytest.approx(exact(tenure[4:], profit[4:]), rel=1e-12, abs=0)


def test_fixed_effects_slope_with_unit_within_variance_and_without_any():
    from crm_lib.exceptions import DataValidationError

    # two customers at tenure 0 and 1: demeaned tenures -1/2, +1/2 each, so sum of squares exactly 1
    panel = pd.DataFrame({"customer_id": ["a", "a", "b", "b"], "tenure_period": [0, 1, 0, 1],
                          "profit": [10.0, 13.0, 5.0, 6.0]})
    # within slope = (3 * 1/2 + 1 * 1/2) / 1 = 2 (each customer's own rise averaged: (3 + 1) / 2)
    assert loyalty.fixed_effects_slope(panel)["slope"] == pytest.approx(2.0)
    flat = pd.DataFrame({"customer_id": ["a", "a", "b", "b"], "tenure_period": [2, 2, 4, 4],
                         "profit": [10.0, 13.0, 5.0, 6.0]})
    with pytest.raises(DataValidationError, match="tenure does not vary within any customer"):
        loyalty.fixed_effects_slope(flat)


def test_expected_spend_keeps_the_index_of_a_series_of_mean_spends():
    from crm_lib.models import GammaGammaFit

    spend = GammaGammaFit()
    spend.params_ = pd.Series({"p": 6.25, "q": 3.74, "v": 15.44})
    m = pd.Series([20.0, 35.0], index=["ann", "bob"])
    out = spend.conditional_expected_average_profit(np.array([2.0, 5.0]), m)
    assert isinstance(out, pd.Series) and list(out.index) == ["ann", "bob"]
    # note 025, eq. 5: weight p x / (p x + q - 1) on m, the rest on the population mean v p / (q - 1)
    p, q, v = 6.25, 3.74, 15.44
    for x, mean, value in zip((2.0, 5.0), m, out):
        w = p * x / (p * x + q - 1)
        assert value == pytest.approx((1 - w) * v * p / (q - 1) + w * mean)


def test_cox_design_orders_the_dummies_by_level_name_whatever_the_row_order():
    from crm_lib.survival import cox_design

    channel = ["web"] * 5 + ["store", "app", "store", "app", "kiosk"]
    churn = pd.DataFrame({"channel": channel}, index=[f"c{i}" for i in range(10)])
    design, meanings = cox_design(churn, ["channel"])
    # reference: the most frequent level (web); the others in alphabetical order
    assert list(design.columns) == ["channel[app]", "channel[kiosk]", "channel[store]"]
    assert meanings["channel[kiosk]"] == "channel kiosk vs web"
    shuffled, _ = cox_design(churn.iloc[::-1], ["channel"])
    assert list(shuffled.columns) == list(design.columns)
    assert design["channel[store]"].tolist() == [float(c == "store") for c in channel]


def test_cox_table_reads_an_interval_above_one_as_a_higher_hazard():
    from crm_lib.survival import CoxResult

    hazard = pd.DataFrame({"meaning": ["a", "b", "c", "d"], "coef": np.log([1.4, 3.0, 1.2, 0.7]),
                           "hazard_ratio": [1.4, 3.0, 1.2, 0.7], "lower": [1.1, 2.2, 1.0, 0.6],
                           "upper": [1.8, 4.0, 1.5, 0.8], "p_value": [0.01, 0.001, 0.05, 0.002]},
                          index=["a", "b", "c", "d"])
    cox = CoxResult(hazard_ratios=hazard, ph_test=pd.DataFrame(), scaled_schoenfeld=pd.DataFrame(), n=100,
                    events=50, covariates=("a", "b", "c", "d"))
    # the 95% interval excludes 1 from above (a, b), touches it (c), or lies below it (d)
    assert cox.table()["churn hazard"].tolist() == ["higher", "higher", "no clear difference", "lower"]


def test_kaplan_meier_in_report_mode_logs_why_it_computed_nothing(caplog):
    from crm_lib.survival import kaplan_meier

    churn = pd.DataFrame({"duration_days": [np.nan, np.nan], "churned": [False, False]})
    with caplog.at_level(logging.INFO, logger="crm_lib.survival.kaplan_meier"):
        result = kaplan_meier(churn, errors="report")
    assert result.error.startswith("no customer can show a churn yet: all 2 were acquired")
    assert f"Kaplan-Meier not computed: {result.error}" in caplog.messages


def test_backtest_of_the_older_rule_alone_is_put_in_words():
    from crm_lib.survival import LapseBacktest

    index = pd.MultiIndex.from_tuples([(90, "last_purchase"), (180, "last_purchase")],
                                      names=["horizon_days", "censoring"])
    table = pd.DataFrame({"estimate": [0.8, 0.6], "lower": [0.75, 0.5], "upper": [0.85, 0.7], "truth": [0.78, 0.66],
                          "difference": [0.02, -0.06], "covered": [True, True]}, index=index)
    backtest = LapseBacktest(table=table, lapse_days=90, truncate_at=pd.Timestamp("2020-06-30"),
                             observation_end=pd.Timestamp("2020-12-31"), customers=50, alpha=0.05)
    # the only rule in the table is read: its longest horizon, 180 days
    assert backtest.sentence().startswith(
        "Estimated on the data up to 2020-06-30 (50 customers, lapse 90 days), the 180-day retention is 60.0% "
        "(95% interval 50.0% to 70.0%); the window to 2020-12-31 shows 66.0% for the same customers, within the "
        "interval.")
