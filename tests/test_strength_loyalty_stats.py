"""Loyalty statistics a reviewer reads: the H2 p-value and interval, bootstrap knobs, lifetimes in hours
(issue 16, surviving mutants). Expected values from statsmodels, scipy's t distribution and hand
arithmetic; public names of crm_lib.loyalty only.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from lifetimes import ParetoNBDFitter
from scipy import stats

from crm_lib import loyalty
from crm_lib.exceptions import ParamsError


def _panel(groups: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    panel = pd.DataFrame({"customer_id": np.repeat([f"c{i}" for i in range(groups)], 4),
                          "tenure_period": np.tile(np.arange(4), groups)})
    panel["profit"] = rng.normal(0, 1, len(panel)) + np.repeat(rng.normal(0, 3, groups), 4) + 0.2 * panel["tenure_period"]
    return panel


@pytest.mark.parametrize("groups", [2, 6, 25])
def test_fixed_effects_p_value_and_interval_use_t_with_groups_minus_one_df(groups):
    panel = _panel(groups, seed=groups)
    fe = loyalty.fixed_effects_slope(panel)
    ref = smf.ols("profit ~ tenure_period + C(customer_id)", data=panel).fit(
        cov_type="cluster", cov_kwds={"groups": pd.factorize(panel["customer_id"])[0]})
    slope, se = ref.params["tenure_period"], ref.bse["tenure_period"]
    assert fe["se"] == pytest.approx(se, rel=1e-6)
    # Cameron & Miller (2015), sec. III.C: Wald t against t(G - 1) with G clusters.
    t = slope / se
    assert fe["t"] == pytest.approx(t, rel=1e-6)
    assert fe["p_value"] == pytest.approx(2 * stats.t.sf(abs(t), groups - 1), rel=1e-6)
    q = stats.t.ppf(0.975, groups - 1)
    assert (fe["ci_low"], fe["ci_high"]) == pytest.approx((slope - q * se, slope + q * se), rel=1e-6)


def test_fixed_effects_with_one_customer_has_no_error_estimate():
    panel = pd.DataFrame({"customer_id": ["a"] * 3, "tenure_period": [0, 1, 2], "profit": [1.0, 2.5, 3.0]})
    fe = loyalty.fixed_effects_slope(panel)
    assert fe["slope"] == pytest.approx(1.0)  # (-1 * -1.1667 + 1 * 0.8333) / 2
    assert fe["groups"] == 1 and np.isnan(fe["se"]) and np.isnan(fe["p_value"])


def test_bootstrap_interval_of_resamples_without_variation_warns_nothing():
    x = np.array([1.0, 1.0, 1.0, 1.0, 2.0])  # many resamples have a constant x: r is undefined there
    y = np.array([3.0, 1.0, 2.0, 5.0, 4.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        low, high = loyalty.bootstrap_correlation_ci(x, y, n_bootstrap=200, seed=1)
    assert -1 <= low <= high <= 1


@pytest.fixture(scope="module")
def customers_and_panel():
    log, _ = loyalty.simulate_loyalty_log(120, seed=11, observation_days=300)
    model = ParetoNBDFitter()
    model.params_ = pd.Series({"r": 0.8, "alpha": 25.0, "s": 0.6, "beta": 120.0})
    d = loyalty.lifetime_durations(log, model)
    customers = loyalty.lifetime_profit(log, d, gross_margin=0.3, cost_per_order=1.5)
    used = customers[~customers["censored"]]
    return used, loyalty.tenure_panel(log, used, gross_margin=0.3, cost_per_order=1.5, skip_first_period=True)


def test_battery_passes_the_bootstrap_size_and_seed_to_h1(customers_and_panel):
    used, panel = customers_and_panel
    tests = loyalty.test_hypotheses(used, panel, n_bootstrap=60, seed=9)
    primary = tests["H1"].primary
    x, y = used["duration"].to_numpy(float), used["profit"].to_numpy(float)
    assert (primary.ci_low, primary.ci_high) == pytest.approx(
        loyalty.bootstrap_correlation_ci(x, y, method="spearman", n_bootstrap=60, seed=9))
    none = loyalty.test_hypotheses(used, panel, n_bootstrap=0)["H1"].primary
    assert np.isnan(none.ci_low) and np.isnan(none.ci_high)


class _HourlyPnbd:
    """lifetimes' Pareto/NBD P(alive) with the rates of tests/test_loyalty_calibration.py per hour instead of per day."""

    def __init__(self):
        self.model = ParetoNBDFitter()
        self.model.params_ = pd.Series({"r": 0.8, "alpha": 25.0 * 24, "s": 0.6, "beta": 120.0 * 24})

    def conditional_probability_alive(self, frequency, recency, T):
        return self.model.conditional_probability_alive(frequency, recency, T)


def test_hourly_lifetimes_end_on_the_day_of_their_last_hour():
    tx = pd.DataFrame({"customer_id": ["a", "a", "b"], "amount": 5.0,
                       "date": pd.to_datetime(["2021-01-01 09:00", "2021-01-03 18:00", "2021-01-02 08:00"])})
    d = loyalty.lifetime_durations(tx, _HourlyPnbd(), time_unit="h", observation_end="2021-03-01")
    first = pd.to_datetime(["2021-01-01 09:00", "2021-01-02 08:00"])
    # lifetime end = the day holding the last hour of the lifetime: first hour + duration hours
    expected = (first.floor("h") + pd.to_timedelta(d.loc[["a", "b"], "duration"].to_numpy(), unit="h")).floor("D")
    assert list(d.loc[["a", "b"], "lifetime_end"]) == list(expected)
    assert d["dips_below_threshold"].dtype.kind == "i"


def test_unknown_lifetime_unit_lists_the_units():
    tx = pd.DataFrame({"customer_id": ["a"], "date": pd.to_datetime(["2021-01-01"]), "amount": [1.0]})
    with pytest.raises(ParamsError, match=r"time_unit='M' is not supported; use one of D, W, h\."):
        loyalty.lifetime_durations(tx, _HourlyPnbd(), time_unit="M")


def test_mann_whitney_interval_uses_the_hanley_mcneil_standard_error():
    # long-lived prices 3, 5, 8, 9 against short-lived 1, 4, 6: 9 of the 12 pairs favour the long-lived.
    customers = pd.DataFrame({"duration": [10.0, 20.0, 30.0, 40.0, 1.0, 2.0, 3.0],
                              "price": [3.0, 5.0, 8.0, 9.0, 1.0, 4.0, 6.0]}, index=list("abcdefg"))
    mw = loyalty.test_price(customers, duration_split=5.0).tests[1]
    auc = 9 / 12
    # Hanley & McNeil (1982) eq. 2: Q1 = A / (2 - A), Q2 = 2 A^2 / (1 + A),
    # SE^2 = (A (1 - A) + (n_long - 1) (Q1 - A^2) + (n_short - 1) (Q2 - A^2)) / (n_long n_short).
    q1, q2 = 0.75 / 1.25, 2 * 0.5625 / 1.75
    se = np.sqrt((0.75 * 0.25 + 3 * (q1 - 0.5625) + 2 * (q2 - 0.5625)) / 12)
    assert se == pytest.approx(0.19594, abs=1e-5)
    assert mw.statistic == 9.0 and mw.estimate == pytest.approx(auc - 0.5)
    assert (mw.ci_low, mw.ci_high) == pytest.approx((0.25 - 1.96 * se, 0.25 + 1.96 * se))
    assert mw.p_value == pytest.approx(stats.mannwhitneyu([3, 5, 8, 9], [1, 4, 6], alternative="two-sided").pvalue)
