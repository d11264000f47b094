"""The classical loyalty tests (H1, H3, H4) on ten hand-made customers, every number against an
independent computation (issue 16: hypotheses.py is the largest loyalty file of the mutation samples).

References: scipy's Welch t-test, Mann-Whitney U, Spearman and Pearson; OLS with HC3 errors written
out in numpy (MacKinnon & White 1985: V = (X'X)^-1 X' diag(e_i^2 / (1 - h_ii)^2) X (X'X)^-1); the
Hanley & McNeil (1982) standard error of P(long > short). Sentences are written out by hand.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from crm_lib import loyalty
from crm_lib.exceptions import DataValidationError

CUSTOMERS = pd.DataFrame({
    "duration": [10.0, 20, 30, 40, 50, 60, 70, 80, 90, 100],
    "profit": [5.0, -2, 8, 6, 15, 9, 30, 12, 25, 40],
    "price": [9.0, 11, 10, 12, 8, 14, 13, 15, 16, 12.5],
    "cost_share": [0.30, 0.25, 0.35, 0.20, 0.30, 0.10, 0.15, 0.12, 0.22, 0.18],
    "cost_source": "cost column",
})
LONG = CUSTOMERS["duration"] > 55  # the median duration is 55


def hanley_mcneil(auc: float, n1: int, n2: int) -> float:
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    return math.sqrt((auc * (1 - auc) + (n1 - 1) * (q1 - auc**2) + (n2 - 1) * (q2 - auc**2)) / (n1 * n2))


@pytest.mark.parametrize("column, run, what, unit", [
    ("price", lambda c: loyalty.test_price(c, currency="EUR"), "price per order", ", EUR"),
    ("cost_share", lambda c: loyalty.test_cost_share(c), "cost share of revenue", ""),
])
def test_two_group_tests_against_scipy(column, run, what, unit):
    long, short = CUSTOMERS.loc[LONG, column].to_numpy(), CUSTOMERS.loc[~LONG, column].to_numpy()
    result = run(CUSTOMERS)
    welch, mw = result.tests
    reference = stats.ttest_ind(long, short, equal_var=False)
    ci = reference.confidence_interval(0.95)
    assert welch.primary and not mw.primary
    assert (welch.method, welch.statistic_name) == ("Welch t-test", "t")
    assert welch.estimate_name == f"difference in mean {what} (long - short){unit}"
    assert welch.statistic == pytest.approx(reference.statistic) and welch.p_value == pytest.approx(reference.pvalue)
    assert welch.estimate == pytest.approx(long.mean() - short.mean())
    assert (welch.ci_low, welch.ci_high) == pytest.approx((ci.low, ci.high))
    assert welch.n == mw.n == 10
    u = stats.mannwhitneyu(long, short, alternative="two-sided")
    auc = float(np.mean([(a > b) + 0.5 * (a == b) for a in long for b in short]))  # P(long > short) + ties / 2
    se = hanley_mcneil(auc, 5, 5)
    assert (mw.method, mw.statistic_name) == ("Mann-Whitney U test", "U")
    assert mw.estimate_name == f"P({what} of a long-lived > a short-lived customer) - 0.5"
    assert mw.statistic == pytest.approx(u.statistic) and mw.p_value == pytest.approx(u.pvalue)
    assert mw.estimate == pytest.approx(auc - 0.5)
    assert (mw.ci_low, mw.ci_high) == pytest.approx((auc - 0.5 - 1.96 * se, auc - 0.5 + 1.96 * se))
    # Holm over the two tests of the hypothesis
    lo, hi = sorted([welch.p_value, mw.p_value])
    assert sorted([welch.p_holm, mw.p_holm]) == pytest.approx([min(1, 2 * lo), max(min(1, 2 * lo), hi)])


def test_h3_sentence_and_verdict_words():
    result = loyalty.test_price(CUSTOMERS, currency="EUR", alpha=0.5)
    welch = result.primary
    # long-lived prices 14, 13, 15, 16, 12.5 (mean 14.1) against 9, 11, 10, 12, 8 (mean 10): higher
    assert welch.estimate == pytest.approx(4.1)
    assert result.verdict == "supported"
    assert result.claim == "long-lived customers pay higher prices (revenue per order)"
    assert result.explanation == (
        f"long-lived customers pay higher prices: difference in mean price per order (long - short), EUR 4.1 "
        f"(95% CI {welch.ci_low:.3g} to {welch.ci_high:.3g}), Holm-adjusted p {welch.p_holm:.3f}, n = 10.")
    reversed_ = loyalty.test_price(CUSTOMERS.assign(price=-CUSTOMERS["price"]), alpha=0.5)
    assert reversed_.verdict == "contradicted"
    assert reversed_.explanation.startswith("the opposite holds, long-lived customers pay lower prices: ")
    strict = loyalty.test_price(CUSTOMERS, alpha=1e-12)
    assert strict.verdict == "no evidence either way"
    assert strict.explanation.startswith("no evidence that long-lived customers pay higher prices: ")
    with_units = loyalty.test_price(CUSTOMERS.assign(units=2.0))
    assert with_units.claim == "long-lived customers pay higher prices (revenue per unit)"


def test_h4_without_cost_is_not_testable_and_an_assumed_cost_is_flagged():
    none = loyalty.test_cost_share(CUSTOMERS.assign(cost_source="none"))
    assert (none.verdict, none.tests, none.expected_sign) == ("not testable", (), -1)
    assert none.explanation.startswith("the data have no cost column and no cost_per_order is set in the params")
    assumed = loyalty.test_cost_share(CUSTOMERS.assign(cost_source="cost per order"), alpha=0.5)
    # long-lived cost shares are lower (0.154 against 0.28): the claim (sign -1) holds
    assert assumed.primary.estimate == pytest.approx(np.mean([0.10, 0.15, 0.12, 0.22, 0.18]) - 0.28)
    assert assumed.verdict == "supported"
    assert assumed.explanation.endswith(
        "n = 10. The cost is one assumed amount per order, so this compares order values, not measured costs.")
    with pytest.raises(DataValidationError, match=r"H4 needs at least 2 long- and 2 short-lived customers with a "
                                                  r"cost_share, got 1 long and 9 short; change the duration split in params\."):
        loyalty.test_cost_share(CUSTOMERS, duration_split=95)


def test_h1_correlations_and_hc3_regression_by_hand():
    result = loyalty.test_duration_profit(CUSTOMERS, n_bootstrap=0)
    spearman, pearson, ols = result.tests
    x, y = CUSTOMERS["duration"].to_numpy(), CUSTOMERS["profit"].to_numpy()
    for test, reference, name in ((spearman, stats.spearmanr(x, y), "rho"), (pearson, stats.pearsonr(x, y), "r")):
        r = reference.statistic
        assert test.estimate == pytest.approx(r) and test.p_value == pytest.approx(reference.pvalue)
        assert test.statistic == pytest.approx(r * math.sqrt(8 / (1 - r * r)))
        assert (test.statistic_name, test.estimate_name, test.n) == ("t", name, 10)
    assert spearman.primary and spearman.method == "Spearman rank correlation (bootstrap 95% CI)"
    assert pearson.method == "Pearson correlation (bootstrap 95% CI)"
    X = np.column_stack([np.ones(10), x])
    bread = np.linalg.inv(X.T @ X)
    beta = bread @ X.T @ y
    e = y - X @ beta
    h = np.einsum("ij,jk,ik->i", X, bread, X)
    cov = bread @ (X.T * (e**2 / (1 - h) ** 2)) @ X @ bread
    se = math.sqrt(cov[1, 1])
    assert ols.method == "OLS profit ~ duration (HC3 robust errors)" and ols.statistic_name == "z"
    assert ols.estimate_name == "profit per unit of duration"
    assert ols.estimate == pytest.approx(beta[1]) and ols.statistic == pytest.approx(beta[1] / se)
    assert (ols.ci_low, ols.ci_high) == pytest.approx((beta[1] - 1.959964 * se, beta[1] + 1.959964 * se), rel=1e-6)
    assert ols.p_value == pytest.approx(2 * stats.norm.sf(abs(beta[1] / se)))
    with_cohort = loyalty.test_duration_profit(CUSTOMERS.assign(cohort=["a", "b"] * 5), n_bootstrap=0)
    assert with_cohort.tests[2].method == "OLS profit ~ duration + cohort (HC3 robust errors)"
    with pytest.raises(DataValidationError, match=r"H1 needs at least 4 customers with a duration and a profit, got 3"):
        loyalty.test_duration_profit(CUSTOMERS.iloc[:3], n_bootstrap=0)
