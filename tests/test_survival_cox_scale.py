"""The Cox fit on risk-set sums (crm_lib.survival.risk_sets) equals statsmodels' PHReg, and the
stated random sample of customers above max_customers keeps its intervals' coverage.

Reference: statsmodels' ``PHReg`` (an independent implementation of the same Efron and
Breslow partial likelihoods, itself tested against R's ``coxph``), on the CDNOW churn table
and on random data with many ties at day 0, with whole-day times (one matrix product per
churn day) and with continuous times (chunked outer products).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from statsmodels.duration.hazard_regression import PHReg

from crm_lib.survival import cox_proportional_hazards, time_to_churn
from crm_lib.survival import risk_sets
from crm_lib.survival.cox import _design_rank, cox_design
from crm_lib.survival.risk_sets import fit_cox


def _tied(n: int, seed: int, beta=(0.5, -0.15)) -> pd.DataFrame:
    """Proportional hazards with about half the lifetimes tied at day 0 (as a lapse-rule table)."""
    rng = np.random.default_rng(seed)
    amount = rng.lognormal(3, 0.8, n)
    web = rng.random(n) < 0.4
    lp = beta[0] * web + beta[1] * np.log2(1 + amount)
    exposure = rng.exponential(1, n) / np.exp(lp)
    time = np.floor(np.where(exposure < 0.9, exposure / 0.9, 1 + (exposure - 0.9) / 0.004))
    censor = np.floor(rng.uniform(280, 365, n))
    return pd.DataFrame({"duration_days": np.minimum(time, censor), "churned": time <= censor,
                         "first_order_amount": amount, "channel": np.where(web, "web", "store")})


def _assert_equals_phreg(time, status, x, ties):
    ours = fit_cox(time, status, x, ties=ties)
    theirs = PHReg(time, x, status=status, ties=ties).fit()
    assert ours.converged
    np.testing.assert_allclose(ours.params, theirs.params, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(ours.bse, theirs.bse, rtol=1e-8)
    assert ours.loglik == pytest.approx(theirs.llf, rel=1e-10)


@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_equals_phreg_with_ties_at_day_zero(ties):
    churn = _tied(3_000, seed=2)
    design, _ = cox_design(churn, ["first_order_amount", "channel"])
    x = (design - design.mean()).to_numpy()
    _assert_equals_phreg(churn["duration_days"].to_numpy(), churn["churned"].to_numpy().astype(int), x, ties)


def test_equals_phreg_on_cdnow_churn(cdnow_log):
    churn = time_to_churn(cdnow_log.transactions, lapse_days=180, observation_end=cdnow_log.observation_end)
    churn = churn[churn["duration_days"].notna()]
    design, _ = cox_design(churn, ["first_order_amount", "first_order_quantity", "cohort"])
    x = (design - design.mean()).to_numpy()
    _assert_equals_phreg(churn["duration_days"].to_numpy(), churn["churned"].to_numpy().astype(int), x, "efron")


def test_continuous_times_take_the_chunked_path_and_agree(monkeypatch):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(1_500, 3))
    time = np.round(rng.exponential(1, 1_500) * np.exp(-x @ np.array([0.3, -0.2, 0.1])), 3)
    status = (rng.random(1_500) < 0.8).astype(int)
    monkeypatch.setattr(risk_sets, "MAX_INTERVAL_PRODUCTS", 100)  # ~1,100 death times: outer-product chunks
    _assert_equals_phreg(time, status, x, "efron")
    monkeypatch.setattr(risk_sets, "_CHUNK_ROWS", 77)  # chunks that cut through the intervals
    _assert_equals_phreg(time, status, x, "efron")


def test_design_rank_of_millions_of_rows_flags_collinear_terms():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(250_000, 3))
    assert _design_rank(x) == 4 == np.linalg.matrix_rank(np.column_stack([np.ones(len(x)), x]))
    collinear = np.column_stack([x, x[:, 0] - 2 * x[:, 1] + 5])
    assert _design_rank(collinear) == 4


def test_sample_above_max_customers_is_stated_and_close_to_the_full_fit():
    churn = _tied(12_000, seed=8)
    full = cox_proportional_hazards(churn, covariates=["first_order_amount", "channel"], max_customers=None)
    sample = cox_proportional_hazards(churn, covariates=["first_order_amount", "channel"], max_customers=3_000,
                                      seed=1)
    assert full.sample_note == "" and full.sampled_from == 0
    assert sample.n == 3_000 and sample.sampled_from == 12_000
    assert "random sample of 3,000 of the 12,000 customers (seed 1)" in sample.sample_note
    assert "about 2.0 times wider" in sample.sample_note and sample.notes[-1] == sample.sample_note
    # The sample's estimate is within a few of its sampling errors of the every-customer fit.
    gap = (sample.hazard_ratios["coef"] - full.hazard_ratios["coef"]).abs()
    assert (gap < 4 * sample.hazard_ratios["se"] * np.sqrt(1 - 3_000 / 12_000)).all()
    assert (sample.hazard_ratios["se"] > 1.7 * full.hazard_ratios["se"]).all()


@pytest.mark.slow
def test_sampled_fit_intervals_cover_the_true_hazard_ratios():
    # 200 bases of 4,000 customers with known coefficients (0.5, -0.15), each fitted on a
    # random sample of 1,000: the 95% intervals must cover the truth in about 95% of them
    # (binomial s.d. 1.5 points: accept 90% to 99%).
    covered = []
    for seed in range(200):
        cox = cox_proportional_hazards(_tied(4_000, seed=500 + seed), covariates=["first_order_amount", "channel"],
                                       max_customers=1_000, seed=seed)
        hr = cox.hazard_ratios
        truth = {"first_order_amount": np.exp(-0.15), "channel[web]": np.exp(0.5)}
        covered.extend((hr.loc[t, "lower"] <= v <= hr.loc[t, "upper"]) for t, v in truth.items())
    rate = float(np.mean(covered))
    assert 0.90 <= rate <= 0.99, rate
