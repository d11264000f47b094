"""Independent p-values of the loyalty tests on hand examples (issue 16).

Through the public API only (``loyalty.test_price``, ``loyalty.test_cost_share``,
``loyalty.holm_adjust`` and the result objects), so the tests survive the move of
``crm_lib/loyalty.py`` into a package.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from crm_lib import loyalty

# Three long-lived customers (duration > 5) and two short-lived ones; every long-lived price
# is above every short-lived one.
HAND = pd.DataFrame(
    {"duration": [10.0, 20.0, 30.0, 1.0, 2.0], "price": [10.0, 12.0, 14.0, 5.0, 7.0]},
    index=list("abcde"),
)


def test_mann_whitney_exact_two_sided_p_on_the_hand_example():
    h3 = loyalty.test_price(HAND, duration_split=5.0)
    welch, mw = h3.tests
    # Combinatorics: under H0 all C(5, 2) = 10 ways to pick which two customers are the
    # short-lived ones are equally likely. U = 6 (its maximum) happens in exactly one of them,
    # U = 0 in one: the exact two-sided p-value is 2 / C(5, 2) = 0.2.
    combinatorial = 2 / math.comb(5, 2)
    independent = stats.mannwhitneyu([10.0, 12.0, 14.0], [5.0, 7.0], alternative="two-sided", method="exact").pvalue
    assert combinatorial == pytest.approx(0.2) and independent == pytest.approx(0.2)
    assert mw.p_value == pytest.approx(combinatorial, rel=1e-12)
    # A one-sided test would give 0.1 (or 1.0 in the other direction).
    # Holm over the hypothesis' two tests: the Welch p-value from the t distribution with
    # Welch-Satterthwaite df (means 12 and 6, variances 4 and 2), then statsmodels' Holm.
    se = math.sqrt(4 / 3 + 2 / 2)
    df = (4 / 3 + 1) ** 2 / ((4 / 3) ** 2 / 2 + 1)
    welch_p = 2 * stats.t.sf(6.0 / se, df)
    holm = multipletests([welch_p, combinatorial], method="holm")[1]
    assert welch.p_holm == pytest.approx(holm[0], rel=1e-9)
    assert mw.p_holm == pytest.approx(holm[1], rel=1e-9)
    # By hand: Welch p = 0.0316 (t = 3.93 on 2.88 df) is the smaller, so Holm doubles it to
    # 0.0632; the Mann-Whitney p is the largest of two and keeps 0.2 (times 1).
    assert welch_p == pytest.approx(0.0316, abs=1e-4)
    assert welch.p_holm == pytest.approx(2 * welch_p) and mw.p_holm == pytest.approx(0.2)


def test_mann_whitney_direction_reversed_gives_the_same_two_sided_p():
    # Every long-lived price below every short-lived one: still p = 0.2 (two-sided).
    reversed_prices = HAND.assign(price=[5.0, 6.0, 7.0, 12.0, 14.0])
    mw = loyalty.test_price(reversed_prices, duration_split=5.0).tests[1]
    assert mw.p_value == pytest.approx(2 / math.comb(5, 2))
    assert mw.estimate == pytest.approx(-0.5)  # P(long > short) - 0.5 = 0 - 0.5


def test_mann_whitney_p_equals_scipy_exact_on_a_larger_example():
    # No ties, 6 + 7 customers: the exact null distribution of U (scipy's exact method)
    # is the reference.
    rng = np.random.default_rng(12)
    price = rng.permutation(np.arange(1.0, 14.0)) * 3.1
    customers = pd.DataFrame({"duration": np.r_[np.full(6, 50.0), np.full(7, 1.0)], "price": price})
    mw = loyalty.test_price(customers, duration_split=5.0).tests[1]
    reference = stats.mannwhitneyu(price[:6], price[6:], alternative="two-sided", method="exact")
    assert mw.statistic == pytest.approx(reference.statistic)
    assert mw.p_value == pytest.approx(reference.pvalue, rel=1e-12)


def test_holm_adjust_against_statsmodels_on_many_families():
    rng = np.random.default_rng(8)
    for m in (1, 2, 5, 9):
        p = rng.uniform(0, 0.3, m)
        np.testing.assert_allclose(loyalty.holm_adjust(p), multipletests(p, method="holm")[1], rtol=1e-12)
