"""Independent checks of the CLV numbers a reviewer reads (issue 16).

Public names only (``crm_lib.clv.holdout_validation``, ``customer_equity``, ``fit_model``,
``fit_spend_model``, ``customer_lifetime_value``), so these tests survive the split of
``crm_lib/clv.py`` into ``crm_lib/models/`` and ``crm_lib/clv/``. Every expected value
comes from lifetimes (an independent implementation), plain numpy on the test's own
arrays, or simulation truth.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import lifetimes
from lifetimes.datasets import load_dataset

from crm_lib import clv, simulate

# --- holdout RMSE / MAE ---------------------------------------------------------------------------

# A hand-made calibration/holdout table: 8 distinct histories (x, t_x, T, holdout purchases,
# holdout length), each repeated 6 times so that the models have 30+ repeat buyers.
HISTORIES = [
    # frequency_cal, recency_cal, T_cal, frequency_holdout, duration_holdout
    (0, 0.0, 30.0, 0, 20.0),
    (0, 0.0, 12.0, 1, 20.0),
    (1, 5.0, 30.0, 0, 20.0),
    (1, 25.0, 28.0, 2, 20.0),
    (2, 10.0, 26.0, 0, 20.0),
    (3, 22.0, 30.0, 3, 20.0),
    (5, 29.0, 30.0, 4, 20.0),
    (8, 18.0, 24.0, 1, 20.0),
]


def hand_cal_holdout() -> pd.DataFrame:
    rows = [h for h in HISTORIES for _ in range(6)]
    return pd.DataFrame(rows, columns=["frequency_cal", "recency_cal", "T_cal", "frequency_holdout",
                                       "duration_holdout"]).astype(float)


def hyp2f1_series(a: float, b: float, c: float, z: np.ndarray, terms: int = 400) -> np.ndarray:
    """Gauss' hypergeometric series sum_k (a)_k (b)_k / ((c)_k k!) z^k, summed term by term
    (|z| < 0.7 here, so 400 terms leave an error below 1e-60)."""
    z = np.asarray(z, dtype=float)
    total, term = np.zeros_like(z), np.ones_like(z)
    for k in range(terms):
        total = total + term
        term = term * (a + k) * (b + k) / ((c + k) * (k + 1)) * z
    return total


def bg_nbd_expected_purchases(params: pd.Series, t: float, x, tx, T) -> np.ndarray:
    """FHL (2005a), eq. 10, written out with the series above (independent of scipy's 2F1)."""
    r, alpha, a, b = (float(params[k]) for k in ("r", "alpha", "a", "b"))
    out = []
    for xi, txi, Ti in zip(np.asarray(x, float), np.asarray(tx, float), np.asarray(T, float)):
        hyp = hyp2f1_series(r + xi, b + xi, a + b + xi - 1, t / (alpha + Ti + t))
        numerator = (a + b + xi - 1) / (a - 1) * (1 - hyp * ((alpha + Ti) / (alpha + Ti + t)) ** (r + xi))
        denominator = 1 + (xi > 0) * a / (b + xi - 1) * ((alpha + Ti) / (alpha + txi)) ** (r + xi)
        out.append(float(numerator / denominator))
    return np.array(out)


def test_holdout_rmse_and_mae_equal_numpy_on_a_hand_made_table():
    # Independent fit: lifetimes' BG/NBD on the same calibration columns; predictions from
    # eq. 10 written out in this file (lifetimes returns NaN for the x = 0, T = 12 history
    # here, where a + b < 1 makes 2F1 negative); errors with plain numpy.
    cal = hand_cal_holdout()
    comparison = clv.holdout_validation(cal, ("bg_nbd",))
    f, r, T = cal["frequency_cal"], cal["recency_cal"], cal["T_cal"]
    actual = cal["frequency_holdout"].to_numpy()
    predicted = bg_nbd_expected_purchases(lifetimes.BetaGeoFitter().fit(f, r, T).params_, 20.0, f, r, T)
    assert np.isfinite(predicted).all()
    residual = predicted - actual
    rmse, mae = np.sqrt(np.mean(residual**2)), np.mean(np.abs(residual))
    row = comparison.table.loc["bg_nbd"]
    # lifetimes agrees with crm_lib on BG/NBD parameters to ~1e-4 (tests/test_clv.py); this
    # small table leaves the likelihood flat, so allow 2e-3.
    assert row["holdout_rmse"] == pytest.approx(rmse, rel=2e-3)
    assert row["holdout_mae"] == pytest.approx(mae, rel=2e-3)
    assert row["predicted_holdout_total"] == pytest.approx(predicted.sum(), rel=2e-3)
    assert row["actual_holdout_total"] == actual.sum() == 6 * 11
    # RMSE, not the mean squared error: the two differ by far more than the tolerance.
    assert abs(rmse**2 - rmse) > 0.05 * rmse
    assert comparison.winner == "bg_nbd" and comparison.runner_up is None


def test_holdout_winner_and_margin_follow_independent_rmse(simulated_holdout):
    # 1,500 simulated BG/NBD customers; lifetimes fits both models and predicts; the RMSEs
    # (about 1.651 and 1.656) are computed with numpy here and decide the winner.
    cal = simulated_holdout(1500)
    comparison = clv.holdout_validation(cal, ("bg_nbd", "pareto_nbd"))
    f, r, T = cal["frequency_cal"], cal["recency_cal"], cal["T_cal"]
    actual = cal["frequency_holdout"].to_numpy()
    rmse = {}
    for name, fitter in [("bg_nbd", lifetimes.BetaGeoFitter), ("pareto_nbd", lifetimes.ParetoNBDFitter)]:
        # lifetimes' Pareto/NBD starts from np.random.normal(1, 0.05) of the global generator, so its
        # optimum (on this flat likelihood) depended on the tests run before; start it at 1 instead.
        fit = fitter().fit(f, r, T, initial_params=np.ones(4))
        predicted = np.asarray(fit.conditional_expected_number_of_purchases_up_to_time(20.0, f, r, T))
        rmse[name] = np.sqrt(np.mean((predicted - actual) ** 2))
        assert comparison.table.loc[name, "holdout_rmse"] == pytest.approx(rmse[name], rel=1e-4)
        assert comparison.table.loc[name, "holdout_mae"] == pytest.approx(np.mean(np.abs(predicted - actual)), rel=1e-4)
    winner, loser = sorted(rmse, key=rmse.get)
    assert (comparison.winner, comparison.runner_up) == (winner, loser)
    assert comparison.margin_pct == pytest.approx(100 * (rmse[loser] - rmse[winner]) / rmse[loser], rel=0.05)


def test_bg_nbd_prediction_is_finite_when_a_plus_b_is_below_one():
    # Regression (found by the test above): with a + b < 1, 2F1(r, b; a + b - 1; z) of a
    # customer with x = 0 is negative, and taking its log gave NaN (as lifetimes does), so
    # BG/NBD dropped out of the holdout comparison silently. Reference: eq. 10 with the series.
    params = pd.Series({"r": 1.43, "alpha": 13.8, "a": 0.0275, "b": 0.271})
    model = clv.BetaGeoFit()
    model.params_ = params
    x, tx, T = np.array([0.0, 0.0, 1.0, 8.0]), np.array([0.0, 0.0, 5.0, 18.0]), np.array([12.0, 30.0, 30.0, 24.0])
    ours = np.asarray(model.conditional_expected_number_of_purchases_up_to_time(20.0, x, tx, T))
    np.testing.assert_allclose(ours, bg_nbd_expected_purchases(params, 20.0, x, tx, T), rtol=1e-9)


def test_holdout_error_with_known_predictions_is_plain_arithmetic():
    # Holdout counts y drawn at random (unrelated to the calibration histories), predictions
    # c from lifetimes: RMSE = sqrt(mean((c - y)^2)), MAE = mean(|c - y|), aggregate error
    # 100 (sum c - sum y) / sum y.
    rng = np.random.default_rng(4)
    n = 60
    calib = simulate.simulate_bg_nbd(np.full(n, 30.0), 0.5, 6.0, 0.8, 2.5, seed=9)
    y = rng.integers(0, 6, n).astype(float)
    cal = pd.DataFrame({"frequency_cal": calib["frequency"], "recency_cal": calib["recency"], "T_cal": 30.0,
                        "frequency_holdout": y, "duration_holdout": 10.0})
    comparison = clv.holdout_validation(cal, ("bg_nbd",))
    reference = lifetimes.BetaGeoFitter().fit(cal["frequency_cal"], cal["recency_cal"], cal["T_cal"])
    c = np.asarray(reference.conditional_expected_number_of_purchases_up_to_time(
        10.0, cal["frequency_cal"], cal["recency_cal"], cal["T_cal"]))
    row = comparison.table.loc["bg_nbd"]
    assert row["holdout_rmse"] == pytest.approx(np.sqrt(np.mean((c - y) ** 2)), rel=1e-3)
    assert row["holdout_mae"] == pytest.approx(np.mean(np.abs(c - y)), rel=1e-3)
    assert row["aggregate_error_pct"] == pytest.approx(100 * (c.sum() - y.sum()) / y.sum(), rel=1e-3)


# --- customer equity interval ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def cdnow_with_spend() -> pd.DataFrame:
    df = load_dataset("cdnow_customers_summary_with_transactions.csv")
    return df.rename(columns={"x": "frequency", "t_x": "recency", "zbar": "monetary_value"}).set_index("ID")


@pytest.mark.parametrize("level", [0.95, 0.80])
def test_customer_equity_interval_is_the_central_quantile_range_of_its_draws(cdnow_with_spend, level):
    bg, gg = clv.fit_model(cdnow_with_spend, "bg_nbd"), clv.fit_spend_model(cdnow_with_spend)
    equity = clv.customer_equity(bg, gg, cdnow_with_spend, n_draws=80, level=level, seed=5)
    draws = np.asarray(equity.draws, dtype=float)
    assert len(draws) == 80 and np.isfinite(draws).all()
    # The stated level is the share of draws inside the interval: quantiles (1 -/+ level) / 2.
    low, high = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2])
    assert equity.level == level
    assert equity.lower == pytest.approx(low, rel=1e-12) and equity.upper == pytest.approx(high, rel=1e-12)
    assert np.mean((draws >= equity.lower) & (draws <= equity.upper)) == pytest.approx(level, abs=2 / 80)
    assert f"{level:.0%} parameter-uncertainty interval" in equity.summary()
    # The predictive interval is the same central range of the simulated realised equities.
    predictive = np.asarray(equity.predictive_draws, dtype=float)
    low, high = np.quantile(predictive, [(1 - level) / 2, (1 + level) / 2])
    assert equity.predictive_lower == pytest.approx(low, rel=1e-12)
    assert equity.predictive_upper == pytest.approx(high, rel=1e-12)


def gamma_gamma_covariance(frequency: np.ndarray, spend: np.ndarray, params: np.ndarray) -> np.ndarray:
    """Inverse observed information of the Gamma-Gamma spend model, from the likelihood of
    Hardie's note 025 written out here and statsmodels' numerical Hessian (lifetimes'
    ``variance_matrix_`` of this model is not symmetric, so it cannot serve)."""
    from scipy.special import gammaln
    from statsmodels.tools.numdiff import approx_hess

    x, m = frequency, spend

    def log_likelihood(theta: np.ndarray) -> float:
        p, q, v = theta
        return float(np.sum(gammaln(p * x + q) - gammaln(p * x) - gammaln(q) + q * np.log(v)
                            + (p * x - 1) * np.log(m * x) + np.log(x) - (p * x + q) * np.log(v + m * x)))

    return np.linalg.inv(-approx_hess(params, log_likelihood))


def bg_nbd_covariance(frequency, recency, T, params: np.ndarray) -> np.ndarray:
    """Inverse observed information of BG/NBD: lifetimes' own log-likelihood function and
    statsmodels' numerical Hessian in the natural parameters (lifetimes' ``variance_matrix_``
    is not symmetric off the diagonal)."""
    from statsmodels.tools.numdiff import approx_hess

    n = len(frequency)
    weights = np.ones(n)

    def log_likelihood(theta: np.ndarray) -> float:
        mean_nll = lifetimes.BetaGeoFitter._negative_log_likelihood(np.log(theta), frequency, recency, T, weights, 0.0)
        return -n * float(mean_nll)

    return np.linalg.inv(-approx_hess(params, log_likelihood))


def test_customer_equity_draws_spread_like_the_delta_method(cdnow_with_spend):
    # Independent check of the draws' spread: the delta-method standard error of total CLV
    # from a numerical gradient of the sum and independent covariance matrices (lifetimes'
    # for BG/NBD, statsmodels' numerical Hessian for Gamma-Gamma). The draws are log-normal,
    # the delta method linear: we allow 25% (the Monte-Carlo error of an SD from 300 draws
    # is about 4%).
    data = cdnow_with_spend
    bg, gg = clv.fit_model(data, "bg_nbd"), clv.fit_spend_model(data)
    equity = clv.customer_equity(bg, gg, data, n_draws=300, seed=1)
    # This file rounds t_x and T separately: a few t_x exceed T by rounding, which lifetimes refuses.
    recency = np.minimum(data["recency"], data["T"])
    ref_bg = lifetimes.BetaGeoFitter().fit(data["frequency"], recency, data["T"])
    buyers = data[data["frequency"] > 0]
    params = np.r_[ref_bg.params_.to_numpy(), gg.params_.to_numpy()]
    cov = np.zeros((7, 7))
    cov[:4, :4] = bg_nbd_covariance(data["frequency"].to_numpy(float), recency.to_numpy(float),
                                    data["T"].to_numpy(float), ref_bg.params_.to_numpy())
    cov[4:, 4:] = gamma_gamma_covariance(buyers["frequency"].to_numpy(float), buyers["monetary_value"].to_numpy(float),
                                         gg.params_.to_numpy())
    np.testing.assert_allclose(np.sqrt(np.diag(cov)), np.r_[bg.standard_errors_, gg.standard_errors_], rtol=0.02)

    def total(p: np.ndarray) -> float:
        return float(clv.customer_lifetime_value(bg.with_params(p[:4]), gg.with_params(p[4:]), data).sum())

    step = 1e-4 * params
    gradient = np.array([(total(params + step[i] * e) - total(params - step[i] * e)) / (2 * step[i])
                         for i, e in enumerate(np.eye(7))])
    delta_se = float(np.sqrt(gradient @ cov @ gradient))
    assert np.std(equity.draws, ddof=1) == pytest.approx(delta_se, rel=0.25)


# The coverage simulation of both equity intervals (parameter-uncertainty interval of the expected
# equity, predictive interval of the realised equity) is tests/test_value_intervals.py
# ::test_equity_intervals_cover_at_their_nominal_rate; validation/size_checks.py runs it with more seeds.


# --- Pareto/NBD log-likelihood on the full CDNOW log, by quadrature ----------------------------------


def pareto_nbd_log_likelihood_by_quadrature(params: np.ndarray, x, tx, T, weights, nodes: int = 80) -> float:
    """Pareto/NBD log-likelihood from its integral form, independent of any 2F1.

    Integrating the individual likelihood over lambda ~ Gamma(r, alpha) and mu ~ Gamma(s, beta)
    (Schmittlein, Morrison & Colombo 1987; Fader & Hardie note 009, eq. 1-3) gives
        L = G(r+x) a^r b^s / G(r) [ (a+T)^-(r+x) (b+T)^-s + s Int_{t_x}^{T} (a+t)^-(r+x) (b+t)^-(s+1) dt ],
    the second term being death at t in (t_x, T]. The integral is done by Gauss-Legendre
    quadrature in logs (x reaches 170 on CDNOW, so the powers underflow otherwise)."""
    from scipy.special import gammaln, logsumexp

    r, alpha, s, beta = params
    x, tx, T = (np.asarray(v, dtype=float)[:, None] for v in (x, tx, T))
    u, w = np.polynomial.legendre.leggauss(nodes)
    t = tx + (T - tx) * (u + 1) / 2
    log_integrand = -(r + x) * np.log(alpha + t) - (s + 1) * np.log(beta + t) + np.log(w * (T - tx) / 2 + 1e-300)
    log_dead = np.log(s) + logsumexp(log_integrand, axis=1)
    log_dead = np.where((T - tx)[:, 0] > 0, log_dead, -np.inf)
    log_alive = -(r + x[:, 0]) * np.log(alpha + T[:, 0]) - s * np.log(beta + T[:, 0])
    rows = gammaln(r + x[:, 0]) - gammaln(r) + r * np.log(alpha) + s * np.log(beta) + np.logaddexp(log_alive, log_dead)
    return float(np.asarray(weights, dtype=float) @ rows)


@pytest.mark.slow  # about 10 s: the daily Pareto/NBD fit on 23,570 customers
def test_pareto_nbd_log_likelihood_on_the_full_cdnow_log_equals_quadrature(cdnow_log):
    # Source of -258,988.9 in tests/test_clv.py (daily Pareto/NBD on all 23,570 customers):
    # lifetimes returns inf here (its 2F1 overflows for frequent buyers), so the reference is
    # the integral form above. It must equal crm_lib's log-likelihood at crm_lib's estimates,
    # and those estimates must be a maximum of the independent likelihood.
    from crm_lib.summary import rfm_summary

    summary = rfm_summary(cdnow_log, time_unit="D")
    fit = clv.fit_model(summary, "pareto_nbd")
    (x, tx, T), counts, _ = clv.collapse_histories(summary["frequency"], summary["recency"], summary["T"])
    params = fit.params_[["r", "alpha", "s", "beta"]].to_numpy()

    def log_likelihood(p: np.ndarray) -> float:
        return pareto_nbd_log_likelihood_by_quadrature(p, x, tx, T, counts)

    reference = log_likelihood(params)
    assert reference == pytest.approx(-258_988.9, abs=0.5)
    assert fit.log_likelihood_ == pytest.approx(reference, abs=0.05)
    for i in range(4):
        for factor in (0.99, 1.01):
            moved = params.copy()
            moved[i] *= factor
            assert log_likelihood(moved) < reference


# --- standard errors against an independent Hessian -------------------------------------------------

RECOVERY_AGES = np.random.default_rng(5).integers(20, 80, 4000).astype(float)


def lifetimes_log_likelihood(model: str, frequency, recency, T):
    """The total log-likelihood of lifetimes' own implementation, in natural parameters."""
    n = len(frequency)
    weights = np.ones(n)
    if model == "pareto_nbd":
        # lifetimes' Pareto/NBD objective is already a sum (divided by the mean weight, 1).
        return lambda p: -float(lifetimes.ParetoNBDFitter._negative_log_likelihood(p, frequency, recency, T,
                                                                                  weights, 0.0))
    fitter = {"bg_nbd": lifetimes.BetaGeoFitter, "mbg_nbd": lifetimes.ModifiedBetaGeoFitter}[model]
    return lambda p: -n * float(fitter._negative_log_likelihood(np.log(p), frequency, recency, T, weights, 0.0))


@pytest.mark.parametrize(
    "model, simulator, truth",
    [
        ("bg_nbd", simulate.simulate_bg_nbd, (0.5, 6.0, 0.8, 2.5)),
        ("mbg_nbd", simulate.simulate_mbg_nbd, (0.5, 6.0, 0.8, 2.5)),
        ("pareto_nbd", simulate.simulate_pareto_nbd, (0.5, 6.0, 0.6, 10.0)),
    ],
)
def test_standard_errors_equal_an_independent_numerical_hessian(model, simulator, truth):
    # Replaces "SE / estimate < 0.4": the inverse of statsmodels' numerical Hessian of
    # lifetimes' log-likelihood (both independent of crm_lib), at crm_lib's estimates.
    from statsmodels.tools.numdiff import approx_hess

    base = simulator(RECOVERY_AGES, *truth, seed=1)
    fit = clv.fit_model(base, model)
    f, r, T = (base[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    hessian = approx_hess(fit.params_.to_numpy(), lifetimes_log_likelihood(model, f, r, T))
    independent = np.sqrt(np.diag(np.linalg.inv(-hessian)))
    np.testing.assert_allclose(fit.standard_errors_, independent, rtol=0.02)


# --- value concentration: Lorenz curve and input errors ----------------------------------------------


def test_value_concentration_lorenz_points_and_errors():
    from crm_lib.exceptions import DataValidationError

    values = pd.Series([0.0, 2.0, 3.0, 5.0, 10.0])  # a zero value is allowed; total 20
    result = clv.value_concentration(values, top=(0.2, 0.5), n_points=6)
    # Lorenz curve at customer shares 0, 0.2, ..., 1 (poorest first): cumulative shares by hand.
    np.testing.assert_allclose(result.lorenz["customer_share"], [0, 0.2, 0.4, 0.6, 0.8, 1.0])
    np.testing.assert_allclose(result.lorenz["value_share"], [0, 0, 0.1, 0.25, 0.5, 1.0], atol=1e-12)
    # top 20% = 1 customer (10 of 20); top 50% = ceil(2.5) = 3 customers (18 of 20).
    assert result.top_shares.to_dict() == pytest.approx({0.2: 0.5, 0.5: 0.9})
    assert result.gini == pytest.approx(1 - (0 + 0.1 + 0.35 + 0.75 + 1.5) / 5)
    with pytest.raises(DataValidationError, match=r"1 negative values \(e\.g\. -1\.0\)"):
        clv.value_concentration(pd.Series([3.0, -1.0, 2.0, -4.0]).iloc[:3])
    with pytest.raises(DataValidationError, match=r"need finite values; got 2 values, 1 not finite"):
        clv.value_concentration(pd.Series([1.0, np.nan]))
    with pytest.raises(DataValidationError, match=r"all values are zero"):
        clv.value_concentration(pd.Series([0.0, 0.0]))


def test_holdout_table_reports_each_fit_and_passes_the_penalizer():
    from crm_lib.exceptions import ParamsError

    cal = hand_cal_holdout()
    calib = cal.rename(columns={"frequency_cal": "frequency", "recency_cal": "recency", "T_cal": "T"})
    rmse = []
    for penalizer in (0.0, 0.05):
        comparison = clv.holdout_validation(cal, ("bg_nbd",), penalizer_coef=penalizer)
        rmse.append(comparison.table.loc["bg_nbd", "holdout_rmse"])
        direct = clv.fit_model(calib, "bg_nbd", penalizer_coef=penalizer)
        row = comparison.table.loc["bg_nbd"]
        assert comparison.fits["bg_nbd"].params_.to_numpy() == pytest.approx(direct.params_.to_numpy(), rel=1e-6)
        assert row["n_params"] == 4
        assert row["log_likelihood"] == pytest.approx(direct.log_likelihood_, rel=1e-9)
        assert row["aic"] == pytest.approx(8 - 2 * direct.log_likelihood_, rel=1e-9)
        assert row["bic"] == pytest.approx(4 * np.log(48) - 2 * direct.log_likelihood_, rel=1e-9)
        assert bool(row["converged"]) and row["error"] == ""
    assert abs(rmse[0] - rmse[1]) > 1e-3  # the penalizer reached the fit
    with pytest.raises(ParamsError, match=r"model='mbg_nbd': use 'auto' or one of bg_nbd, pareto_nbd\."):
        clv.holdout_validation(cal, ("bg_nbd", "pareto_nbd"), choose="mbg_nbd")


def test_customer_equity_passes_every_knob_to_the_clv(cdnow_with_spend):
    from crm_lib.exceptions import ParamsError

    data = cdnow_with_spend
    bg, gg = clv.fit_model(data, "bg_nbd"), clv.fit_spend_model(data)
    knobs = dict(horizon_months=6, discount_rate_monthly=0.02, time_unit="D", gross_margin=0.3)
    equity = clv.customer_equity(bg, gg, data, n_draws=20, seed=2, **knobs)
    expected = float(clv.customer_lifetime_value(bg, gg, data, **knobs).sum())
    assert equity.estimate == pytest.approx(expected, rel=1e-12)
    # The draws use the same knobs: their median sits within 5% of the estimate (not of the
    # 12-month, undiscounted-margin default, which is several times larger).
    assert np.median(equity.draws) == pytest.approx(expected, rel=0.05)
    assert (equity.n_draws, equity.seed, equity.horizon_months) == (20, 2, 6)
    for level in (0.0, 1.0):
        with pytest.raises(ParamsError, match=r"level must be between 0 and 1"):
            clv.customer_equity(bg, gg, data, n_draws=5, level=level)
