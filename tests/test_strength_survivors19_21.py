"""Checks written against the survivors of the seed-19 and seed-21 mutation samples left unjudged
in earlier rounds (issue 16).

Expected values: hand computations and the documented rule; log lines are read from the
records the library writes (a failure in report mode is logged with its reason).
"""
from __future__ import annotations

import logging
import types

import numpy as np
import pandas as pd
import pytest

from crm_lib import clv


def test_customer_equity_leaves_out_draws_without_a_finite_mean_spend_and_says_how_many(caplog):
    from crm_lib.models import GammaGammaFit

    model = clv.BetaGeoFit()
    model.params_ = pd.Series({"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426})  # FHL (2005) CDNOW
    model.log_params_covariance_ = np.diag([0.01, 0.01, 0.01, 0.01])
    spend = GammaGammaFit()
    spend.params_ = pd.Series({"p": 6.25, "q": 1.2, "v": 15.44})
    # sd 0.5 of log q around log 1.2: about a third of the draws have q <= 1 (no finite mean spend)
    spend.log_params_covariance_ = np.diag([1e-4, 0.25, 1e-4])
    summary = pd.DataFrame({"frequency": [0.0, 2.0, 5.0], "recency": [0.0, 20.0, 30.0], "T": [38.0, 38.0, 38.0],
                            "monetary_value": [0.0, 30.0, 25.0]})
    with caplog.at_level(logging.WARNING, logger="crm_lib.clv.value"):
        equity = clv.customer_equity(model, spend, summary, n_draws=40, seed=3, horizon_months=3)
    (message,) = [m for m in caplog.messages if m.startswith("customer equity: ")]
    left_out = int(message.split()[2])
    assert message == (f"customer equity: {left_out} of 40 parameter draws gave a non-finite equity and were "
                       "left out")
    assert 0 < left_out < 40
    # the intervals come from the finite draws: finite, ordered, and no equity below 0 (every spend is
    # positive; a q <= 1 draw used to give the one-time buyers a negative mean spend v p / (q - 1))
    assert np.isfinite([equity.expected_lower, equity.expected_upper, equity.predictive_lower,
                        equity.predictive_upper]).all()
    assert 0 < equity.expected_lower <= equity.expected_upper
    assert 0 <= equity.predictive_lower <= equity.predictive_upper


def test_gamma_gamma_mean_spend_is_infinite_where_the_posterior_mean_does_not_exist():
    from crm_lib.models import GammaGammaFit

    p, q, v = 2.0, 0.8, 10.0
    spend = GammaGammaFit()
    spend.params_ = pd.Series({"p": p, "q": q, "v": v})
    x, m = np.array([0.0, 1.0, 3.0]), np.array([0.0, 12.0, 20.0])
    out = spend.conditional_expected_average_profit(x, m)
    # Fader-Hardie note 025: E[Z | x, m] = p (v + x m) / (p x + q - 1), the posterior mean of p / nu with
    # nu ~ Gamma(p x + q, v + x m); it exists only when p x + q > 1 (not for a one-time buyer when q < 1)
    assert out[0] == np.inf
    np.testing.assert_allclose(out[1:], p * (v + x[1:] * m[1:]) / (p * x[1:] + q - 1), rtol=1e-12)
    assert spend.population_mean_spend() == np.inf


def test_tracking_hook_logs_that_no_prediction_set_was_stored(tmp_path, caplog):
    from crm_lib.clv.tracking import track_run_predictions

    log = types.SimpleNamespace(observation_end=pd.Timestamp("2020-03-31"), time_unit="W",
                                transactions=pd.DataFrame({"customer_id": [], "date": [], "amount": []}))
    cache = tmp_path / "cache"
    cache.mkdir()  # no customer_values.pkl: no notebook computed the customer values
    report = tmp_path / "report"
    report.mkdir()
    with caplog.at_level(logging.INFO, logger="crm_lib.clv.tracking"):
        track_run_predictions(types.SimpleNamespace(log=log, knobs={}, cache_dir=cache), tmp_path, "run", report)
    assert ("no prediction set stored for 2020-03-31: no notebook of this run computed the customer values"
            in caplog.messages)


def test_donor_orders_are_the_ten_nearest_in_amount():
    from crm_lib.loyalty.null import DONOR_NEIGHBOURS, _donor_values

    # 100 observed orders of amounts 0, 1, ..., 99; an order's quantity is its rank, so the
    # quantity a simulated order takes names its donor
    observed = types.SimpleNamespace(amount=np.arange(100.0), units=np.arange(100.0), cost=None)
    units, cost = _donor_values(observed, np.full(5000, 50.0), np.random.default_rng(0))
    assert cost is None
    donors = set(units.tolist())
    # 5,000 draws among DONOR_NEIGHBOURS = 10 neighbours: every one is drawn, none further than 5 ranks
    assert DONOR_NEIGHBOURS == 10 and len(donors) == 10
    assert max(abs(d - 50) for d in donors) <= 5


def _churn(n: int = 30, constant: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(4)
    return pd.DataFrame({"duration_days": rng.exponential(100, n).round(), "churned": rng.random(n) < 0.7,
                         "first_order_amount": 10.0 if constant else rng.gamma(2, 20, n),
                         "band": np.repeat(["low", "high"], n // 2)}, index=[f"c{i}" for i in range(n)])


def test_cox_in_report_mode_logs_why_it_was_not_fitted(caplog):
    from crm_lib.survival import cox_proportional_hazards

    with caplog.at_level(logging.INFO, logger="crm_lib.survival.cox"):
        result = cox_proportional_hazards(_churn(constant=True), covariates=["first_order_amount"], errors="report")
    assert result.error.startswith("Cox covariate 'first_order_amount' has the same value (")
    assert f"Cox model not fitted: {result.error}" in caplog.messages


def test_log_rank_in_report_mode_logs_why_it_was_not_run(caplog):
    from crm_lib.survival import log_rank_test

    with caplog.at_level(logging.INFO, logger="crm_lib.survival.kaplan_meier"):
        result = log_rank_test(_churn(), group_col="band", min_group_size=20, errors="report")
    assert "every group has fewer than 20 customers" in result.error  # 15 each
    assert f"log-rank test not run: {result.error}" in caplog.messages


def test_lapse_sensitivity_logs_a_lapse_that_nobody_can_show_yet(caplog):
    from crm_lib.survival import lapse_sensitivity

    tx = pd.DataFrame({"customer_id": ["a", "a", "b"], "date": pd.to_datetime(["2020-01-01", "2020-01-20", "2020-02-01"]),
                       "amount": 1.0})
    with caplog.at_level(logging.INFO, logger="crm_lib.survival.lapse"):
        table = lapse_sensitivity(tx, lapse_days=[100], horizon_days=10, observation_end="2020-03-01")
    # 60 days of data: nobody was acquired 101 days before the end
    assert np.isnan(table.loc[100, "retention_at_horizon"]) and table.loc[100, "customers"] == 2
    (line,) = [m for m in caplog.messages if m.startswith("lapse 100: ")]
    assert line.startswith("lapse 100: no customer can show a churn yet: all 2 were acquired within the last 100 days")
