"""Checks written against the survivors of the seed-27 mutation sample (issue 16).

Expected values: hand computations, statsmodels, pandas on the input, or the classical public
function that the simulated-null pipeline must agree with; never the output under test itself.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from crm_lib import clv, loyalty
from crm_lib.clv import tracking
from tests.test_strength_survivors23 import _hand_prediction_set


def test_tracking_curve_ends_at_the_elapsed_part_of_a_week():
    pset = _hand_prediction_set()
    pset.meta = {**pset.meta, "time_unit": "W", "horizon_periods": 10.0}
    tx = pd.DataFrame({"customer_id": ["a", "b", "a"], "date": pd.to_datetime(["2020-02-05", "2020-02-20", "2020-02-27"]),
                       "amount": 1.0})
    score = tracking.score_prediction_set(pset, tx, "2020-03-01", n_draws=3)
    # 30 days after the end (2020-01-31) = 30/7 weeks: whole weeks 1-4, then the end of the data;
    # purchases on days 5, 20 and 27 after the end (each in its own week)
    assert [row["period"] for row in score.curve] == [1.0, 2.0, 3.0, 4.0, pytest.approx(30 / 7)]
    assert [row["actual"] for row in score.curve] == [1.0, 1.0, 2.0, 3.0, 3.0]


def test_rebuilt_transaction_model_has_the_parameters_of_a_fitted_one():
    model = _hand_prediction_set().transaction_model()
    # as MaximumLikelihoodFit._set_params names a fitted model's parameters
    expected = pd.Series({"r": 0.61, "alpha": 95.3, "s": 0.31, "beta": 43.0}, name="estimate")
    pd.testing.assert_series_equal(model.params_, expected)


class _AliveAlmostForever:
    """A stand-in lifetime model: P(alive) = 1 - 1e-11 T for everyone (T in the run's time unit)."""

    def conditional_probability_alive(self, frequency, recency, T):
        return 1 - 1e-11 * np.asarray(T, dtype=float)


def test_robustness_table_checks_lifetime_models_over_the_logs_span_in_its_time_unit():
    from tests.test_strength_loyalty_choices import KNOBS, ONE_ROW
    from tests.test_strength_loyalty_outputs import _pnbd

    tx, _ = loyalty.simulate_loyalty_log(150, seed=5, observation_days=300)
    weeks = (tx["date"].max() - tx["date"].min()).days / 7  # about 43 weeks
    # the stand-in keeps a one-time buyer alive with P = 1 - 4e-10 >= 1 - 1e-9 at that age: left out
    assert 1 - 1e-11 * weeks >= 1 - 1e-9
    weekly = _pnbd()
    weekly.params_ = weekly.params_ / pd.Series({"r": 1.0, "alpha": 7.0, "s": 1.0, "beta": 7.0})
    table = loyalty.robustness_table(tx, {"Pareto/NBD": weekly, "stand-in": _AliveAlmostForever()}, time_unit="W",
                                     **ONE_ROW, **KNOBS)
    assert list(table.attrs["left_out"]) == ["stand-in"]


def test_calibrated_verdicts_come_before_the_classical_ones_in_the_summary():
    from tests.test_strength_loyalty_choices import KNOBS, SPEND
    from tests.test_strength_loyalty_outputs import _pnbd

    tx, _ = loyalty.simulate_loyalty_log(150, seed=5, observation_days=300, price_lift_per_year=0.5)
    analysis = loyalty.loyalty_analysis(tx, _pnbd(), spend_model=SPEND, null_draws=1, n_bootstrap=0, **KNOBS)
    text = analysis.summary()
    assert 0 < text.index(analysis.calibration.summary()) < text.index(analysis.tests.summary())


def test_h2_primary_interval_is_the_cluster_robust_one_of_statsmodels():
    import statsmodels.formula.api as smf
    from scipy import stats

    rng = np.random.default_rng(8)
    panel = pd.DataFrame({"customer_id": np.repeat(np.arange(12), 5), "tenure_period": np.tile(np.arange(1, 6), 12)})
    panel["profit"] = 5 + 0.3 * panel["tenure_period"] + rng.normal(0, 1, 60) + np.repeat(rng.normal(0, 2, 12), 5)
    primary = loyalty.test_profit_tenure(panel).primary
    # OLS with a dummy per customer, CR1 errors clustered by customer, t with G - 1 = 11 df
    fit = smf.ols("profit ~ tenure_period + C(customer_id)", data=panel).fit(
        cov_type="cluster", cov_kwds={"groups": panel["customer_id"]})
    slope, se = fit.params["tenure_period"], fit.bse["tenure_period"]
    t = stats.t.ppf(0.975, 11)
    assert primary.ci_low == pytest.approx(slope - t * se, rel=1e-9)
    assert primary.ci_high == pytest.approx(slope + t * se, rel=1e-9)


def test_null_lifetimes_ending_on_the_first_day_are_not_censored():
    from crm_lib.loyalty.null import base_statistics, observed_base
    from crm_lib.models import ModifiedBetaGeoFit

    # MBG/NBD: a one-time buyer is alive at age 0 with P = 1 / (1 + a / b) = 0.2 < 0.5, so her
    # lifetime ends on the day of her first purchase (duration 0, not censored)
    model = ModifiedBetaGeoFit()
    model.params_ = pd.Series({"r": 0.8, "alpha": 25.0, "a": 2.0, "b": 0.5})
    tx, _ = loyalty.simulate_loyalty_log(150, seed=5, observation_days=300)
    classical = loyalty.lifetime_durations(tx, model)
    assert (classical["duration"] == 0).sum() > 0
    observed = base_statistics(observed_base(tx), model, gross_margin=0.3, cost_per_order=1.5).iloc[0]
    assert observed["censored_share"] == pytest.approx(classical["censored"].mean())


def test_h2_slope_of_a_base_where_nobody_spans_two_periods_is_nan_without_a_warning():
    from crm_lib.loyalty.null import base_statistics, observed_base
    from tests.test_strength_loyalty_outputs import _pnbd

    # six customers, each with two orders within 25 days: one 30-day tenure period each
    days = [0, 9, 1, 4, 2, 19, 3, 5, 4, 14, 5, 24]
    tx = pd.DataFrame({"customer_id": [c for c in "abcdef" for _ in range(2)],
                       "date": pd.Timestamp("2020-01-01") + pd.to_timedelta(days, unit="D"),
                       "amount": np.arange(12) + 5.0})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        stats_ = base_statistics(observed_base(tx), _pnbd(), censored="include", gross_margin=0.3,
                                 cost_per_order=1.0).iloc[0]
    assert stats_["customers_used"] == 6 and np.isnan(stats_["slope"])


def test_failed_cox_result_counts_no_customer_and_no_event():
    from crm_lib.survival import CoxResult

    failed = CoxResult.failed("no churn event", ["channel"])
    assert (failed.n, failed.events, failed.covariates) == (0, 0, ("channel",))


def test_cox_log_time_scale_refuses_churn_on_day_zero():
    from crm_lib.exceptions import ParamsError
    from crm_lib.survival import cox_proportional_hazards

    rng = np.random.default_rng(6)
    churn = pd.DataFrame({"duration_days": np.r_[0.0, rng.exponential(100, 59).round() + 1],
                          "churned": np.r_[True, rng.random(59) < 0.7], "first_order_amount": rng.gamma(2, 20, 60)})
    with pytest.raises(ParamsError, match="transform='log' needs positive event times"):
        cox_proportional_hazards(churn, covariates=["first_order_amount"], ph_transform="log")


def test_cohort_retention_rates_are_quarterly_by_default():
    from crm_lib.survival.tables import retention_rates_by_cohort

    tx, _ = loyalty.simulate_loyalty_log(60, seed=2, observation_days=400)
    rates = retention_rates_by_cohort(tx, min_cohort_size=1)
    quarters = set(pd.to_datetime(tx["date"]).dt.to_period("Q").astype(str))
    assert set(rates["period"]) <= quarters and len(set(rates["period"])) > 1

