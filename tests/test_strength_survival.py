"""Independent references for the survival and contractual-retention estimates (issue 16).

Public names only (``crm_lib.survival.cox_proportional_hazards``,
``crm_lib.retention.ShiftedBetaGeometricFitter``), so the tests survive the split of
``crm_lib/survival.py``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import optimize
from scipy.special import betaln
from statsmodels.tools.numdiff import approx_hess

from crm_lib.retention import ShiftedBetaGeometricFitter
from crm_lib.survival import cox_proportional_hazards, log_rank_test


def cox_partial_log_likelihood(beta: np.ndarray, x: np.ndarray, time: np.ndarray, event: np.ndarray) -> float:
    """Cox (1972) partial log-likelihood, written out: with no tied times Breslow's and
    Efron's forms coincide, sum over events of x_i b - log sum_{j at risk} exp(x_j b)."""
    order = np.argsort(-time, kind="stable")  # latest first: cumulative sums give the risk sets
    eta = x[order] @ beta
    log_risk = np.logaddexp.accumulate(eta)
    return float(np.sum((eta - log_risk)[event[order]]))


def untied_churn(n: int = 1500, seed: int = 21) -> pd.DataFrame:
    """Exponential lifetimes, hazard exp(-0.3 log2(1 + amount) + 0.5 [web]), uniform
    censoring, times not rounded (so no ties)."""
    rng = np.random.default_rng(seed)
    amount = rng.lognormal(3, 0.8, n)
    web = rng.random(n) < 0.4
    time = rng.exponential(100 * np.exp(0.3 * np.log2(1 + amount) - 0.5 * web))
    censor = rng.uniform(0, 600, n)
    return pd.DataFrame({"duration_days": np.minimum(time, censor), "churned": time <= censor,
                         "first_order_amount": amount, "channel": np.where(web, "web", "store")})


def test_cox_coefficients_and_standard_errors_equal_an_independent_partial_likelihood():
    # Replaces "true value within 3 SE of the code's own SE" as the only check: the partial
    # likelihood above maximised with scipy, SEs from statsmodels' numerical Hessian.
    churn = untied_churn()
    assert churn["duration_days"].is_unique
    cox = cox_proportional_hazards(churn, covariates=["first_order_amount", "channel"])
    x = np.column_stack([np.log2(1 + churn["first_order_amount"]), churn["channel"].eq("web").astype(float)])
    time, event = churn["duration_days"].to_numpy(), churn["churned"].to_numpy()
    objective = lambda b: -cox_partial_log_likelihood(b, x, time, event)  # noqa: E731
    beta = optimize.minimize(objective, np.zeros(2), method="BFGS", options={"gtol": 1e-8}).x
    se = np.sqrt(np.diag(np.linalg.inv(approx_hess(beta, objective))))
    table = cox.hazard_ratios.loc[["first_order_amount", "channel[web]"]]
    np.testing.assert_allclose(table["coef"], beta, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(table["se"], se, rtol=1e-3)
    np.testing.assert_allclose(table["hazard_ratio"], np.exp(beta), rtol=1e-4)
    # 95% Wald interval of the hazard ratio: exp(b -/+ 1.96 se).
    np.testing.assert_allclose(table["lower"], np.exp(beta - 1.959964 * se), rtol=1e-3)
    np.testing.assert_allclose(table["upper"], np.exp(beta + 1.959964 * se), rtol=1e-3)


@pytest.mark.slow  # about 20 s
def test_cox_standard_error_matches_the_spread_over_simulated_seeds():
    # The reported SE is the standard deviation an estimate has over repeated samples: 40
    # simulated bases of 600 customers. The SD of 40 estimates has a relative Monte-Carlo
    # error of about 1 / sqrt(2 * 39) = 11%; we accept 35%.
    estimates, reported = [], []
    for seed in range(40):
        cox = cox_proportional_hazards(untied_churn(n=600, seed=100 + seed),
                                       covariates=["first_order_amount", "channel"])
        estimates.append(cox.hazard_ratios.loc["channel[web]", "coef"])
        reported.append(cox.hazard_ratios.loc["channel[web]", "se"])
    assert np.std(estimates, ddof=1) == pytest.approx(np.mean(reported), rel=0.35)
    assert np.mean(estimates) == pytest.approx(0.5, abs=3 * np.std(estimates, ddof=1) / np.sqrt(40))


# Fader & Hardie (2007), "How to project customer retention", high-end and regular segments.
HIGH_END = [1000, 869, 743, 653, 593, 551, 517, 491]
REGULAR = [1000, 631, 468, 382, 326, 289, 262, 241]


def sbg_log_likelihood(params: np.ndarray, survivors: list[int]) -> float:
    """Fader & Hardie (2007), eq. 6-7 written out: P(T = t) = B(a + 1, b + t - 1) / B(a, b)
    for the customers lost in period t, S(t) = B(a, b + t) / B(a, b) for those still there."""
    a, b = params
    n = np.asarray(survivors, dtype=float)
    t = np.arange(1, len(n))
    lost = n[:-1] - n[1:]
    return float(np.sum(lost * (betaln(a + 1, b + t - 1) - betaln(a, b)))
                 + n[-1] * (betaln(a, b + t[-1]) - betaln(a, b)))


@pytest.mark.parametrize("survivors", [HIGH_END, REGULAR], ids=["high end", "regular"])
def test_sbg_standard_errors_equal_an_independent_numerical_hessian(survivors):
    # Replaces "0 < SE < estimate" in tests/test_survival_sbg.py.
    fitter = ShiftedBetaGeometricFitter().fit(survivors)
    params = fitter.params_[["alpha", "beta"]].to_numpy()
    # The estimates maximise the independent likelihood...
    best = optimize.minimize(lambda p: -sbg_log_likelihood(np.exp(p), survivors), np.log(params), method="Nelder-Mead",
                             options={"xatol": 1e-10, "fatol": 1e-12}).x
    np.testing.assert_allclose(params, np.exp(best), rtol=1e-4)
    # ...and the SEs are the inverse of its numerical Hessian.
    hessian = approx_hess(params, lambda p: sbg_log_likelihood(p, survivors))
    np.testing.assert_allclose(fitter.standard_errors_[["alpha", "beta"]], np.sqrt(np.diag(np.linalg.inv(-hessian))),
                               rtol=0.01)


def test_log_rank_statistic_equals_the_textbook_formula():
    # Mantel-Haenszel log-rank chi-square written out (observed minus expected deaths in one
    # group, hypergeometric variance at each event time); independent of statsmodels.
    rng = np.random.default_rng(2)
    time = np.round(np.r_[rng.exponential(100, 200), rng.exponential(70, 200)], 1)
    censor = rng.uniform(0, 250, 400)
    churn = pd.DataFrame({"duration_days": np.minimum(time, censor), "churned": time <= censor,
                          "band": ["a"] * 200 + ["b"] * 200})
    t, d, g = churn["duration_days"].to_numpy(), churn["churned"].to_numpy(), churn["band"].eq("b").to_numpy()
    o_minus_e = variance = 0.0
    for u in np.unique(t[d]):
        at_risk = t >= u
        n, n1 = at_risk.sum(), (at_risk & g).sum()
        deaths = ((t == u) & d).sum()
        deaths1 = ((t == u) & d & g).sum()
        o_minus_e += deaths1 - deaths * n1 / n
        if n > 1:
            variance += deaths * (n1 / n) * (1 - n1 / n) * (n - deaths) / (n - 1)
    result = log_rank_test(churn, group_col="band")
    assert result.statistic == pytest.approx(o_minus_e**2 / variance, rel=1e-9)
