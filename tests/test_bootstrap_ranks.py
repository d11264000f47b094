"""The bootstrap interval of a correlation ranks each resample from counts (no sort per resample);
it must equal scipy's Spearman and numpy's Pearson on the explicit resamples (same draws)."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from crm_lib.loyalty.hypotheses import bootstrap_correlation_ci


def _explicit(x, y, method, n_bootstrap, seed, level=0.95):
    """The textbook percentile bootstrap (Efron & Tibshirani 1993, ch. 13), one resample at a time."""
    rng = np.random.default_rng(seed)
    n = len(x)
    idx = rng.integers(0, n, size=(n_bootstrap, n))  # the same stream: one block when n_bootstrap * n <= 2e6
    if method == "spearman":
        r = np.array([stats.spearmanr(x[i], y[i]).statistic for i in idx])
    else:
        r = np.array([np.corrcoef(x[i], y[i])[0, 1] for i in idx])
    r = r[np.isfinite(r)]
    return np.quantile(r, (1 - level) / 2), np.quantile(r, (1 + level) / 2)


@pytest.mark.parametrize("method", ["spearman", "pearson"])
def test_interval_equals_explicit_resamples_with_ties(method):
    rng = np.random.default_rng(7)
    x = rng.integers(0, 6, 300).astype(float)  # many ties, as durations in days or weeks have
    y = 0.5 * x + rng.gamma(1.0, 2.0, 300).round(1)
    got = bootstrap_correlation_ci(x, y, method=method, n_bootstrap=400, seed=11)
    expected = _explicit(x, y, method, 400, 11)
    assert got == pytest.approx(expected, abs=1e-12)
    assert got[0] < stats.spearmanr(x, y).statistic < got[1] if method == "spearman" else got[0] < got[1]


def test_interval_level_is_the_percentiles_asked_for():
    rng = np.random.default_rng(2)
    x = rng.normal(size=200)
    y = x + rng.normal(size=200)
    wide = bootstrap_correlation_ci(x, y, n_bootstrap=400, seed=1, level=0.95)
    assert wide == pytest.approx(_explicit(x, y, "spearman", 400, 1, level=0.95), abs=1e-12)
    narrow = bootstrap_correlation_ci(x, y, n_bootstrap=400, seed=1, level=0.80)
    assert narrow == pytest.approx(_explicit(x, y, "spearman", 400, 1, level=0.80), abs=1e-12)
    assert wide[0] < narrow[0] < narrow[1] < wide[1]
