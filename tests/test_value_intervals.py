"""Customer equity's two intervals: the parameter-uncertainty interval of the EXPECTED
equity and the predictive interval of the REALISED equity.

The predictive simulation is checked against independent results: lifetimes' purchase
count distributions, the models' closed-form conditional expectations, and a simulation
of the BG/NBD and Gamma-Gamma stories written here from the papers (not from crm_lib),
whose realised future the intervals must cover at their nominal rate.
"""
from __future__ import annotations

import logging

import lifetimes
import numpy as np
import pandas as pd
import pytest

from crm_lib import clv
from crm_lib.exceptions import DataValidationError, ParamsError
from crm_lib.models import BetaGeoBetaBinomFit, BetaGeoFit, GammaGammaFit, ModifiedBetaGeoFit, ParetoNBDFit

logger = logging.getLogger(__name__)

# CDNOW estimates: BG/NBD of Fader, Hardie & Lee (2005a); Gamma-Gamma p, q, gamma of
# Fader, Hardie & Lee (2005b); Pareto/NBD of Fader & Hardie's note 009 (CDNOW sample).
BG_NBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PARETO_NBD = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}
SPEND = {"p": 6.25, "q": 3.74, "v": 15.44}
WEEKS_PER_MONTH = 4.345  # crm_lib.clv.PERIODS_PER_MONTH["W"]
MARGIN, MONTHS = 0.3, 12
MONTHLY_RATE = (1.10) ** (1 / 12) - 1  # 10% a year


def _with_params(model_class, params: dict):
    model = model_class()
    model.params_ = pd.Series(params, dtype=float)
    return model


def simulate_story(n_customers: int, seed: int) -> tuple[pd.DataFrame, float]:
    """BG/NBD customers with Gamma-Gamma spend, simulated purchase by purchase.

    Fader, Hardie & Lee (2005a), section 3: purchases arrive at rate lambda ~ Gamma(r,
    alpha) after the first purchase at time 0; after each purchase the customer becomes
    inactive with probability p ~ Beta(a, b). FHL (2005b) and Hardie's note 025: every
    purchase is worth Gamma(p, nu), nu ~ Gamma(q, gamma) per customer. Customers are
    observed for T = 13..52 weeks (calibration); the realised equity is the gross margin
    of the purchases in the next 12 months, each discounted by (1 + d)^k in its month k.

    Returns the calibration summary and the realised future equity.
    """
    rng = np.random.default_rng(seed)
    r, alpha, a, b = BG_NBD.values()
    p_spend, q, v = SPEND.values()
    horizon = MONTHS * WEEKS_PER_MONTH
    T = rng.integers(13, 53, n_customers).astype(float)
    rate, dropout, nu = rng.gamma(r, 1 / alpha, n_customers), rng.beta(a, b, n_customers), rng.gamma(q, 1 / v,
                                                                                                    n_customers)
    clock, x, tx, spend, future = (np.zeros(n_customers) for _ in range(5))
    active = np.arange(n_customers)
    while active.size:
        clock[active] += rng.exponential(1 / rate[active])
        active = active[clock[active] <= T[active] + horizon]
        amount = rng.gamma(p_spend, 1 / nu[active])
        past = clock[active] <= T[active]
        i = active[past]
        x[i] += 1
        tx[i] = clock[i]
        spend[i] += amount[past]
        j = active[~past]
        future[j] += amount[~past] / (1 + MONTHLY_RATE) ** np.ceil((clock[j] - T[j]) / WEEKS_PER_MONTH)
        active = active[rng.random(active.size) >= dropout[active]]
    summary = pd.DataFrame({"frequency": x, "recency": tx, "T": T,
                            "monetary_value": np.where(x > 0, spend / np.maximum(x, 1), 0.0)})
    return summary, MARGIN * float(future.sum())


# --- the predictive simulation against independent results ---------------------------------------


@pytest.mark.parametrize("model_class, reference_class, params", [
    (BetaGeoFit, lifetimes.BetaGeoFitter, BG_NBD),
    (ModifiedBetaGeoFit, lifetimes.ModifiedBetaGeoFitter, BG_NBD),
])
def test_simulated_purchases_of_a_new_customer_follow_lifetimes_distribution(model_class, reference_class, params):
    # A customer with history (0, 0, 0) is a new one: the simulated counts over 52 weeks
    # must follow P(X(t) = n) (FHL 2005a, eq. 8; Batislam et al. 2007), computed by lifetimes.
    model = _with_params(model_class, params)
    n = 100_000
    counts = clv.simulate_future_purchases(model, np.zeros(n), np.zeros(n), np.zeros(n), horizon_periods=52, seed=1)
    reference = reference_class()
    reference.params_ = pd.Series(params)
    for k in range(5):
        expected = float(reference.probability_of_n_purchases_up_to_time(52, k))
        assert abs((counts == k).mean() - expected) < 4 * np.sqrt(expected * (1 - expected) / n), k


def test_simulated_purchases_given_a_history_follow_lifetimes_pareto_nbd():
    # Pareto/NBD, P(X(T, T + t) = n | x, t_x, T) (Fader & Hardie, note 009 / lifetimes'
    # conditional_probability_of_n_purchases_up_to_time) for a customer with 2 repeat
    # purchases, the last at week 20 of 39.
    model = _with_params(ParetoNBDFit, PARETO_NBD)
    n = 100_000
    counts = clv.simulate_future_purchases(model, np.full(n, 2.0), np.full(n, 20.0), np.full(n, 39.0),
                                           horizon_periods=52, seed=2)
    reference = lifetimes.ParetoNBDFitter()
    reference.params_ = pd.Series(PARETO_NBD)
    for k in range(5):
        expected = float(reference.conditional_probability_of_n_purchases_up_to_time(k, 52, 2, 20, 39))
        assert abs((counts == k).mean() - expected) < 4 * np.sqrt(expected * (1 - expected) / n), k


@pytest.mark.parametrize("model_class, params", [(BetaGeoFit, BG_NBD), (ModifiedBetaGeoFit, BG_NBD),
                                                 (ParetoNBDFit, PARETO_NBD)])
def test_mean_of_simulated_realised_equity_is_the_closed_form_expected_equity(model_class, params):
    # Closed form: FHL (2005a) eq. 10 / Batislam et al. eq. 6 / note 009 eq. 41, times the
    # Gamma-Gamma conditional mean spend (note 025, eq. 5), discounted by month.
    summary, _ = simulate_story(2000, seed=11)
    model, spend = _with_params(model_class, params), _with_params(GammaGammaFit, SPEND)
    kwargs = dict(horizon_months=MONTHS, discount_rate_monthly=MONTHLY_RATE, gross_margin=MARGIN)
    expected = clv.customer_lifetime_value(model, spend, summary, **kwargs).sum()
    sims = clv.simulate_realised_equity(model, spend, summary, n_simulations=200, seed=3, **kwargs)
    assert abs(sims.mean() - expected) < 4 * sims.std(ddof=1) / np.sqrt(len(sims))
    # Customer-level noise is real: a few percent of the expected equity of 2,000 customers.
    assert 0.01 < sims.std() / expected < 0.2


def test_bg_nbd_expected_purchases_when_a_plus_b_is_below_one():
    # 2F1(r, b; a + b - 1; z) is negative for x = 0 when a + b < 1; its log was NaN and
    # such parameter draws were dropped from the equity interval. The closed form must
    # equal the mean of the simulated purchases (FHL 2005a's story) there too.
    model = _with_params(BetaGeoFit, {"r": 0.304, "alpha": 7.8, "a": 0.233, "b": 0.431})
    n = 100_000
    for x, tx in [(0.0, 0.0), (1.0, 5.0)]:
        counts = clv.simulate_future_purchases(model, np.full(n, x), np.full(n, tx), np.full(n, 20.0),
                                               horizon_periods=52, seed=4)
        closed = float(model.conditional_expected_number_of_purchases_up_to_time(52, x, tx, 20.0))
        assert np.isfinite(closed)
        assert abs(counts.mean() - closed) < 4 * counts.std() / np.sqrt(n)


# --- the result object ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fitted_story():
    summary, realised = simulate_story(2000, seed=5)
    return summary, clv.fit_model(summary, "bg_nbd"), clv.fit_spend_model(summary)


def test_customer_equity_names_both_intervals_and_their_methods(fitted_story):
    summary, bg, gg = fitted_story
    kwargs = dict(horizon_months=MONTHS, discount_rate_monthly=MONTHLY_RATE, gross_margin=MARGIN)
    equity = clv.customer_equity(bg, gg, summary, n_draws=100, seed=7, **kwargs)
    again = clv.customer_equity(bg, gg, summary, n_draws=100, seed=7, **kwargs)
    assert equity.to_frame().equals(again.to_frame())
    assert equity.estimate == pytest.approx(clv.customer_lifetime_value(bg, gg, summary, **kwargs).sum())
    assert equity.expected_lower < equity.estimate < equity.expected_upper
    # Realised equity varies more than expected equity: the predictive interval is wider.
    assert equity.predictive_upper - equity.predictive_lower > equity.expected_upper - equity.expected_lower
    # Its customer-level part is the spread of realisations at the fitted parameters.
    at_estimate = clv.simulate_realised_equity(bg, gg, summary, n_simulations=100, seed=8, **kwargs)
    assert equity.noise_sd == pytest.approx(at_estimate.std(ddof=1), rel=0.3)
    assert (equity.lower, equity.upper) == (equity.expected_lower, equity.expected_upper)
    text = equity.summary()
    for words in ("parameter-uncertainty interval", "predictive interval", "normal approximation", "100 draws",
                  "customer-level noise", "seed 7"):
        assert words in text, words
    assert "bootstrap" not in (text + equity.method).lower()
    frame = equity.to_frame()
    assert list(frame.index) == ["expected equity (parameter uncertainty)", "realised equity (predictive)"]
    assert frame.loc["realised equity (predictive)", "lower"] == equity.predictive_lower


def test_customer_equity_rejects_what_it_cannot_simulate(fitted_story):
    summary, bg, gg = fitted_story
    bg_bb = _with_params(BetaGeoBetaBinomFit, {"alpha": 1.2, "beta": 0.75, "gamma": 0.66, "delta": 2.78})
    with pytest.raises(ParamsError, match="no predictive simulation for BG/BB"):
        clv.customer_equity(bg_bb, gg, summary, n_draws=2)
    negative = summary.assign(monetary_value=summary["monetary_value"].where(summary.index != 3, -5.0))
    with pytest.raises(DataValidationError, match="'monetary_value' has 1 of 2,000 values"):
        clv.customer_equity(bg, gg, negative, n_draws=2)
    with pytest.raises(ParamsError, match="level"):
        clv.customer_equity(bg, gg, summary, level=95)


# --- coverage over simulated bases ---------------------------------------------------------------

COVERAGE_SEEDS = 150


@pytest.mark.slow
def test_equity_intervals_cover_at_their_nominal_rate():
    """Over 150 simulated bases of 2,000 customers (BG/NBD + Gamma-Gamma, CDNOW-like
    parameters), refitted each time, with 200 parameter draws:

    - the 95% parameter-uncertainty interval covers the TRUE expected equity (the closed
      form at the true parameters, given the observed histories),
    - the 95% predictive interval covers the REALISED equity of the next 12 months,

    both within nominal +/- 3 binomial standard errors (0.95 +/- 0.053 for 150 bases).
    The parameter-uncertainty interval covers the realised equity clearly less often,
    which is why it must not be called an interval of (realised) customer equity.
    """
    kwargs = dict(horizon_months=MONTHS, discount_rate_monthly=MONTHLY_RATE, gross_margin=MARGIN)
    rows = []
    for seed in range(COVERAGE_SEEDS):
        summary, realised = simulate_story(2000, seed=1000 + seed)
        bg, gg = clv.fit_model(summary, "bg_nbd"), clv.fit_spend_model(summary)
        truth = clv.customer_lifetime_value(_with_params(BetaGeoFit, BG_NBD), _with_params(GammaGammaFit, SPEND),
                                            summary, **kwargs).sum()
        equity = clv.customer_equity(bg, gg, summary, n_draws=200, seed=seed, **kwargs)
        rows.append({"expected_covers_truth": equity.expected_lower <= truth <= equity.expected_upper,
                     "predictive_covers_realised": equity.predictive_lower <= realised <= equity.predictive_upper,
                     "expected_covers_realised": equity.expected_lower <= realised <= equity.expected_upper})
    coverage = pd.DataFrame(rows).mean()
    bound = 3 * np.sqrt(0.95 * 0.05 / COVERAGE_SEEDS)
    assert abs(coverage["expected_covers_truth"] - 0.95) < bound, coverage
    assert abs(coverage["predictive_covers_realised"] - 0.95) < bound, coverage
    assert coverage["expected_covers_realised"] < 0.95 - bound, coverage
    logger.info("equity interval coverage over %d bases: %s", COVERAGE_SEEDS, coverage.to_dict())
