"""MBG/NBD's conditional expectation for very frequent buyers over long horizons (Batislam et al.
2007, eq. 6), where scipy's 2F1 overflows: against the Gauss series of 2F1 summed in logs."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from crm_lib.models.beta_geo import BetaGeoFit, ModifiedBetaGeoFit

#: MBG/NBD on CDNOW in weeks (lifetimes' documentation example), a < 1 as fitted there.
MBG = {"r": 0.525, "alpha": 6.183, "a": 0.891, "b": 1.614}


def _log_hyp2f1_series(a: float, b: float, c: float, z: float, terms: int = 200_000) -> float:
    """log 2F1(a, b; c; z) for 0 <= z < 1 by its Gauss series (A&S 15.1.1), every term in logs."""
    k = np.arange(terms, dtype=float)
    log_terms = (np.vectorize(math.lgamma)(a + k) - math.lgamma(a) + np.vectorize(math.lgamma)(b + k)
                 - math.lgamma(b) - np.vectorize(math.lgamma)(c + k) + math.lgamma(c)
                 - np.vectorize(math.lgamma)(k + 1) + k * math.log(z))
    top = log_terms.max()
    assert log_terms[-1] < top - 50, "series not converged"
    return top + math.log(np.exp(log_terms - top).sum())


def _mbg_expectation(t: float, x: float, tx: float, T: float) -> float:
    """Batislam et al. (2007), eq. 6, with 2F1 from the series."""
    r, alpha, a, b = MBG.values()
    z = t / (alpha + T + t)
    log_term = _log_hyp2f1_series(r + x, b + x + 1, a + b + x, z) + (r + x) * math.log((alpha + T) / (alpha + T + t))
    numerator = (a + b + x) / (a - 1) * (1 - math.exp(log_term))
    return numerator / (1 + a / (b + x) * ((alpha + T) / (alpha + tx)) ** (r + x))


@pytest.mark.parametrize("x", [0, 3, 40, 300, 600])
def test_mbg_conditional_expectation_equals_the_series_where_2f1_overflows(x):
    model = ModifiedBetaGeoFit()
    model.params_ = pd.Series(MBG)
    t, tx, T = 520.0, 77.0 if x else 0.0, 78.0  # bought in the last weeks: very likely alive
    got = model.conditional_expected_number_of_purchases_up_to_time(t, np.array([x]), np.array([tx]), np.array([T]))
    expected = _mbg_expectation(t, x, tx, T)
    assert np.isfinite(got).all()
    assert got[0] == pytest.approx(expected, rel=1e-8)
    if x >= 300:  # a buyer of about 4 to 8 a week: many purchases, but fewer than at that rate for 10 years
        assert 10 < got[0] < x / T * t


def test_bg_nbd_keeps_its_fallback():
    """BG/NBD (FHL 2005a, eq. 10) at CDNOW's estimates, where 2F1 overflows, against the series."""
    r, alpha, a, b = 0.243, 4.414, 0.793, 2.426  # FHL (2005a), CDNOW in weeks
    model = BetaGeoFit()
    model.params_ = pd.Series({"r": r, "alpha": alpha, "a": a, "b": b})
    t, x, tx, T = 520.0, 600.0, 77.0, 78.0
    got = model.conditional_expected_number_of_purchases_up_to_time(t, np.array([x]), np.array([tx]), np.array([T]))
    log_term = (_log_hyp2f1_series(r + x, b + x, a + b + x - 1, t / (alpha + T + t))
                + (r + x) * math.log((alpha + T) / (alpha + T + t)))
    numerator = (a + b + x - 1) / (a - 1) * (1 - math.exp(log_term))
    expected = numerator / (1 + a / (b + x - 1) * ((alpha + T) / (alpha + tx)) ** (r + x))
    assert got[0] == pytest.approx(expected, rel=1e-8)
