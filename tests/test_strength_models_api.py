"""The fitting base every model shares: its refusals, its fit statistics, its parameter draws
(issue 16: models/base.py kept 2 of 9 mutants of sample seed 17 alive).

Messages are compared whole, with the numbers of the hand-made input; fit statistics against
their textbook definitions (AIC = 2k - 2 LL, BIC = k ln n - 2 LL, Wald interval +/- 1.96 SE); the
parameter draws against the normal distribution they claim (mean and covariance of the
log-parameters, 20,000 draws). The fitted values are the CDNOW BG/NBD of Fader, Hardie & Lee
(2005a): r = 0.243, alpha = 4.414, a = 0.793, b = 2.426, LL = -9,582.4.
"""
from __future__ import annotations

import logging
import re

import numpy as np
import pandas as pd
import pytest
from lifetimes.datasets import load_cdnow_summary

from crm_lib import clv
from crm_lib.exceptions import DataValidationError, ModelFitError, ParamsError


@pytest.fixture
def cdnow():
    return load_cdnow_summary()


@pytest.mark.parametrize("row, problem", [
    ((np.nan, 0.0, 5.0), "have missing or infinite values (e.g. row 1: frequency=nan, recency=0.0, T=5.0); "
                          "drop them before fitting."),
    ((-1.0, 0.0, 5.0), "have a negative frequency (e.g. row 1: frequency=-1.0, recency=0.0, T=5.0); frequency "
                       "counts repeat purchases and must be >= 0."),
    ((1.5, 2.0, 5.0), "have a non-integer frequency (e.g. row 1: frequency=1.5, recency=2.0, T=5.0); frequency "
                      "counts repeat purchases; build the summary with crm_lib.summary.rfm_summary."),
    ((1.0, -2.0, 5.0), "have a negative recency (e.g. row 1: frequency=1.0, recency=-2.0, T=5.0); recency is the "
                       "age at the last purchase."),
    ((1.0, 6.0, 5.0), "have recency larger than T (e.g. row 1: frequency=1.0, recency=6.0, T=5.0); recency is at "
                      "most the age T; check observation_end."),
    ((0.0, 2.0, 5.0), "have recency > 0 with frequency 0 (e.g. row 1: frequency=0.0, recency=2.0, T=5.0); "
                      "customers without repeat purchase have recency 0."),
])
def test_impossible_history_is_refused_with_the_row_and_the_rule(row, problem):
    frequency, recency, T = (np.array([2.0, v, 0.0]) for v in row)
    recency[0], T[0], T[2] = 3.0, 4.0, 7.0
    with pytest.raises(DataValidationError) as error:
        clv.BetaGeoFit().fit(frequency, recency, T)
    assert str(error.value) == f"BG/NBD: 1 of 3 customers {problem}"


def test_empty_summary_too_few_repeat_buyers_and_negative_penalizer():
    with pytest.raises(DataValidationError, match=r"^Pareto/NBD: the summary has no customers; check the data and "
                                                  r"calibration_end\.$"):
        clv.ParetoNBDFit().fit([], [], [])
    with pytest.raises(ModelFitError) as error:
        clv.BetaGeoFit().fit([0.0, 1.0, 2.0, 0.0], [0.0, 3.0, 4.0, 0.0], [5.0, 5.0, 5.0, 5.0], weights=[10, 4, 5, 1])
    assert str(error.value) == (
        "BG/NBD: only 9 of 20 customers made a repeat purchase; at least 20 are needed to identify purchase and "
        "drop-out rates. Use a longer calibration period (calibration_end later) or more customers.")
    with pytest.raises(ParamsError, match=r"^penalizer_coef must be >= 0; got -0\.1\.$"):
        clv.BetaGeoFit(penalizer_coef=-0.1)
    with pytest.raises(ModelFitError, match=r"^MBG/NBD is not fitted yet; call fit\(\) first\.$"):
        clv.ModifiedBetaGeoFit().to_frame()


def test_fit_statistics_frame_and_log_line_on_cdnow(cdnow, caplog):
    with caplog.at_level(logging.INFO, logger="crm_lib.models.base"):
        fit = clv.BetaGeoFit().fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])
    np.testing.assert_allclose(fit.params_, [0.243, 4.414, 0.793, 2.426], atol=1e-3)  # FHL (2005a)
    assert fit.log_likelihood_ == pytest.approx(-9582.4, abs=0.05)
    distinct = len(cdnow[["frequency", "recency", "T"]].drop_duplicates())
    assert fit.n_customers_ == 2357 and fit.n_histories_ == distinct and fit.n_repeat_buyers_ == 946  # 1,411 buy once
    assert fit.aic_ == pytest.approx(8 - 2 * fit.log_likelihood_)
    assert fit.bic_ == pytest.approx(4 * np.log(2357) - 2 * fit.log_likelihood_)
    assert fit.fit_statistics() == {"model": "bg_nbd", "n_customers": 2357.0, "log_likelihood": fit.log_likelihood_,
                                    "aic": fit.aic_, "bic": fit.bic_, "converged": True}
    frame = fit.to_frame()
    assert frame.index.name == "parameter" and list(frame.index) == ["r", "alpha", "a", "b"]
    np.testing.assert_allclose(frame["lower_95"], frame["estimate"] - 1.96 * frame["standard_error"])
    np.testing.assert_allclose(frame["upper_95"], frame["estimate"] + 1.96 * frame["standard_error"])
    assert frame.attrs == fit.fit_statistics()
    params = ", ".join(f"{k}={v:.4g}" for k, v in fit.params_.items())
    assert f"BG/NBD fitted on 2,357 customers: {params}, log-likelihood {fit.log_likelihood_:.2f}" in caplog.messages
    assert re.fullmatch(r"<BetaGeoFit: r=0\.24\d+, alpha=4\.41\d*, a=0\.79\d+, b=2\.4\d+>", repr(fit))
    summary = fit.summary().splitlines()
    assert summary[0] == "BG/NBD fitted on 2,357 customers (converged)"
    assert summary[-1] == f"log-likelihood {fit.log_likelihood_:,.2f}   AIC {fit.aic_:,.2f}   BIC {fit.bic_:,.2f}"
    penalized = clv.BetaGeoFit(penalizer_coef=0.01).fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])
    assert penalized.summary().splitlines()[-1] == "penalizer_coef 0.01"


def test_parameter_draws_follow_the_normal_of_the_log_parameters(cdnow):
    fit = clv.BetaGeoFit().fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])
    draws = fit.draw_params(20_000, np.random.default_rng(3))
    assert draws.shape == (20_000, 4) and (draws > 0).all()
    logs = np.log(draws)
    cov = fit.log_params_covariance_
    se = np.sqrt(np.diag(cov))
    # mean within 4 Monte-Carlo SEs; covariance within 5% of each variance
    assert np.all(np.abs(logs.mean(axis=0) - np.log(fit.params_.to_numpy())) < 4 * se / np.sqrt(20_000))
    np.testing.assert_allclose(np.cov(logs, rowvar=False), cov, rtol=0.05, atol=0.05 * np.outer(se, se).max())
    # delta method: SE of a parameter = its value x SE of its log
    np.testing.assert_allclose(fit.standard_errors_, fit.params_ * se, rtol=1e-12)
    other = fit.with_params([0.5, 2.0, 1.0, 3.0])
    assert other.params_.tolist() == [0.5, 2.0, 1.0, 3.0] and list(other.params_.index) == ["r", "alpha", "a", "b"]
    np.testing.assert_allclose(fit.params_, [0.243, 4.414, 0.793, 2.426], atol=1e-3)  # the original is unchanged
