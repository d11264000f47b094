"""The model layer: every family on the one maximum-likelihood base (crm_lib.models)."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.special import betaln

from crm_lib import models
from crm_lib.models.base import MaximumLikelihoodFit
from crm_lib.retention import ShiftedBetaGeometricFitter

# Fader & Hardie (2007), "How to project customer retention": the high-end cohort.
HIGH_END = np.array([1000, 869, 743, 653, 593, 551, 517, 491], dtype=float)


def _sbg_log_likelihood(alpha: float, beta: float, n: np.ndarray = HIGH_END) -> float:
    # Fader & Hardie (2007), eq. 9, written out here: P(T = t) = B(a + 1, b + t - 1) / B(a, b)
    # for the n_(t-1) - n_t who cancel in period t, S(t) = B(a, b + t) / B(a, b) for the rest.
    t = np.arange(1, len(n))
    churn = betaln(alpha + 1, beta + t - 1) - betaln(alpha, beta)
    survive = betaln(alpha, beta + len(n) - 1) - betaln(alpha, beta)
    return float((n[:-1] - n[1:]) @ churn + n[-1] * survive)


def test_every_family_is_on_the_one_base():
    families = [*models.MODELS.values(), models.GammaGammaFit, models.ShiftedBetaGeometricFitter]
    assert all(issubclass(cls, MaximumLikelihoodFit) for cls in families)
    assert ShiftedBetaGeometricFitter is models.ShiftedBetaGeometricFitter  # retention re-exports it


def test_sbg_table_has_intervals_and_fit_statistics_like_the_other_models():
    fit = ShiftedBetaGeometricFitter().fit(HIGH_END.tolist())
    frame = fit.to_frame()
    assert list(frame.columns) == ["estimate", "standard_error", "lower_95", "upper_95"]
    np.testing.assert_allclose(frame["estimate"], [0.668, 3.806], atol=6e-4)  # published values
    np.testing.assert_allclose(frame["lower_95"], frame["estimate"] - 1.96 * frame["standard_error"])
    # The log-likelihood is eq. 9 at the estimates; AIC and BIC count 2 parameters and
    # the 1,000 customers of the cohort.
    ll = _sbg_log_likelihood(*fit.params_)
    assert frame.attrs["log_likelihood"] == pytest.approx(ll, rel=1e-12)
    assert frame.attrs["aic"] == pytest.approx(4 - 2 * ll)
    assert frame.attrs["bic"] == pytest.approx(2 * np.log(1000) - 2 * ll)
    assert frame.attrs["converged"] and "AIC" in fit.summary() and "mean churn probability" in fit.summary()


def test_sbg_standard_errors_equal_the_inverse_observed_information():
    # Independent check: a central-difference Hessian of eq. 9 in (alpha, beta) itself,
    # not in the log-parameters the base optimises over.
    fit = ShiftedBetaGeometricFitter().fit(HIGH_END.tolist())
    x, h = fit.params_.to_numpy(), 1e-4
    eye = np.eye(2) * h
    hess = np.array([[(_sbg_log_likelihood(*(x + eye[i] + eye[j])) - _sbg_log_likelihood(*(x + eye[i] - eye[j]))
                       - _sbg_log_likelihood(*(x - eye[i] + eye[j])) + _sbg_log_likelihood(*(x - eye[i] - eye[j])))
                      / (4 * h * h) for j in range(2)] for i in range(2)])
    np.testing.assert_allclose(fit.standard_errors_, np.sqrt(np.diag(np.linalg.inv(-hess))), rtol=1e-3)
