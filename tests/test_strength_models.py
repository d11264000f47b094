"""Model formulas checked by brute force and simulation truth (issue 16, surviving mutants).

Expected values come from sums written out here from the model's definition, never from the
code under test.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import beta as beta_fn

from crm_lib import clv

BGBB = {"alpha": 1.204, "beta": 0.750, "gamma": 0.657, "delta": 2.783}  # FHS (2010) table 2 magnitudes


def _bgbb() -> clv.BetaGeoBetaBinomFit:
    model = clv.BetaGeoBetaBinomFit()
    model.params_ = pd.Series(BGBB)
    return model


def _bgbb_expected_by_sum(n: int) -> float:
    """BG/BB: alive at opportunity t with probability E[(1 - theta)^t] = B(gamma, delta + t) / B(gamma, delta),
    buys with probability E[p] = alpha / (alpha + beta) while alive (Fader, Hardie & Shang 2010, sec. 2)."""
    a, b, g, d = BGBB.values()
    return sum(a / (a + b) * beta_fn(g, d + t) / beta_fn(g, d) for t in range(1, n + 1))


@pytest.mark.parametrize("n", [1, 3, 11])
def test_bgbb_expected_purchases_equal_the_sum_over_opportunities(n):
    assert float(_bgbb().expected_number_of_purchases_up_to_time(n)) == pytest.approx(_bgbb_expected_by_sum(n), rel=1e-10)


def test_bgbb_simulation_has_the_expected_mean_purchases():
    draws = _bgbb().simulate(6, n_customers=20_000, seed=4)
    assert (draws["n_periods"] == 6).all() and len(draws) == 20_000
    se = draws["frequency"].std() / np.sqrt(len(draws))
    assert abs(draws["frequency"].mean() - _bgbb_expected_by_sum(6)) < 4 * se


def test_mbg_p_alive_closed_form_keeps_the_index_of_a_series_age():
    model = clv.ModifiedBetaGeoFit()
    r, alpha, a, b = 0.5, 6.0, 0.8, 2.5
    model.params_ = pd.Series({"r": r, "alpha": alpha, "a": a, "b": b})
    T = pd.Series([10.0, 20.0], index=["u", "v"])
    p = model.conditional_probability_alive(np.array([0.0, 3.0]), np.array([0.0, 12.0]), T)
    # MBG/NBD (Batislam, Denizel & Filiztekin 2007): P(alive) = 1 / (1 + a / (b + x) ((alpha + T) / (alpha + t_x))^(r + x))
    expected = [1 / (1 + a / b * ((alpha + 10) / alpha) ** r), 1 / (1 + a / (b + 3) * ((alpha + 20) / (alpha + 12)) ** (r + 3))]
    assert isinstance(p, pd.Series) and list(p.index) == ["u", "v"]
    np.testing.assert_allclose(p.to_numpy(), expected)
