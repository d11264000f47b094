"""Checks written against the survivors of the seed-22 mutation sample (issue 16).

Each expected value comes from a hand computation or from pandas/numpy applied to the
input directly, never from the function under test.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crm_lib import clv, loyalty


def _bg_nbd(r: float = 0.243, alpha: float = 4.414, a: float = 0.793, b: float = 2.426) -> clv.BetaGeoFit:
    """BG/NBD with FHL (2005) CDNOW estimates, set by hand (no fit)."""
    model = clv.BetaGeoFit()
    model.params_ = pd.Series({"r": r, "alpha": alpha, "a": a, "b": b})
    return model


def test_p_alive_history_without_an_end_runs_to_the_last_date_of_the_whole_log():
    tx = pd.DataFrame({"customer_id": ["a", "a", "b"],
                       "date": pd.to_datetime(["2020-01-01", "2020-01-03", "2020-01-06"]), "amount": 1.0})
    history = clv.p_alive_history(_bg_nbd(), tx, "a", time_unit="D")
    # the log's last date is b's purchase of 01-06: six days 01-01..01-06 for customer a
    assert list(history.index) == list(pd.date_range("2020-01-01", "2020-01-06"))
    assert history["age"].tolist() == [0, 1, 2, 3, 4, 5]


def test_repeat_purchase_counts_of_customers_too_young_to_repeat_are_all_zero():
    # ages of a millionth of a week: no simulated customer can make a repeat purchase, so every
    # one of the 50 customers is expected in group 0 and none in groups 1..7
    summary = pd.DataFrame({"frequency": np.zeros(50), "recency": np.zeros(50), "T": np.full(50, 1e-6)})
    counts = clv.repeat_purchase_counts(summary, _bg_nbd(), max_frequency=7, n_simulations=3)
    assert counts.index.tolist() == list(range(8))
    assert counts["actual"].tolist() == [50.0] + [0.0] * 7
    assert counts["expected"].tolist() == [50.0] + [0.0] * 7


def test_period_start_inverts_hourly_period_numbers():
    from crm_lib.clv.validation import _period_start
    from crm_lib.summary import period_numbers

    stamps = pd.Series(pd.to_datetime(["1970-01-01 00:00", "1970-01-02 05:30", "2021-03-04 23:59"]))
    starts = _period_start(period_numbers(stamps, "h"), "h")
    # hours since 1970-01-01 00:00: 0, 29 and the start of the hour by pandas' own floor
    assert list(starts) == list(stamps.dt.floor("h"))
    assert list(_period_start(np.array([0, 29]), "h")) == [pd.Timestamp("1970-01-01 00:00"),
                                                          pd.Timestamp("1970-01-02 05:00")]


def test_customer_slopes_by_hand_keep_the_grouping_name():
    panel = pd.DataFrame({"customer_id": ["a", "a", "a", "b", "b", "c"],
                          "tenure_period": [0, 1, 2, 0, 2, 0], "profit": [1.0, 3.0, 5.0, 4.0, 0.0, 9.0]})
    slopes = loyalty.customer_slopes(panel)
    # a: profit 1, 3, 5 at 0, 1, 2 -> slope 2; b: 4 then 0 two periods later -> -2; c has one row
    assert slopes.to_dict() == {"a": pytest.approx(2.0), "b": pytest.approx(-2.0)}
    assert slopes.index.name == "customer_id" and slopes.name == "slope"


def test_loyalty_profit_matrix_segment_series_is_named_segment():
    customers = pd.DataFrame({"duration": [1.0, 2.0, 3.0, 4.0], "profit": [1.0, 4.0, 2.0, 3.0],
                              "revenue": [2.0, 8.0, 4.0, 6.0]}, index=pd.Index(list("wxyz"), name="customer_id"))
    matrix = loyalty.loyalty_profit_matrix(customers)
    # medians 2.5 and 2.5: w short/low, x short/high, y long/low, z long/high
    assert matrix.segment.name == "segment"
    assert matrix.segment.to_dict() == {"w": "strangers", "x": "butterflies", "y": "barnacles", "z": "true friends"}


def test_segment_examples_prefer_the_one_customer_with_exactly_two_orders():
    customers = pd.DataFrame({"segment": ["strangers"] * 3, "duration": [1.0, 2.0, 3.0], "profit": [1.0, 2.0, 3.0],
                              "orders": [1, 2, 1]}, index=pd.Index(["p", "q", "r"], name="customer_id"))
    # q is the only customer with two orders (and also the median one): it illustrates the cell
    assert loyalty.segment_examples(customers).to_dict() == {"strangers": "q"}
    customers["orders"] = [1, 1, 2]  # now r is the only repeat customer, although q is the median
    assert loyalty.segment_examples(customers).to_dict() == {"strangers": "r"}


def test_simulate_in_whole_periods_floors_the_recency():
    model = _bg_nbd()
    T = np.full(400, 39.5)
    exact = model.simulate(T, seed=3)
    whole = model.simulate(T, seed=3, whole_periods=True)
    assert (exact["recency"] != np.floor(exact["recency"])).any()  # continuous recencies to floor
    np.testing.assert_array_equal(whole["recency"], np.floor(exact["recency"]))


def test_predict_customer_value_reports_the_repeat_buyers_left_out_of_the_spend_fit():
    tx, _ = loyalty.simulate_loyalty_log(300, seed=6, observation_days=400)
    counts = tx.groupby("customer_id").size()
    repeaters = counts[counts >= 3].index[:2]
    first_day = tx.groupby("customer_id")["date"].transform("min")
    # two repeat buyers whose repeat orders are free: mean repeat spend 0, left out of Gamma-Gamma
    tx.loc[tx["customer_id"].isin(repeaters) & (tx["date"] > first_day), "amount"] = 0.0
    values = clv.predict_customer_value(tx, model="bg_nbd", time_unit="D", horizon_months=6,
                                        observation_end=f"{tx['date'].max():%Y-%m-%d}")
    assert values.attrs["spend_fit_excluded"] == 2


def test_lapse_spells_ignore_unused_categories_of_a_categorical_id():
    from crm_lib.survival.lapse import time_to_churn

    tx = pd.DataFrame({"customer_id": pd.Categorical(["b", "a", "b", "a"], categories=["a", "b", "zz"]),
                       "date": pd.to_datetime(["2020-01-01", "2020-01-02", "2020-03-01", "2020-09-01"]),
                       "amount": [1.0, 2.0, 3.0, 4.0]})
    churn = time_to_churn(tx, lapse_days=30)
    # 'zz' never bought; a and b each lapse (gaps of 243 and 60 days > 30) after a one-day first spell
    assert [str(c) for c in churn.index] == ["a", "b"]
    assert churn["purchases"].tolist() == [1, 1]
    assert churn["first_order_amount"].tolist() == [2.0, 1.0]
    assert churn["churned"].tolist() == [True, True] and churn["reactivated"].tolist() == [True, True]


def test_scoring_with_the_default_seed_zero_is_reproducible(tmp_path):
    from crm_lib.clv import customer_value_table, fit_spend_model
    from crm_lib.clv.tracking import load_prediction_sets, score_prediction_set, store_prediction_set
    from crm_lib.models import ParetoNBDFit
    from crm_lib.simulate import simulate_stationary_log
    from crm_lib.summary import rfm_summary

    log = simulate_stationary_log(300, seed=5, observation_days=400, acquisition_days=120)
    end = log["date"].min() + pd.Timedelta(days=299)
    model = ParetoNBDFit()
    model.params_ = pd.Series((0.61, 95.3, 0.31, 43.0), index=list(model.param_names))  # the simulator's truth
    model.log_params_covariance_ = np.zeros((4, 4))
    summary = rfm_summary(log[log["date"] <= end], observation_end=end, time_unit="D")
    spend = fit_spend_model(summary)
    values = customer_value_table(summary, model, spend, horizon_periods=365, horizon_months=6,
                                  discount_rate_monthly=0.01, gross_margin=0.3, time_unit="D")
    store_prediction_set(values, model, spend, tmp_path, observation_end=f"{end:%Y-%m-%d}", time_unit="D",
                         horizon_periods=365)
    (pset,) = load_prediction_sets(tmp_path)
    first = score_prediction_set(pset, log, log["date"].max(), n_draws=20)  # seed 0, the default
    again = score_prediction_set(pset, log, log["date"].max(), n_draws=20, seed=0)
    assert (first.interval_lower, first.interval_upper) == (again.interval_lower, again.interval_upper)
    assert first.interval_lower <= first.predicted_purchases <= first.interval_upper


def test_segment_examples_compare_percentile_ranks_when_some_durations_are_unknown():
    # X, Y, Z are the strangers; seven others are barnacles, five of them with an unknown (censored)
    # duration, so duration ranks run over 5 customers and profit ranks over 10.
    ids = ["X", "Y", "Z", "O1", "O2", "O3", "O4", "O5", "O6", "O7"]
    customers = pd.DataFrame({
        "segment": ["strangers"] * 3 + ["barnacles"] * 7,
        "duration": [30.0, 10.0, 50.0, 20.0, 40.0] + [np.nan] * 5,
        "profit": [8.0, 5.0, 2.0, 1.0, 3.0, 4.0, 6.0, 7.0, 9.0, 10.0],
        "orders": 2}, index=pd.Index(ids, name="customer_id"))
    # duration ranks X 3, Y 1, Z 5 (of 5; median 3); profit ranks X 8, Y 5, Z 2 (of 10; median 5).
    # Distances in percentile ranks: X 0/5 + 3/10 = 0.3, Y 2/5 + 0 = 0.4, Z 2/5 + 3/10 = 0.7 -> X
    # (in raw ranks Y would win: X 0 + 3 = 3, Y 2 + 0 = 2).
    assert loyalty.segment_examples(customers)["strangers"] == "X"


class _AliveAlmostOne:
    """A stand-in lifetime model whose P(alive) is a fixed number (as a fitted model returns it)."""

    def __init__(self, p: float):
        self.p = p

    def conditional_probability_alive(self, frequency, recency, T):
        return np.full(np.shape(T), self.p)


def test_lifetime_model_check_treats_within_a_billionth_of_one_as_one():
    from crm_lib.exceptions import ModelFitError
    from crm_lib.loyalty.lifetime import check_lifetime_model

    with pytest.raises(ModelFitError, match="P\\(alive\\) = 1 to every one-time buyer"):
        check_lifetime_model(_AliveAlmostOne(1.0 - 1e-9), horizon=52)  # the documented tolerance, inclusive
    check_lifetime_model(_AliveAlmostOne(1.0 - 1e-6), horizon=52)  # a one-time buyer who can drop out


def test_the_runner_hook_stores_the_runs_equity_interval_with_its_prediction_set(tmp_path):
    import types

    from crm_lib.clv import customer_value_table, fit_spend_model
    from crm_lib.clv.tracking import load_prediction_sets, prediction_folder, track_run_predictions
    from crm_lib.models import ParetoNBDFit
    from crm_lib.simulate import simulate_stationary_log
    from crm_lib.summary import rfm_summary

    log = simulate_stationary_log(200, seed=7, observation_days=300, acquisition_days=100)
    end = log["date"].max()
    model = ParetoNBDFit()
    model.params_ = pd.Series((0.61, 95.3, 0.31, 43.0), index=list(model.param_names))
    model.log_params_covariance_ = np.zeros((4, 4))
    summary = rfm_summary(log, observation_end=end, time_unit="D")
    spend = fit_spend_model(summary)
    values = customer_value_table(summary, model, spend, horizon_periods=365, horizon_months=6,
                                  discount_rate_monthly=0.01, gross_margin=0.3, time_unit="D")
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "customer_values.pkl").write_bytes(b"")
    (cache / "equity.pkl").write_bytes(b"")
    equity = types.SimpleNamespace(estimate=1000.0, expected_lower=900.0, expected_upper=1100.0,
                                   predictive_lower=800.0, predictive_upper=1200.0, level=0.95, horizon_months=6)
    ctx = types.SimpleNamespace(
        log=types.SimpleNamespace(observation_end=end, transactions=log, time_unit="D"), knobs={"seed": 1},
        cache_dir=cache, equity=equity, customer_values=values, transaction_model=model, spend_model=spend,
        horizon_periods=365)
    report = tmp_path / "report"
    report.mkdir()
    assert track_run_predictions(ctx, tmp_path / "private", "run", report) == []  # nothing earlier to score
    (pset,) = load_prediction_sets(prediction_folder(tmp_path / "private", "run"))
    assert pset.meta["equity"] == {"estimate": 1000.0, "expected_lower": 900.0, "expected_upper": 1100.0,
                                   "predictive_lower": 800.0, "predictive_upper": 1200.0, "level": 0.95,
                                   "horizon_months": 6}
