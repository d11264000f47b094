"""Checks written against the survivors of the seed-23 mutation sample (issue 16).

Each expected value comes from a hand computation, scipy or numpy applied to the input
directly, never from the function under test.
"""
from __future__ import annotations

import logging
import types
import warnings
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from crm_lib import clv, loyalty
from crm_lib.clv import tracking


def test_runner_hook_scores_with_the_seed_knob(tmp_path, monkeypatch):
    seen = {}

    def record(folder, transactions, scored_to, **options):
        seen.update(options)
        return []

    monkeypatch.setattr(tracking, "score_stored_predictions", record)
    log = types.SimpleNamespace(observation_end=pd.Timestamp("2020-03-31"), time_unit="W",
                                transactions=pd.DataFrame({"customer_id": [], "date": [], "amount": []}))
    cache = tmp_path / "cache"
    cache.mkdir()
    ctx = types.SimpleNamespace(log=log, knobs={"seed": 7}, cache_dir=cache)
    report = tmp_path / "report"
    report.mkdir()
    assert tracking.track_run_predictions(ctx, tmp_path, "monthly", report) == []
    assert seen == {"seed": 7}  # the run's seed knob, not the default 0


def test_holdout_by_calibration_frequency_is_indexed_by_frequency_cal():
    model = clv.BetaGeoFit()
    model.params_ = pd.Series({"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426})  # FHL (2005) CDNOW
    cal = pd.DataFrame({"frequency_cal": [0.0, 1.0, 3.0], "recency_cal": [0.0, 10.0, 20.0], "T_cal": [30.0] * 3,
                        "frequency_holdout": [0.0, 2.0, 1.0], "duration_holdout": [39.0] * 3})
    table = clv.holdout_by_calibration_frequency(cal, model, max_frequency=2)
    assert table.index.name == "frequency_cal"  # as documented
    assert table.index.tolist() == [0, 1, 2] and table["actual"].tolist() == [0.0, 2.0, 1.0]


def test_predict_customer_value_logs_the_model_it_used(caplog):
    tx, _ = loyalty.simulate_loyalty_log(120, seed=4, observation_days=300)
    with caplog.at_level(logging.INFO, logger="crm_lib.clv.value"):
        values = clv.predict_customer_value(tx, model="pareto_nbd", time_unit="D", horizon_months=3,
                                            observation_end=f"{tx['date'].max():%Y-%m-%d}")
    assert f"predicted CLV of {len(values):,} customers with Pareto/NBD and Gamma-Gamma" in caplog.messages


def test_classical_robustness_row_gives_the_share_of_censored_lifetimes():
    from tests.test_strength_loyalty_choices import KNOBS, ONE_ROW
    from tests.test_strength_loyalty_outputs import _pnbd

    tx, _ = loyalty.simulate_loyalty_log(150, seed=5, observation_days=300, price_lift_per_year=0.5)
    table = loyalty.robustness_table(tx, {"Pareto/NBD": _pnbd()}, **ONE_ROW, **KNOBS)
    durations = loyalty.lifetime_durations(tx, _pnbd())
    share = durations["censored"].mean()  # lifetimes still running at the observation end
    assert 0 < share < 1
    assert table.loc["baseline", "censored lifetimes"] == pytest.approx(share)


def test_hypotheses_battery_splits_h3_and_h4_at_the_given_duration_and_keeps_alpha():
    rng = np.random.default_rng(11)
    customers = pd.DataFrame({"duration": rng.uniform(10, 100, 60), "profit": rng.normal(10, 5, 60),
                              "price": rng.normal(20, 3, 60), "cost_share": rng.uniform(0.1, 0.3, 60),
                              "cost_source": "cost column"})
    panel = pd.DataFrame({"customer_id": np.repeat(np.arange(15), 4), "tenure_period": np.tile(np.arange(1, 5), 15),
                          "profit": rng.normal(5, 1, 60)})
    split = 30.0  # well below the median duration (about 55)
    tests = loyalty.test_hypotheses(customers, panel, duration_split=split, n_bootstrap=0, alpha=0.1)
    assert tests.alpha == 0.1  # the battery keeps the level its verdicts used
    long = customers["duration"] > split
    for hypothesis, column in (("H3", "price"), ("H4", "cost_share")):
        welch = stats.ttest_ind(customers.loc[long, column], customers.loc[~long, column], equal_var=False)
        assert tests[hypothesis].primary.p_value == pytest.approx(welch.pvalue, rel=1e-12), hypothesis


def test_lifetime_profit_names_the_transactions_frame_when_a_column_is_missing():
    from crm_lib.exceptions import DataValidationError

    durations = pd.DataFrame({"lifetime_end": pd.to_datetime(["2020-01-10"]), "duration": [9.0]},
                             index=pd.Index(["a"], name="customer_id"))
    tx = pd.DataFrame({"customer_id": ["a"], "date": pd.to_datetime(["2020-01-01"])})
    with pytest.raises(DataValidationError, match=r"^transactions: column\(s\) \['amount'\] not found.*"
                       r"Pass TransactionLog\.transactions"):
        loyalty.lifetime_profit(tx, durations)


def test_row_correlation_of_a_constant_row_is_nan_without_a_warning():
    from crm_lib.loyalty.null import _row_corr

    a = np.array([[1.0, 2.0, 3.0, 4.0], [2.0, 2.0, 2.0, 2.0]])
    b = np.array([[2.0, 1.0, 4.0, 3.0], [1.0, 3.0, 2.0, 5.0]])
    use = np.ones_like(a, dtype=bool)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 0/0 of a constant row is expected, not a warning
        rho = _row_corr(a, b, use)
    assert rho[0] == pytest.approx(np.corrcoef(a[0], b[0])[0, 1])  # 0.6
    assert np.isnan(rho[1])


def test_interval_sums_add_up_the_deaths_of_every_chunk(monkeypatch):
    from crm_lib.survival import risk_sets

    monkeypatch.setattr(risk_sets, "_CHUNK_ROWS", 3)  # intervals of 7 and 5 rows in several slices
    rng = np.random.default_rng(3)
    group = np.array([0] * 7 + [1] * 5 + [2] * 2)
    x = rng.normal(size=(14, 2))
    w = rng.uniform(0.5, 2.0, 14)
    dead = np.array([1, 0, 1, 1, 0, 0, 1, 0, 1, 1, 0, 1, 1, 0], dtype=bool)
    a0, a1, a2, d0, d1, d2, x_dead = risk_sets._interval_sums(x, w, dead, group, 3)
    for k in range(3):
        rows, deaths = group == k, (group == k) & dead
        assert a0[k] == pytest.approx(w[rows].sum())
        np.testing.assert_allclose(a1[k], (w[rows, None] * x[rows]).sum(axis=0))
        np.testing.assert_allclose(a2[k], np.einsum("i,ij,ik->jk", w[rows], x[rows], x[rows]))
        assert d0[k] == pytest.approx(w[deaths].sum())
        np.testing.assert_allclose(d1[k], (w[deaths, None] * x[deaths]).sum(axis=0))
        np.testing.assert_allclose(d2[k], np.einsum("i,ij,ik->jk", w[deaths], x[deaths], x[deaths]))
        np.testing.assert_allclose(x_dead[k], x[deaths].sum(axis=0))


def _hand_prediction_set() -> tracking.PredictionSet:
    customers = pd.DataFrame({"frequency": [2.0, 0.0, 1.0], "recency": [20.0, 0.0, 5.0], "T": [30.0, 30.0, 25.0],
                              "expected_spend_per_purchase": [10.0, 12.0, 8.0]},
                             index=pd.Index(["a", "b", "c"], name="customer_id"))
    meta = {"time_unit": "D", "horizon_periods": 60.0,
            "transaction_model": {"name": "pareto_nbd", "params": {"r": 0.61, "alpha": 95.3, "s": 0.31, "beta": 43.0},
                                  "log_params_covariance": np.zeros((4, 4)).tolist()},
            "spend_model": {"name": "gamma_gamma", "params": {"p": 6.0, "q": 4.0, "v": 15.0}},
            "clv": {"horizon_months": 1, "discount_rate_monthly": 0.01, "gross_margin": 0.5},
            "equity": {"estimate": 10.0, "expected_lower": 5.0, "expected_upper": 15.0, "predictive_lower": 0.0,
                       "predictive_upper": 30.0, "level": 0.95, "horizon_months": 1}}
    return tracking.PredictionSet("2020-01-31", customers, meta)


def test_scoring_takes_decimal_amounts_as_a_database_driver_returns_them():
    # pandas.read_sql gives PostgreSQL NUMERIC amounts as decimal.Decimal objects (an object column)
    tx = pd.DataFrame({
        "customer_id": ["a", "a", "a", "b", "z"],
        "date": pd.to_datetime(["2020-01-15", "2020-02-05", "2020-03-10", "2020-02-20", "2020-02-06"]),
        "amount": [Decimal("99.00"), Decimal("10.10"), Decimal("5.25"), Decimal("20.00"), Decimal("7.00")]})
    score = tracking.score_prediction_set(_hand_prediction_set(), tx, "2020-03-31", n_draws=3)
    # after the end (2020-01-31), known customers only, c buys nothing: 10.10 + 5.25 + 20.00
    assert score.actual_revenue == pytest.approx(35.35)
    assert score.actual_purchases == 3.0
    # CLV horizon one month of 30 days from 02-01: 02-05 (day 5) and 02-20 (day 20) are in month 1,
    # 03-10 (day 39) is past it; margin 0.5, discounted one month at 1%
    assert score.equity["complete"] is True
    assert score.equity["realised"] == pytest.approx(0.5 * (10.10 + 20.00) / 1.01)


def test_scoring_adds_up_float32_amounts_in_double_precision():
    # a float32 amount column (as some tools write Parquet) has 24-bit significands: about 1.2 M it
    # steps by 0.125, so a float32 running sum would give 1,234,567.125 for a's two purchases
    tx = pd.DataFrame({"customer_id": ["a", "a", "b"],
                       "date": pd.to_datetime(["2020-02-05", "2020-02-06", "2020-02-20"]),
                       "amount": np.array([1234567.0, 0.1, 20.0], dtype=np.float32)})
    score = tracking.score_prediction_set(_hand_prediction_set(), tx, "2020-03-31", n_draws=3)
    expected = 1234567.0 + float(np.float32(0.1)) + 20.0  # the stored values, added in float64
    assert score.actual_revenue == pytest.approx(expected, rel=1e-12, abs=0)
    assert score.equity["realised"] == pytest.approx(0.5 * expected / 1.01, rel=1e-12, abs=0)
