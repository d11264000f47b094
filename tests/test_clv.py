"""Tests of crm_lib.clv: published estimates, agreement with lifetimes, parameter recovery,
invariants, exact values on hand-made data and error messages."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lifetimes
from lifetimes.datasets import load_cdnow_summary, load_dataset

from crm_lib import clv, simulate
from crm_lib.exceptions import DataValidationError, ModelFitError, ParamsError


@pytest.fixture(scope="module")
def cdnow_sample() -> pd.DataFrame:
    # 2,357 customers, 39-week calibration, weeks (FHL 2005a data set).
    return load_cdnow_summary(index_col=[0])


@pytest.fixture(scope="module")
def cdnow_with_spend() -> pd.DataFrame:
    df = load_dataset("cdnow_customers_summary_with_transactions.csv")
    return df.rename(columns={"x": "frequency", "t_x": "recency", "zbar": "monetary_value"}).set_index("ID")


@pytest.fixture(scope="module")
def fits(cdnow_sample):
    return {m: clv.fit_model(cdnow_sample, m) for m in ("bg_nbd", "mbg_nbd", "pareto_nbd")}


# --- published figures ------------------------------------------------------------------


def test_bg_nbd_reproduces_fader_hardie_lee_2005(fits):
    # Fader, Hardie & Lee (2005a), "Counting your customers the easy way", section 5:
    # r = 0.243, alpha = 4.414, a = 0.793, b = 2.426, LL = -9582.4.
    fit = fits["bg_nbd"]
    np.testing.assert_allclose(fit.params_[["r", "alpha", "a", "b"]], [0.243, 4.414, 0.793, 2.426], atol=6e-4)
    assert fit.log_likelihood_ == pytest.approx(-9582.4, abs=0.05)
    assert fit.converged_
    assert fit.aic_ == pytest.approx(2 * 4 + 2 * 9582.43, abs=0.1)
    assert fit.bic_ == pytest.approx(4 * np.log(2357) + 2 * 9582.43, abs=0.1)


def test_pareto_nbd_reproduces_published_cdnow_estimates(fits):
    # Fader, Hardie & Lee (2005a), table/section 5 and Fader & Hardie note 008 (Pareto/NBD
    # in Excel): r = 0.553, alpha = 10.578, s = 0.606, beta = 11.669, LL = -9595.0.
    fit = fits["pareto_nbd"]
    np.testing.assert_allclose(fit.params_[["r", "alpha", "s", "beta"]], [0.553, 10.578, 0.606, 11.669], atol=2e-3)
    assert fit.log_likelihood_ == pytest.approx(-9595.0, abs=0.05)


def test_gamma_gamma_reproduces_fader_hardie_lee_2005b(cdnow_with_spend):
    # Fader, Hardie & Lee (2005b), "RFM and CLV", and Hardie's note 025: p = 6.25,
    # q = 3.74, gamma = 15.44 on the 946 repeat buyers of the CDNOW sample.
    fit = clv.fit_spend_model(cdnow_with_spend)
    np.testing.assert_allclose(fit.params_[["p", "q", "v"]], [6.25, 3.74, 15.44], atol=0.01)
    assert fit.n_customers_ == 946
    # Note 025: E[Z] = p v / (q - 1) = $35.22... (population mean spend per transaction).
    assert fit.population_mean_spend() == pytest.approx(6.25 * 15.44 / 2.74, rel=5e-3)


def test_bg_bb_reproduces_fader_hardie_shang_2010():
    # Fader, Hardie & Shang (2010), "Customer-base analysis in a discrete-time
    # noncontractual setting", table 2 (donations, 11,104 donors, 6 periods):
    # alpha = 1.204, beta = 0.750, gamma = 0.657, delta = 2.783, LL = -33,225.6.
    donations = load_dataset("donations.csv").rename(columns={"periods": "n_periods"})
    fit = clv.fit_model(donations, "bg_bb", weights=donations["weights"])
    np.testing.assert_allclose(fit.params_, [1.204, 0.750, 0.657, 2.783], atol=1e-3)
    assert fit.log_likelihood_ == pytest.approx(-33225.6, abs=0.05)
    assert fit.n_customers_ == 11104


# --- same numbers as lifetimes ------------------------------------------------------------


@pytest.mark.parametrize(
    "model, fitter",
    [("bg_nbd", lifetimes.BetaGeoFitter), ("mbg_nbd", lifetimes.ModifiedBetaGeoFitter)],
)
def test_parameters_and_standard_errors_equal_lifetimes(fits, cdnow_sample, model, fitter):
    reference = fitter().fit(cdnow_sample["frequency"], cdnow_sample["recency"], cdnow_sample["T"])
    np.testing.assert_allclose(fits[model].params_, reference.params_, rtol=1e-4)
    np.testing.assert_allclose(fits[model].standard_errors_, reference.standard_errors_, rtol=1e-3)


def test_penalized_fit_equals_lifetimes(cdnow_sample):
    ours = clv.fit_model(cdnow_sample, "bg_nbd", penalizer_coef=0.01)
    reference = lifetimes.BetaGeoFitter(penalizer_coef=0.01).fit(
        cdnow_sample["frequency"], cdnow_sample["recency"], cdnow_sample["T"])
    np.testing.assert_allclose(ours.params_, reference.params_, rtol=1e-4)
    assert not np.allclose(ours.params_, clv.fit_model(cdnow_sample, "bg_nbd").params_, rtol=1e-3)


@pytest.mark.parametrize(
    "model, fitter",
    [("bg_nbd", lifetimes.BetaGeoFitter), ("mbg_nbd", lifetimes.ModifiedBetaGeoFitter),
     ("pareto_nbd", lifetimes.ParetoNBDFitter)],
)
def test_predictions_equal_lifetimes(fits, cdnow_sample, model, fitter):
    ours = fits[model]
    reference = fitter()
    reference.params_ = ours.params_.copy()
    f, r, T = cdnow_sample["frequency"], cdnow_sample["recency"], cdnow_sample["T"]
    np.testing.assert_allclose(ours.conditional_probability_alive(f, r, T),
                               reference.conditional_probability_alive(f, r, T), rtol=1e-12)
    np.testing.assert_allclose(ours.conditional_expected_number_of_purchases_up_to_time(39, f, r, T),
                               reference.conditional_expected_number_of_purchases_up_to_time(39, f, r, T), rtol=1e-12)
    t = np.array([1.0, 13.0, 52.0, 78.0])
    np.testing.assert_allclose(ours.expected_number_of_purchases_up_to_time(t),
                               reference.expected_number_of_purchases_up_to_time(t), rtol=1e-12)
    # A Series in gives a Series with the same index out, as in lifetimes.
    assert ours.conditional_probability_alive(f, r, T).index.equals(cdnow_sample.index)


def test_pareto_nbd_fit_is_at_least_as_good_as_lifetimes(fits, cdnow_sample):
    # lifetimes stops Nelder-Mead at tol=1e-4, so it matches only to about 1e-3; our
    # optimum must be as good or better on lifetimes' own objective.
    reference = lifetimes.ParetoNBDFitter().fit(cdnow_sample["frequency"], cdnow_sample["recency"], cdnow_sample["T"])
    np.testing.assert_allclose(fits["pareto_nbd"].params_, reference.params_, rtol=2e-3)
    scale = 1 / cdnow_sample["T"].max()
    ours = fits["pareto_nbd"].params_.to_numpy() * [1, scale, 1, scale]
    args = (cdnow_sample["frequency"].to_numpy(), cdnow_sample["recency"].to_numpy() * scale,
            cdnow_sample["T"].to_numpy() * scale, np.ones(len(cdnow_sample)), 0.0)
    assert lifetimes.ParetoNBDFitter._negative_log_likelihood(ours, *args) <= reference._negative_log_likelihood_ + 1e-9


@pytest.mark.parametrize("model", ["bg_nbd", "mbg_nbd", "pareto_nbd"])
@pytest.mark.parametrize("time_unit, months, rate", [("W", 12, 0.01), ("W", 3, 0.0), ("D", 6, 0.02)])
def test_clv_equals_lifetimes(cdnow_with_spend, model, time_unit, months, rate):
    data = cdnow_with_spend
    transaction_model = clv.fit_model(data, model)
    spend_model = clv.fit_spend_model(data)
    ours = clv.customer_lifetime_value(transaction_model, spend_model, data, horizon_months=months,
                                       discount_rate_monthly=rate, time_unit=time_unit)
    reference_tx = {"bg_nbd": lifetimes.BetaGeoFitter, "mbg_nbd": lifetimes.ModifiedBetaGeoFitter,
                    "pareto_nbd": lifetimes.ParetoNBDFitter}[model]()
    reference_tx.params_ = transaction_model.params_.copy()
    reference_tx.predict = reference_tx.conditional_expected_number_of_purchases_up_to_time
    reference_gg = lifetimes.GammaGammaFitter()
    reference_gg.params_ = spend_model.params_.copy()
    expected = reference_gg.customer_lifetime_value(
        reference_tx, data["frequency"], data["recency"], data["T"], data["monetary_value"],
        time=months, discount_rate=rate, freq=time_unit)
    np.testing.assert_allclose(ours, expected, rtol=1e-6)
    assert ours.index.equals(data.index)


def test_undiscounted_clv_telescopes_to_expected_purchases_times_spend(cdnow_with_spend):
    # With no discount the monthly differences sum to E[X(12 months)] exactly.
    data = cdnow_with_spend
    bg, gg = clv.fit_model(data, "bg_nbd"), clv.fit_spend_model(data)
    value = clv.customer_lifetime_value(bg, gg, data, horizon_months=12, discount_rate_monthly=0.0,
                                        time_unit="W", gross_margin=0.3)
    purchases = bg.conditional_expected_number_of_purchases_up_to_time(12 * 4.345, data["frequency"],
                                                                        data["recency"], data["T"])
    spend = gg.conditional_expected_average_profit(data["frequency"], data["monetary_value"])
    np.testing.assert_allclose(value, 0.3 * purchases * spend, rtol=1e-10)


# --- parameter recovery --------------------------------------------------------------------

AGES = np.random.default_rng(5).integers(20, 80, 4000).astype(float)


@pytest.mark.parametrize(
    "model, simulator, truth",
    [
        ("bg_nbd", simulate.simulate_bg_nbd, {"r": 0.5, "alpha": 6.0, "a": 0.8, "b": 2.5}),
        ("mbg_nbd", simulate.simulate_mbg_nbd, {"r": 0.5, "alpha": 6.0, "a": 0.8, "b": 2.5}),
        ("pareto_nbd", simulate.simulate_pareto_nbd, {"r": 0.5, "alpha": 6.0, "s": 0.6, "beta": 10.0}),
    ],
)
def test_parameter_recovery_transaction_models(model, simulator, truth):
    base = simulator(AGES, *truth.values(), seed=1)
    fit = clv.fit_model(base, model)
    z = (fit.params_ - pd.Series(truth)) / fit.standard_errors_
    assert (z.abs() < 3).all(), z
    # The standard errors themselves are checked against an independent numerical Hessian in
    # tests/test_strength_clv.py (test_standard_errors_equal_an_independent_numerical_hessian).


def test_parameter_recovery_bg_bb():
    truth = pd.Series({"alpha": 1.2, "beta": 0.75, "gamma": 0.66, "delta": 2.78})
    base = simulate.simulate_bg_bb(6, *truth, n_customers=5000, seed=2)
    fit = clv.fit_model(base, "bg_bb")
    assert (((fit.params_ - truth) / fit.standard_errors_).abs() < 3).all()


def test_gamma_gamma_collapsed_fit_equals_lifetimes_fit_on_every_customer(cdnow_with_spend):
    # Spend rounded to whole dollars: the 946 CDNOW repeat buyers share 365 distinct
    # (x, m) pairs, and crm_lib fits on those with weights. lifetimes' GammaGammaFitter
    # fits row by row on every customer (the uncollapsed fit) and must agree; the
    # log-likelihood is checked against note 025, eq. 1a, summed over every customer.
    from scipy.special import gammaln

    buyers = cdnow_with_spend[cdnow_with_spend["frequency"] > 0]
    buyers = buyers.assign(monetary_value=buyers["monetary_value"].round(0).clip(lower=1.0))
    fit = clv.fit_spend_model(buyers)
    assert fit.n_customers_ == 946 and fit.n_distinct_ == 365
    reference = lifetimes.GammaGammaFitter().fit(buyers["frequency"], buyers["monetary_value"])
    np.testing.assert_allclose(fit.params_[["p", "q", "v"]], reference.params_[["p", "q", "v"]], rtol=1e-5)
    p, q, v = fit.params_[["p", "q", "v"]]
    x, m = buyers["frequency"].to_numpy(float), buyers["monetary_value"].to_numpy(float)
    per_customer = (gammaln(p * x + q) - gammaln(p * x) - gammaln(q) + q * np.log(v) + (p * x - 1) * np.log(m)
                    + p * x * np.log(x) - (p * x + q) * np.log(x * m + v))
    assert fit.log_likelihood_ == pytest.approx(per_customer.sum(), rel=1e-12)


def test_parameter_recovery_gamma_gamma():
    truth = pd.Series({"p": 6.25, "q": 3.74, "v": 15.44})
    frequency = pd.Series(np.random.default_rng(3).integers(1, 10, 3000).astype(float))
    spend = simulate.simulate_gamma_gamma_spend(frequency, *truth, seed=4)
    fit = clv.fit_spend_model(pd.DataFrame({"frequency": frequency, "monetary_value": spend}))
    assert (((fit.params_ - truth) / fit.standard_errors_).abs() < 3).all()


def test_simulator_is_seeded_and_matches_model_mean():
    a = simulate.simulate_bg_nbd(52.0, 0.243, 4.414, 0.793, 2.426, n_customers=20000, seed=7)
    b = simulate.simulate_bg_nbd(52.0, 0.243, 4.414, 0.793, 2.426, n_customers=20000, seed=7)
    pd.testing.assert_frame_equal(a, b)
    assert (a["recency"] <= a["T"]).all() and (a.loc[a["frequency"] == 0, "recency"] == 0).all()
    # FHL (2005a) eq. 9 gives E[X(52)] for a new customer; the simulated mean must agree.
    model = clv.BetaGeoFit()
    model.params_ = pd.Series([0.243, 4.414, 0.793, 2.426], index=["r", "alpha", "a", "b"])
    expected = float(model.expected_number_of_purchases_up_to_time(52.0))
    standard_error = a["frequency"].std() / np.sqrt(len(a))
    assert abs(a["frequency"].mean() - expected) < 4 * standard_error


# --- properties ------------------------------------------------------------------------------

histories = st.tuples(st.integers(0, 40), st.floats(0.0, 1.0), st.floats(0.5, 120.0))


@settings(max_examples=60, deadline=None)
@given(history=histories, t=st.floats(0.1, 200.0))
def test_predictions_are_probabilities_and_increasing_in_horizon(fits, history, t):
    x, share, age = history
    recency = 0.0 if x == 0 else share * age
    for fit in fits.values():
        p = float(fit.conditional_probability_alive(x, recency, age)[0])
        assert 0.0 <= p <= 1.0
        e1 = float(fit.conditional_expected_number_of_purchases_up_to_time(t, x, recency, age))
        e2 = float(fit.conditional_expected_number_of_purchases_up_to_time(2 * t, x, recency, age))
        assert 0.0 <= e1 <= e2 + 1e-12


@settings(max_examples=60, deadline=None)
@given(x=st.integers(1, 30), recency=st.floats(0.0, 50.0), extra=st.floats(0.0, 50.0))
def test_p_alive_falls_with_time_since_last_purchase(fits, x, recency, extra):
    fit = fits["bg_nbd"]
    now = float(fit.conditional_probability_alive(x, recency, recency + 1.0)[0])
    later = float(fit.conditional_probability_alive(x, recency, recency + 1.0 + extra)[0])
    assert later <= now + 1e-12


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(3, 5)), min_size=1, max_size=40))
def test_collapse_histories_round_trips(rows):
    f, r, T = (np.array(c, dtype=float) for c in zip(*rows))
    (uf, ur, uT), counts, inverse = clv.collapse_histories(f, r, T)
    np.testing.assert_array_equal(uf[inverse], f)
    np.testing.assert_array_equal(ur[inverse], r)
    np.testing.assert_array_equal(uT[inverse], T)
    assert counts.sum() == len(rows)
    assert len(set(zip(uf, ur, uT))) == len(uf)


def test_weighted_fit_equals_fit_on_every_customer(cdnow_sample):
    (f, r, T), counts, _ = clv.collapse_histories(cdnow_sample["frequency"], cdnow_sample["recency"], cdnow_sample["T"])
    collapsed = pd.DataFrame({"frequency": f, "recency": r, "T": T})
    weighted = clv.fit_model(collapsed, "bg_nbd", weights=counts)
    np.testing.assert_allclose(weighted.params_, clv.fit_model(cdnow_sample, "bg_nbd").params_, rtol=1e-6)
    assert weighted.n_customers_ == 2357


# --- exact values on small hand-made data -----------------------------------------------------


def test_value_concentration_exact():
    values = pd.Series([1.0, 2.0, 3.0, 4.0, 10.0])  # total 20
    result = clv.value_concentration(values, top=(0.2, 0.4, 1.0))
    assert result.top_shares[0.2] == pytest.approx(10 / 20)
    assert result.top_shares[0.4] == pytest.approx(14 / 20)
    assert result.top_shares[1.0] == pytest.approx(1.0)
    # Gini = 1 - (1/n) sum (L_{i-1} + L_i) with L = 0, .05, .15, .30, .50, 1.
    assert result.gini == pytest.approx(1 - (0.05 + 0.20 + 0.45 + 0.80 + 1.50) / 5)
    assert result.lorenz["value_share"].iloc[0] == 0 and result.lorenz["value_share"].iloc[-1] == pytest.approx(1)
    assert result.lorenz["value_share"].is_monotonic_increasing
    assert "top 20% hold 50.0%" in result.summary()


def test_equal_values_have_no_concentration():
    result = clv.value_concentration(pd.Series(np.full(100, 3.0)))
    assert result.gini == pytest.approx(0.0, abs=1e-12)
    assert result.top_shares[0.1] == pytest.approx(0.1)


def small_log() -> pd.DataFrame:
    # Weeks start on Monday: 1997-01-06 is a Monday.
    rows = [
        ("a", "1997-01-06"), ("a", "1997-01-07"), ("a", "1997-01-20"), ("a", "1997-02-10"),
        ("b", "1997-01-13"), ("b", "1997-02-17"),
        ("c", "1997-01-27"),
        ("d", "1997-02-24"),  # first seen in the holdout: not in the cohort
    ]
    return pd.DataFrame({"customer_id": [r[0] for r in rows], "date": pd.to_datetime([r[1] for r in rows]),
                         "amount": 10.0})


def test_p_alive_history_counts_purchases_per_week():
    model = clv.BetaGeoFit()
    model.params_ = pd.Series([0.243, 4.414, 0.793, 2.426], index=["r", "alpha", "a", "b"])
    history = clv.p_alive_history(model, small_log(), "a", time_unit="W", observation_end="1997-03-02")
    # Weeks of 1997-01-06 (two purchases merged), 01-20 and 02-10; end week 02-24: ages 0..7.
    assert history["age"].tolist() == list(range(8))
    assert history["frequency"].tolist() == [0, 0, 1, 1, 1, 2, 2, 2]
    assert history["recency"].tolist() == [0, 0, 2, 2, 2, 5, 5, 5]
    assert history.index[0] == pd.Timestamp("1997-01-06")
    expected = model.conditional_probability_alive(history["frequency"].to_numpy(), history["recency"].to_numpy(),
                                                   history["age"].to_numpy())
    np.testing.assert_allclose(history["p_alive"], expected)
    assert history["p_alive"].iloc[0] == 1.0 and history["p_alive"].iloc[-1] < history["p_alive"].iloc[5]


def test_tracking_counts_repeat_transactions_of_the_calibration_cohort():
    model = clv.BetaGeoFit()
    model.params_ = pd.Series([0.243, 4.414, 0.793, 2.426], index=["r", "alpha", "a", "b"])
    tracking = clv.repeat_transactions_tracking(small_log(), model, calibration_end="1997-02-09",
                                                observation_end="1997-03-02", time_unit="W")
    actual = tracking["actual"]
    assert actual.sum() == 3  # a: weeks 01-20, 02-10; b: week 02-17; d is not in the cohort
    assert actual[pd.Timestamp("1997-01-20")] == 1 and actual[pd.Timestamp("1997-02-17")] == 1
    assert tracking["holdout"].sum() == 3  # weeks of 02-10, 02-17, 02-24
    # Expected: customers a, b, c first seen in weeks 0, 1, 3 -> sum of E[X(age)].
    ages_at_end = np.array([7.0, 6.0, 4.0])
    assert tracking["expected_cumulative"].iloc[-1] == pytest.approx(
        model.expected_number_of_purchases_up_to_time(ages_at_end).sum())


def test_holdout_by_frequency_pools_the_top_group():
    cal = pd.DataFrame({"frequency_cal": [0.0, 0, 1, 3, 5], "recency_cal": [0.0, 0, 2, 4, 8], "T_cal": 10.0,
                        "frequency_holdout": [0.0, 1, 1, 2, 4], "duration_holdout": 5.0})
    model = clv.BetaGeoFit()
    model.params_ = pd.Series([0.243, 4.414, 0.793, 2.426], index=["r", "alpha", "a", "b"])
    table = clv.holdout_by_calibration_frequency(cal, model, max_frequency=3)
    assert table["n_customers"].tolist() == [2, 1, 2]
    assert table["actual"].tolist() == [0.5, 1.0, 3.0]


def test_write_customer_table_round_trips(tmp_path):
    table = pd.DataFrame({"clv": [1.5, 2.5]}, index=pd.Index(["a", "b"], name="customer_id"))
    csv = clv.write_customer_table(table, tmp_path / "out" / "customers.csv")
    pd.testing.assert_frame_equal(pd.read_csv(csv, index_col=0, dtype={"customer_id": str}), table)
    parquet = clv.write_customer_table(table, tmp_path / "customers.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(parquet), table)
    with pytest.raises(ParamsError, match=r"must end in \.csv or \.parquet"):
        clv.write_customer_table(table, tmp_path / "customers.xlsx")


# --- validation, equity, grid -----------------------------------------------------------------


def test_holdout_validation_picks_lowest_rmse_and_reports_margin(simulated_holdout):
    cal = simulated_holdout(3000)
    comparison = clv.holdout_validation(cal, ("bg_nbd", "pareto_nbd"))
    table = comparison.table
    assert comparison.winner == table["holdout_rmse"].idxmin()
    runner = comparison.runner_up
    assert comparison.margin_pct == pytest.approx(
        100 * (table.loc[runner, "holdout_rmse"] - table.loc[comparison.winner, "holdout_rmse"])
        / table.loc[runner, "holdout_rmse"])
    assert table["actual_holdout_total"].iloc[0] == cal["frequency_holdout"].sum()
    forced = clv.holdout_validation(cal, ("bg_nbd", "pareto_nbd"), choose="pareto_nbd")
    assert forced.winner == "pareto_nbd"
    assert "lowest holdout RMSE" in comparison.summary()


def test_customer_equity_interval_is_seeded_and_brackets_estimate(cdnow_with_spend):
    bg, gg = clv.fit_model(cdnow_with_spend, "bg_nbd"), clv.fit_spend_model(cdnow_with_spend)
    first = clv.customer_equity(bg, gg, cdnow_with_spend, n_draws=60, seed=3)
    again = clv.customer_equity(bg, gg, cdnow_with_spend, n_draws=60, seed=3)
    assert (first.lower, first.upper) == (again.lower, again.upper)
    assert first.lower < first.estimate < first.upper
    assert first.estimate == pytest.approx(clv.customer_lifetime_value(bg, gg, cdnow_with_spend).sum())
    # Estimation uncertainty of ~2,400 customers: the interval is neither 0 nor absurd.
    assert 0.02 < (first.upper - first.lower) / first.estimate < 1.0


def test_customer_value_table_columns(cdnow_with_spend, fits):
    gg = clv.fit_spend_model(cdnow_with_spend)
    table = clv.customer_value_table(cdnow_with_spend, fits["bg_nbd"], gg, horizon_periods=52)
    f, r, T = cdnow_with_spend["frequency"], cdnow_with_spend["recency"], cdnow_with_spend["T"]
    np.testing.assert_allclose(table["p_alive"], fits["bg_nbd"].conditional_probability_alive(f, r, T))
    np.testing.assert_allclose(table["expected_purchases"],
                               fits["bg_nbd"].conditional_expected_number_of_purchases_up_to_time(52, f, r, T))
    assert table.index.equals(cdnow_with_spend.index)


def test_p_alive_grid_matches_model_and_masks_impossible_cells(fits):
    grid = clv.p_alive_grid(fits["bg_nbd"], max_frequency=5, max_T=39)
    assert grid.shape == (40, 6)
    assert np.isnan(grid.loc[10, 0]) and grid.loc[0, 0] == 1.0
    assert grid.loc[20, 3] == pytest.approx(float(fits["bg_nbd"].conditional_probability_alive(3, 20, 39)[0]))


def test_spend_frequency_correlation_on_cdnow(cdnow_with_spend):
    check = clv.spend_frequency_correlation(cdnow_with_spend)
    buyers = cdnow_with_spend[cdnow_with_spend["frequency"] > 0]
    assert check.correlation == pytest.approx(np.corrcoef(buyers["frequency"], buyers["monetary_value"])[0, 1])
    assert check.n_customers == 946
    assert "independent" in check.verdict  # CDNOW: r is about 0.11 (FHL 2005b)


# --- errors ----------------------------------------------------------------------------------


def test_too_few_repeat_buyers_is_a_model_fit_error():
    summary = pd.DataFrame({"frequency": [0.0] * 97 + [1.0, 2.0, 1.0], "recency": [0.0] * 97 + [3.0, 5.0, 1.0],
                            "T": 10.0})
    with pytest.raises(ModelFitError, match=r"only 3 of 100 customers made a repeat purchase.*calibration_end"):
        clv.fit_model(summary, "bg_nbd")


def test_non_convergence_is_a_model_fit_error():
    # Every customer bought at the very end of observation: drop-out is not identified.
    summary = pd.DataFrame({"frequency": np.arange(1, 51, dtype=float), "recency": 30.0, "T": 30.0})
    with pytest.raises(ModelFitError, match=r"did not converge on 50 customers.*penalizer_coef"):
        clv.fit_model(summary, "mbg_nbd")


def test_impossible_history_is_a_data_validation_error():
    summary = pd.DataFrame({"frequency": [1.0, 2.0], "recency": [5.0, 12.0], "T": [10.0, 10.0]})
    with pytest.raises(DataValidationError, match=r"1 of 2 customers have recency larger than T \(e\.g\. row 1"):
        clv.fit_model(summary, "bg_nbd")


def test_unknown_model_and_missing_column():
    summary = pd.DataFrame({"frequency": [1.0], "recency": [1.0]})
    with pytest.raises(ParamsError, match=r"model='bgnbd' is not known; use one of bg_nbd"):
        clv.fit_model(summary, "bgnbd")
    with pytest.raises(DataValidationError, match=r"column\(s\) \['T'\] not found"):
        clv.fit_model(summary, "bg_nbd")


def test_holdout_validation_records_failed_models():
    # Too few repeat buyers for every model: one error naming each failure.
    cal = pd.DataFrame({"frequency_cal": [0.0] * 9 + [1.0], "recency_cal": [0.0] * 9 + [1.0], "T_cal": 5.0,
                        "frequency_holdout": 0.0, "duration_holdout": 5.0})
    with pytest.raises(ModelFitError, match=r"none of bg_nbd, pareto_nbd could be fitted on 10 customers"):
        clv.holdout_validation(cal, ("bg_nbd", "pareto_nbd"))


@pytest.mark.parametrize("model", ["bg_nbd", "mbg_nbd", "pareto_nbd"])
def test_fast_weighted_likelihood_equals_row_by_row(model, cdnow_sample):
    # The fitted objective sums per distinct value; it must equal the plain per-row sum
    # (value and, where analytic, gradient) at an arbitrary parameter point.
    fitter = clv.MODELS[model]()
    (x, tx, T), w, _ = clv.collapse_histories(cdnow_sample["frequency"], cdnow_sample["recency"], cdnow_sample["T"])
    histories = clv._Histories(x, tx / 39, T / 39, w)
    for params in (np.array([0.4, 0.2, 0.9, 1.7]), np.array([1.3, 0.05, 2.0, 0.3])):
        rows = fitter._log_likelihood_rows(params, x, tx / 39, T / 39)
        assert fitter._weighted_log_likelihood(params, histories) == pytest.approx(w @ rows, rel=1e-12)
        if fitter.has_gradient:
            _, grad = fitter._weighted_log_likelihood(params, histories, gradient=True)
            _, grad_rows = fitter._log_likelihood_rows(params, x, tx / 39, T / 39, gradient=True)
            np.testing.assert_allclose(grad, w @ grad_rows, rtol=1e-10)
            numeric = clv._numeric_gradient(lambda p: w @ fitter._log_likelihood_rows(p, x, tx / 39, T / 39), params)
            np.testing.assert_allclose(grad, numeric, rtol=1e-5)


def test_pareto_nbd_log_likelihood_is_finite_for_a_very_frequent_buyer(cdnow_log):
    # Regression: CDNOW customer 14048 bought on 171 days and last on the final day (t_x = T = 496
    # days); 2F1 overflowed and A_0 came out as inf - inf, so the reported log-likelihood, AIC and
    # BIC were NaN. A_0 is exactly 0 when t_x = T (Fader & Hardie, note 009, eq. 19).
    import warnings

    from crm_lib.summary import rfm_summary

    summary = rfm_summary(cdnow_log, time_unit="D")
    assert summary.loc["14048", "frequency"] == 170 and summary.loc["14048", "recency"] == summary.loc["14048", "T"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        fit = clv.fit_model(summary, "pareto_nbd")
    assert np.isfinite(fit.log_likelihood_) and np.isfinite(fit.aic_)
    # Source: the Pareto/NBD likelihood in its integral form (no 2F1), by quadrature, at these
    # estimates (tests/test_strength_clv.py, ..._equals_quadrature; lifetimes gives inf here).
    assert fit.log_likelihood_ == pytest.approx(-258_988.9, abs=0.5)


def cdnow_sample_log() -> pd.DataFrame:
    """The 2,357-customer CDNOW sample shipped with lifetimes, as a transaction log."""
    raw = load_dataset("CDNOW_sample.txt", header=None, sep=r"\s+", dtype={0: str},
                       names=["customer_id", "customer_index", "date", "quantity", "amount"])
    return pd.DataFrame({"customer_id": raw["customer_id"],
                         "date": pd.to_datetime(raw["date"].astype(str), format="%Y%m%d"),
                         "amount": raw["amount"].astype(float)})


def test_monthly_discount_rate_compounds_to_the_annual_rate():
    assert (1 + clv.monthly_discount_rate(0.10)) ** 12 == pytest.approx(1.10, rel=1e-12)
    with pytest.raises(ParamsError, match="discount_rate_annual"):
        clv.monthly_discount_rate(-1.0)


def test_predict_customer_value_equals_lifetimes_on_the_cdnow_sample():
    # Reference: lifetimes end to end (summary, BG/NBD, Gamma-Gamma on repeat buyers with
    # positive spend, 12-month CLV at 10% a year) on the same CDNOW sample.
    tx = cdnow_sample_log()
    ours = clv.predict_customer_value(tx, model="bg_nbd", time_unit="W", horizon_months=12,
                                      discount_rate_annual=0.10, observation_end="1998-06-30")
    ref = lifetimes.utils.summary_data_from_transaction_data(
        tx, "customer_id", "date", monetary_value_col="amount", observation_period_end="1998-06-30", freq="W")
    bgf = lifetimes.BetaGeoFitter().fit(ref["frequency"], ref["recency"], ref["T"])
    buyers = ref[(ref["frequency"] > 0) & (ref["monetary_value"] > 0)]
    ggf = lifetimes.GammaGammaFitter().fit(buyers["frequency"], buyers["monetary_value"])
    expected_clv = ggf.customer_lifetime_value(bgf, ref["frequency"], ref["recency"], ref["T"], ref["monetary_value"],
                                               time=12, discount_rate=1.10 ** (1 / 12) - 1, freq="W")
    assert ours.index.name == "customer_id" and len(ours) == 2357
    assert ours.index.equals(ref.index)
    np.testing.assert_allclose(ours["clv"], expected_clv, rtol=1e-5)
    np.testing.assert_allclose(
        ours["p_alive"], bgf.conditional_probability_alive(ref["frequency"], ref["recency"], ref["T"]), rtol=1e-6)
    np.testing.assert_allclose(
        ours["expected_purchases"],
        bgf.conditional_expected_number_of_purchases_up_to_time(52, ref["frequency"], ref["recency"], ref["T"]),
        rtol=1e-5)
    # The base's 12-month CLV, in USD (about 69,863): lifetimes' total on the same data.
    assert ours["clv"].sum() == pytest.approx(expected_clv.sum(), rel=1e-5)
    assert ours.attrs["transaction_model"] == "bg_nbd" and ours.attrs["discount_rate_annual"] == 0.10


def test_predict_customer_value_pareto_nbd_gives_non_repeaters_p_alive_below_one():
    value = clv.predict_customer_value(cdnow_sample_log(), model="pareto_nbd", observation_end="1998-06-30")
    once = value["frequency"] == 0
    assert value["p_alive"].between(0, 1).all() and (value["clv"] >= 0).all()
    assert (value.loc[once, "p_alive"] < 1).all()


def test_discounted_purchases_refuse_a_discrete_time_model_in_words():
    """BG/BB counts purchase opportunities, not calendar time: no monthly CLV (was a shape error)."""
    from crm_lib.models import BetaGeoBetaBinomFit

    with pytest.raises(ParamsError, match="BG/BB is a discrete-time model .* value customers with BG/NBD, MBG/NBD or Pareto/NBD"):
        # FHS (2010) donation data estimates
        model = BetaGeoBetaBinomFit()
        model.params_ = pd.Series({"alpha": 1.204, "beta": 0.750, "gamma": 0.657, "delta": 2.783})
        clv.discounted_expected_purchases(model, [0, 1], [0, 3], [6, 6])
