"""Stored predictions scored against what happened (crm_lib.clv.tracking), on simulated data where the truth is known.

The log is a stationary Pareto/NBD base (crm_lib.simulate.simulate_stationary_log, CDNOW's
Pareto/NBD estimates per day): a set scored with the true parameters must land near the
realised purchases and beat the same model with drop-out rates six times too low; the actual
counts are recomputed with plain pandas from the log.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crm_lib.clv import customer_equity, customer_value_table, fit_model, fit_spend_model
from crm_lib.clv.tracking import (
    PredictionSet,
    load_prediction_sets,
    prune_prediction_sets,
    score_prediction_set,
    score_stored_predictions,
    store_prediction_set,
)
from crm_lib.exceptions import DataValidationError, ParamsError
from crm_lib.models import ParetoNBDFit
from crm_lib.simulate import simulate_stationary_log
from crm_lib.summary import rfm_summary

TRUE_PARAMS = (0.61, 95.3, 0.31, 43.0)  # simulate_stationary_log's default (per day)
START = pd.Timestamp("2020-01-06")
PREDICTION_END = START + pd.Timedelta(days=359)


def _model(params, covariance=None) -> ParetoNBDFit:
    model = ParetoNBDFit()
    model.params_ = pd.Series(params, index=list(model.param_names), name="estimate")
    model.log_params_covariance_ = np.zeros((4, 4)) if covariance is None else covariance
    return model


def _store(log: pd.DataFrame, model, folder, end=PREDICTION_END) -> None:
    """Store the set made at ``end``, with a 6-month CLV (180 days: complete when scored at day 539)."""
    summary = rfm_summary(log[log["date"] <= end], observation_end=end, time_unit="D")
    spend = fit_spend_model(summary)
    clv = {"horizon_months": 6, "discount_rate_monthly": 0.01, "gross_margin": 0.3, "time_unit": "D"}
    values = customer_value_table(summary, model, spend, horizon_periods=365, **clv)
    equity = customer_equity(model, spend, summary, n_draws=40, seed=3, **clv)
    store_prediction_set(values, model, spend, folder, observation_end=f"{end:%Y-%m-%d}", time_unit="D",
                         horizon_periods=365, equity=equity)


def _pandas_actual(log: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> int:
    """Repeat purchases (customer-days) of customers seen by ``start``, after it up to ``end``."""
    known = set(log.loc[log["date"] <= start, "customer_id"])
    later = log[(log["date"] > start) & (log["date"] <= end) & log["customer_id"].isin(known)]
    return len(later.drop_duplicates(["customer_id", "date"]))


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """A simulated log and two stored prediction sets made at day 359: the true model and a wrong one."""
    log = simulate_stationary_log(2000, seed=5, observation_days=540, acquisition_days=180)
    right, wrong = tmp_path_factory.mktemp("right"), tmp_path_factory.mktemp("wrong")
    _store(log, _model(TRUE_PARAMS), right)
    _store(log, _model((*TRUE_PARAMS[:2], 0.05, TRUE_PARAMS[3])), wrong)  # drop-out rates 6 times too low
    return log, right, wrong


@pytest.fixture(scope="module")
def scored(stored):
    log, right, wrong = stored
    end = log["date"].max()
    return log, {name: score_stored_predictions(folder, log, end, n_draws=40, seed=1)[0]
                 for name, folder in (("right", right), ("wrong", wrong))}


def test_actual_purchases_match_an_independent_count(scored):
    log, scores = scored
    end = log["date"].max()
    assert scores["right"].actual_purchases == _pandas_actual(log, PREDICTION_END, end)
    assert scores["right"].elapsed_periods == (end - PREDICTION_END).days == 180
    later = log[(log["date"] > PREDICTION_END) & log["customer_id"].isin(set(log.loc[log["date"] <= PREDICTION_END,
                                                                                   "customer_id"]))]
    assert scores["right"].actual_revenue == pytest.approx(later["amount"].sum())
    assert scores["right"].curve[-1]["actual"] == scores["right"].actual_purchases
    # 6 months of 30 days after day 359: every purchase of days 360-539, month k discounted by 1.01^k
    month = np.ceil(((later["date"] - PREDICTION_END).dt.days) / 30)
    realised = 0.3 * (later["amount"] / 1.01 ** month).sum()
    assert scores["right"].equity["complete"] and scores["right"].equity["realised"] == pytest.approx(realised)


def test_the_true_model_tracks_and_a_wrong_one_does_not(scored):
    _, scores = scored
    right, wrong = scores["right"], scores["wrong"]
    # The interval is the simulated spread of the total under the true parameters: 90% of it lies within
    # 1.645 sd, so an actual total 3 sd away would mean the closed-form prediction is off.
    sd = (right.interval_upper - right.interval_lower) / (2 * 1.645)
    assert abs(right.predicted_purchases - right.actual_purchases) < 3 * sd
    assert wrong.predicted_purchases > 1.2 * wrong.actual_purchases and not wrong.inside
    assert right.mae < wrong.mae
    assert right.equity["inside"] and not wrong.equity["inside"]  # the realised equity against each 95% interval
    calibration_error = {name: sum(abs(d["predicted"] - d["actual"]) * d["customers"] for d in s.deciles)
                         for name, s in scores.items()}
    assert calibration_error["right"] < 0.5 * calibration_error["wrong"]
    assert sum(d["customers"] for d in right.deciles) == right.n_customers
    # the top decile of predictions buys most, as predicted
    assert right.deciles[-1]["actual"] == max(d["actual"] for d in right.deciles)


def test_a_partial_horizon_is_scored_over_the_elapsed_days_only(stored):
    log, right, _ = stored
    (pset,) = load_prediction_sets(right)
    early = PREDICTION_END + pd.Timedelta(days=60)
    score = score_prediction_set(pset, log[log["date"] <= early], early, n_draws=40, seed=2)
    assert score.elapsed_periods == 60 and score.horizon_periods == 365
    assert score.actual_purchases == _pandas_actual(log, PREDICTION_END, early)
    sd = (score.interval_upper - score.interval_lower) / (2 * 1.645)
    assert abs(score.predicted_purchases - score.actual_purchases) < 3 * sd
    # the stored whole-horizon prediction scaled to 60 of 365 days is not what is scored
    assert score.predicted_purchases != pytest.approx(pset.customers["expected_purchases"].sum() * 60 / 365, rel=0.02)


def test_a_set_cannot_be_scored_before_it_ends_and_later_sets_are_not_loaded(stored):
    log, right, _ = stored
    (pset,) = load_prediction_sets(right)
    with pytest.raises(DataValidationError, match="nothing to score them against"):
        score_prediction_set(pset, log, PREDICTION_END)
    assert load_prediction_sets(right, before=f"{PREDICTION_END:%Y-%m-%d}") == []


def test_retention_deletes_the_oldest_sets(tmp_path):
    for end in ("2021-01-31", "2021-02-28", "2021-03-31"):
        for suffix in (".parquet", ".json"):
            (tmp_path / f"{end}{suffix}").write_text("")
    assert prune_prediction_sets(tmp_path, keep=1, before="2021-03-31") == ["2021-01-31"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2021-02-28.json", "2021-02-28.parquet",
                                                          "2021-03-31.json", "2021-03-31.parquet"]


@pytest.mark.slow
def test_predictive_interval_of_a_fitted_model_covers_the_realised_total():
    """Coverage of the 90% interval with the model fitted on each simulated base (parameter draws + futures)."""
    from crm_lib.clv.tracking import PredictionSet
    from crm_lib.exceptions import ModelFitError

    covered, usable = 0, 0
    for rep in range(20):
        log = simulate_stationary_log(1500, seed=100 + rep, observation_days=540, acquisition_days=180)
        summary = rfm_summary(log[log["date"] <= PREDICTION_END], observation_end=PREDICTION_END, time_unit="D")
        try:
            model = fit_model(summary, "pareto_nbd")
        except ModelFitError:  # a base the model cannot be fitted on makes no predictions to score
            continue
        values = customer_value_table(summary, model, fit_spend_model(summary), horizon_periods=365, time_unit="D")
        pset = PredictionSet(f"{PREDICTION_END:%Y-%m-%d}", values, {
            "time_unit": "D", "horizon_periods": 365.0,
            "transaction_model": {"name": "pareto_nbd", "params": model.params_.to_dict(),
                                  "log_params_covariance": model.log_params_covariance_.tolist()}})
        score = score_prediction_set(pset, log, log["date"].max(), n_draws=40, seed=rep)
        usable += 1
        covered += score.inside
    assert usable >= 15
    # Binomial(20, 0.9): 5 or more misses has probability 4%.
    assert covered >= usable - 4, (covered, usable)


def test_scoring_stops_at_the_horizon(stored):
    log, right, _ = stored
    (pset,) = load_prediction_sets(right)
    short = PredictionSet(pset.observation_end, pset.customers, {**pset.meta, "horizon_periods": 60.0})
    score = score_prediction_set(short, log, log["date"].max(), n_draws=20, seed=2)  # 180 days of data after it
    assert score.elapsed_periods == 60 and score.horizon_periods == 60
    # only the purchases of the 60 horizon days count, as recounted with pandas
    assert score.actual_purchases == _pandas_actual(log, PREDICTION_END, PREDICTION_END + pd.Timedelta(days=60))
    assert score.curve[-1]["period"] == 60
    assert score.equity["complete"]  # the CLV's 6 months (180 days) are still judged on all the data


def test_discrete_time_predictions_are_not_scored_with_a_note(stored, tmp_path, caplog):
    import json
    import shutil

    log, right, _ = stored
    for path in right.iterdir():
        shutil.copy(path, tmp_path / path.name)
    meta_path = next(tmp_path.glob("*.json"))
    meta = json.loads(meta_path.read_text())
    meta["transaction_model"]["name"] = "bg_bb"
    meta_path.write_text(json.dumps(meta))
    (pset,) = load_prediction_sets(tmp_path)
    with pytest.raises(ParamsError, match="discrete-time model"):
        score_prediction_set(pset, log, log["date"].max())
    with caplog.at_level("WARNING"):
        assert score_stored_predictions(tmp_path, log, log["date"].max(), n_draws=5) == []
    assert "not scored: bg_bb is a discrete-time model" in caplog.text
