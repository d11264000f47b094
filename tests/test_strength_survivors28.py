"""Checks written against the survivors of the seed-28 mutation sample (issue 16).

Expected values: hand computations from the inputs and the documented rules; never the
output under test itself.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crm_lib.clv import tracking
from tests.test_strength_survivors23 import _hand_prediction_set


def test_score_naive_benchmark_and_level_by_hand():
    pset = _hand_prediction_set()
    c = pset.customers.copy()
    c.loc["c", "T"] = 0.5  # a customer half a day old: the naive rate divides by 0.5, not by 1
    pset.customers = c
    tx = pd.DataFrame({"customer_id": ["a", "b"], "date": pd.to_datetime(["2020-02-05", "2020-02-20"]),
                       "amount": 1.0})
    score = tracking.score_prediction_set(pset, tx, "2020-02-29", n_draws=3, level=0.8)
    # 29 days elapsed; naive = frequency / T x 29: a 2/30 x 29, b 0, c 1/0.5 x 29; actual 1, 1, 0
    naive = np.array([2 / 30 * 29, 0.0, 1 / 0.5 * 29])
    assert score.mae_naive == pytest.approx(np.abs(naive - [1.0, 1.0, 0.0]).mean())
    assert score.level == 0.8


def test_discrete_time_sets_are_refused_with_the_models_to_use():
    from crm_lib.exceptions import ParamsError

    pset = _hand_prediction_set()
    pset.meta = {**pset.meta, "transaction_model": {**pset.meta["transaction_model"], "name": "bg_bb"}}
    tx = pd.DataFrame({"customer_id": ["a"], "date": pd.to_datetime(["2020-02-05"]), "amount": 1.0})
    with pytest.raises(ParamsError, match=r"Use bg_nbd, mbg_nbd or pareto_nbd as the value model"):
        tracking.score_prediction_set(pset, tx, "2020-02-29")


def test_bg_bb_p_alive_keeps_the_index_of_a_series_of_last_purchases():
    from crm_lib.models import BetaGeoBetaBinomFit

    model = BetaGeoBetaBinomFit()
    model.params_ = pd.Series({"alpha": 1.204, "beta": 0.750, "gamma": 0.657, "delta": 2.783})
    recency = pd.Series([0.0, 5.0], index=["p", "q"])
    out = model.conditional_probability_alive(np.array([0.0, 3.0]), recency, np.array([6.0, 6.0]))
    assert isinstance(out, pd.Series) and list(out.index) == ["p", "q"]


def test_bg_bb_simulates_a_thousand_customers_by_default():
    from crm_lib.models import BetaGeoBetaBinomFit

    model = BetaGeoBetaBinomFit()
    model.params_ = pd.Series({"alpha": 1.204, "beta": 0.750, "gamma": 0.657, "delta": 2.783})
    assert len(model.simulate(6, seed=1)) == 1000


def test_failed_cox_joins_the_reason_and_the_notes_with_a_space():
    from crm_lib.survival import cox_proportional_hazards

    rng = np.random.default_rng(4)
    churn = pd.DataFrame({"duration_days": rng.exponential(100, 30).round(), "churned": rng.random(30) < 0.7,
                          "first_order_amount": 10.0})
    result = cox_proportional_hazards(churn, covariates=["first_order_amount", "channel"], skip_absent=True,
                                      errors="report")
    # the reason, then (one space) the note that channel is not in the table
    assert result.error.startswith("Cox covariate 'first_order_amount' has the same value (")
    assert result.error.endswith("remove it from cox_covariates. Left out channel: the transaction log has no such "
                                 "column (map a column of the file to it in the params file to use it).")


def test_kaplan_meier_without_churn_columns_points_to_the_churn_table():
    from crm_lib.exceptions import ParamsError
    from crm_lib.survival import kaplan_meier

    with pytest.raises(ParamsError, match=r"time to churn: column\(s\) \['churned'\] not found.*the churn table"):
        kaplan_meier(pd.DataFrame({"duration_days": [1.0, 2.0]}))


def test_lapse_table_says_not_identified_only_when_the_curve_ends_before_the_horizon():
    from crm_lib.survival.lapse import format_lapse_sensitivity

    sensitivity = pd.DataFrame({"customers": [10, 10], "churned_share": [0.5, 0.5], "reactivated_share": [0.1, 0.1],
                                "median_days": [100.0, 100.0], "retention_at_horizon": [np.nan, np.nan],
                                "identified_until_days": [200.0, 365.0], "retention_lower": [np.nan, np.nan],
                                "retention_upper": [np.nan, np.nan]}, index=pd.Index([90, 180], name="lapse_days"))
    shown = format_lapse_sensitivity(sensitivity, horizon_days=365)
    assert shown["retention at 365 days"].tolist() == ["not identified (curve ends at 200 days)", "n/a"]


def test_backtest_leaves_coverage_empty_where_the_short_window_identifies_nothing():
    from crm_lib.survival import lapse_backtest

    # cut at day 90, lapse 30; g still buys at the cut, so the short window's curve stops before 300 days
    days = {"a": [0, 10, 100], "b": [5, 200], "c": [20], "d": [2, 40, 150], "g": [0, 25, 50, 75, 88, 120, 150, 180]}
    tx = pd.DataFrame([(c, pd.Timestamp("2020-01-01") + pd.Timedelta(days=d), 1.0) for c, ds in days.items() for d in ds],
                      columns=["customer_id", "date", "amount"])
    table = lapse_backtest(tx, truncate_at="2020-03-31", lapse_days=30, horizons_days=(5, 300)).table
    unidentified = table[table["estimate"].isna()]
    assert len(unidentified) > 0  # 300 days cannot be seen in a 90-day window
    assert unidentified["covered"].isna().all()


def test_one_value_band_holds_every_customer():
    from crm_lib.survival.lapse import value_band_labels

    labels = value_band_labels(pd.Series([5.0, 12.0, 40.0]), bands=1)
    assert labels.tolist() == ["1 (5-40)"] * 3
