"""Checks written against the survivors of the seed-29 mutation sample (issue 16).

Expected values: hand computations from the inputs and the documented rules; never the
output under test itself.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from crm_lib import clv, loyalty
from crm_lib.clv import tracking
from tests.test_strength_survivors23 import _hand_prediction_set


def test_predictive_interval_of_the_score_is_reproducible_from_its_seed():
    pset = _hand_prediction_set()
    spec = {**pset.meta["transaction_model"], "log_params_covariance": np.diag([0.05] * 4).tolist()}
    pset.meta = {**pset.meta, "transaction_model": spec}  # parameter draws that differ with the seed
    tx = pd.DataFrame({"customer_id": ["a"], "date": pd.to_datetime(["2020-02-05"]), "amount": 1.0})
    first, again = (tracking.score_prediction_set(pset, tx, "2020-03-31", n_draws=20, seed=3) for _ in range(2))
    assert (first.interval_lower, first.interval_upper) == (again.interval_lower, again.interval_upper)


def test_realised_equity_of_a_weekly_set_counts_months_of_30_days():
    pset = _hand_prediction_set()
    pset.meta = {**pset.meta, "time_unit": "W", "horizon_periods": 10.0}
    tx = pd.DataFrame({"customer_id": ["a", "b", "a"], "date": pd.to_datetime(["2020-02-05", "2020-02-20", "2020-03-10"]),
                       "amount": [10.10, 20.00, 5.25]})
    score = tracking.score_prediction_set(pset, tx, "2020-03-31", n_draws=3)
    # a month is 4.345 weeks of 7 days = 30.4 days: days 5 and 20 after the end are in month 1, day 39 is not
    assert score.equity["complete"] is True
    assert score.equity["realised"] == pytest.approx(0.5 * (10.10 + 20.00) / 1.01)


def _equity_inputs():
    from crm_lib.models import GammaGammaFit

    model = clv.BetaGeoFit()
    model.params_ = pd.Series({"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426})
    model.log_params_covariance_ = np.diag([0.01] * 4)
    spend = GammaGammaFit()
    spend.params_ = pd.Series({"p": 6.25, "q": 3.74, "v": 15.44})
    spend.log_params_covariance_ = np.diag([1e-4] * 3)
    summary = pd.DataFrame({"frequency": [0.0, 2.0, 5.0], "recency": [0.0, 20.0, 30.0], "T": [38.0] * 3,
                            "monetary_value": [0.0, 30.0, 25.0]})
    return model, spend, summary


def test_equity_of_every_customer_describes_its_method_without_a_sample_clause():
    model, spend, summary = _equity_inputs()
    equity = clv.customer_equity(model, spend, summary, n_draws=4, seed=1, horizon_months=3)
    assert equity.predictive_method.endswith("simulated from the fitted models given the customer's history")


def test_simulated_realised_equity_uses_seed_zero_by_default():
    model, spend, summary = _equity_inputs()
    default = clv.simulate_realised_equity(model, spend, summary, n_simulations=5, horizon_months=3)
    zero = clv.simulate_realised_equity(model, spend, summary, n_simulations=5, horizon_months=3, seed=0)
    np.testing.assert_array_equal(default, zero)


def test_null_statistics_of_free_orders_with_a_cost_warn_nothing():
    from crm_lib.loyalty.null import base_statistics, observed_base
    from tests.test_strength_loyalty_outputs import _pnbd

    tx, _ = loyalty.simulate_loyalty_log(60, seed=3, observation_days=300)
    first = tx["customer_id"].iloc[0]
    tx.loc[tx["customer_id"] == first, "amount"] = 0.0  # free orders: revenue 0, cost 1.5 per order
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        stats_ = base_statistics(observed_base(tx), _pnbd(), gross_margin=0.3, cost_per_order=1.5,
                                 censored="include").iloc[0]
    assert np.isfinite(stats_["mean_cost_share"])


def test_gamma_gamma_at_q_one_gives_one_time_buyers_an_infinite_mean_without_a_warning():
    from crm_lib.models import GammaGammaFit

    spend = GammaGammaFit()
    spend.params_ = pd.Series({"p": 2.0, "q": 1.0, "v": 10.0})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = spend.conditional_expected_average_profit(np.array([0.0, 2.0]), np.array([0.0, 12.0]))
    # p x + q - 1 = 0 for the one-time buyer; p (v + x m) / (p x) = 2 (10 + 24) / 4 = 17 for the other
    assert out[0] == np.inf and out[1] == pytest.approx(17.0)


def test_sbg_names_a_single_list_of_survivors_cohort():
    from crm_lib.exceptions import ModelFitError
    from crm_lib.models import ShiftedBetaGeometricFitter

    with pytest.raises(ModelFitError, match=r"no customer cancelled in any cohort \(cohort\)"):
        ShiftedBetaGeometricFitter().fit([100, 100, 100])


def test_lifetime_identification_takes_a_beta_below_one():
    from crm_lib.retention import lifetime_identification

    # alpha 1.5 with se 0.1: 1.5 exp(+-1.96 x 0.1 / 1.5) = 1.31 to 1.71, above 1: finite mean lifetime
    assert lifetime_identification(1.5, 0.8, alpha_se=0.1).status == "finite"


def test_failed_tables_have_an_unnamed_reason_row():
    from crm_lib.survival import CoxResult

    shown = CoxResult.failed("no churn event; lower lapse_days").table()
    assert shown.index.name == "" and list(shown.index) == ["reason"]


def test_kaplan_meier_curve_with_a_censored_tail_has_a_plain_row_index():
    from crm_lib.survival import kaplan_meier

    # the last customer is followed to day 9 without churning: the curve gets a tail row at day 9
    churn = pd.DataFrame({"duration_days": [1.0, 2.0, 2.0, 3.0, 9.0], "churned": [True, True, False, True, False]})
    curve = kaplan_meier(churn).curves
    assert curve["time"].iloc[-1] == 9.0
    assert list(curve.index) == list(range(len(curve)))


def test_failed_log_rank_keeps_its_grouping_column():
    from crm_lib.survival import log_rank_test

    churn = pd.DataFrame({"duration_days": np.arange(30.0), "churned": True, "band": ["low", "high"] * 15})
    assert log_rank_test(churn, group_col="band", min_group_size=20, errors="report").group_col == "band"


def test_cox_scaled_residuals_carry_time_and_the_transformed_time_g():
    from crm_lib.survival import cox_proportional_hazards

    rng = np.random.default_rng(6)
    churn = pd.DataFrame({"duration_days": rng.exponential(100, 60).round() + 1, "churned": rng.random(60) < 0.7,
                          "first_order_amount": rng.gamma(2, 20, 60)})
    cox = cox_proportional_hazards(churn, covariates=["first_order_amount"])
    assert list(cox.scaled_schoenfeld.columns) == ["time", "g", "first_order_amount"]


def test_sort_by_time_returns_sorted_data_itself_without_a_copy():
    from crm_lib.survival.risk_sets import sort_by_time

    time, status, x = np.array([1.0, 2.0, 2.0, 5.0]), np.array([1, 0, 1, 1]), np.arange(8.0).reshape(4, 2)
    out = sort_by_time(time, status, x)
    assert out[0] is time and out[1] is status and out[2] is x  # as documented: no copy when already sorted
    shuffled = sort_by_time(time[::-1].copy(), status[::-1].copy(), x[::-1].copy())
    np.testing.assert_array_equal(shuffled[0], [1.0, 2.0, 2.0, 5.0])
    np.testing.assert_array_equal(shuffled[1], [1, 1, 0, 1])  # stable: the two day-2 rows keep their order
