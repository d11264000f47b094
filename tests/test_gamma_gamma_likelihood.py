"""The Gamma-Gamma likelihood from sufficient sums (crm_lib.models.gamma_gamma._SpendLikelihood)
against lifetimes' per-row implementation of Hardie's note 025, eq. 1a, and its gradient
against central finite differences."""
from __future__ import annotations

import numpy as np
import pytest
from lifetimes import GammaGammaFitter

from crm_lib.models.gamma_gamma import _SpendLikelihood


@pytest.fixture(scope="module")
def spend_rows():
    rng = np.random.default_rng(11)
    n = 5000
    x = rng.poisson(2.0, n) + 1.0
    m = np.round(rng.gamma(6.0 * x, 1 / (rng.gamma(3.0, 1 / 15.0, n) * x)), 2) + 0.01
    w = rng.integers(1, 4, n).astype(float)
    return x, m, w


@pytest.mark.parametrize("params", [(6.25, 3.74, 15.44), (0.5, 2.0, 100.0), (20.0, 0.3, 1.5)])
def test_sum_equals_lifetimes_eq_1a(spend_rows, params):
    x, m, w = spend_rows
    # lifetimes returns -sum(w * ll) / sum(w) (no penalty here).
    expected = -GammaGammaFitter._negative_log_likelihood(np.log(params), x, m, w, 0.0) * w.sum()
    assert _SpendLikelihood(x, m, w)(np.array(params)) == pytest.approx(expected, rel=1e-12)


def test_gradient_equals_finite_differences(spend_rows):
    x, m, w = spend_rows
    total = _SpendLikelihood(x, m, w)
    params = np.array([6.25, 3.74, 15.44])
    _, gradient = total(params, gradient=True)
    for k in range(3):
        step = np.zeros(3)
        step[k] = 1e-5 * params[k]
        numeric = (total(params + step) - total(params - step)) / (2 * step[k])
        assert gradient[k] == pytest.approx(numeric, rel=1e-6), k
