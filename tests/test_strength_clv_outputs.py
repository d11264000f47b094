"""CLV results as people read them, and the refusals of bad CLV knobs (issue 16).

Hand-made results (a comparison table, an equity with four draws, a value vector) go in; the
sentences and tables written out here must come back. Standard deviations by hand.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crm_lib import clv
from crm_lib.clv.validation import ModelComparison
from crm_lib.exceptions import ParamsError


def _comparison(runner_up: str | None = "bg_nbd", error: str = "") -> ModelComparison:
    table = pd.DataFrame(
        {"n_params": [4.0, np.nan], "log_likelihood": [-1234.56, np.nan], "aic": [2477.12, np.nan],
         "bic": [2490.5, np.nan], "converged": [True, False], "holdout_mae": [0.5, np.nan],
         "holdout_rmse": [0.654321, 0.7], "predicted_holdout_total": [1234.4, np.nan],
         "actual_holdout_total": [1200.0, np.nan], "aggregate_error_pct": [2.866, np.nan], "error": ["", error]},
        index=["pareto_nbd", "bg_nbd"])
    return ModelComparison(table=table, winner="pareto_nbd", runner_up=runner_up, margin_pct=6.53, fits={})


def test_model_comparison_summary_names_winner_margin_and_runner_up():
    assert _comparison().summary() == (
        "Pareto/NBD has the lowest holdout RMSE (0.6543 repeat purchases per customer, 6.5% below BG/NBD at 0.7000).")
    assert _comparison(runner_up=None).summary() == (
        "Pareto/NBD has the lowest holdout RMSE (0.6543 repeat purchases per customer).")
    pd.testing.assert_frame_equal(_comparison().to_frame(), _comparison().table)


def test_model_comparison_table_shows_a_failed_fit_with_its_error():
    shown = _comparison(error="BG/NBD did not converge").formatted()
    assert list(shown.index) == ["Pareto/NBD", "BG/NBD"]
    assert shown.loc["BG/NBD"].to_dict() == {
        "log-likelihood": "", "AIC": "", "BIC": "", "converged": "no", "holdout MAE": "", "holdout RMSE": "0.7000",
        "predicted total": "", "actual total": "", "aggregate error": "", "chosen": "",
        "error": "BG/NBD did not converge"}
    assert shown.loc["Pareto/NBD", "converged"] == "yes" and shown.loc["Pareto/NBD", "error"] == ""
    assert "error" not in _comparison().formatted().columns


def test_customer_equity_frame_has_both_intervals_with_their_spread():
    equity = clv.CustomerEquity(
        estimate=100.0, expected_lower=80.0, expected_upper=120.0, predictive_lower=60.0, predictive_upper=140.0,
        level=0.9, n_customers=50, n_draws=4, seed=3, horizon_months=6, expected_method="normal draws",
        predictive_method="simulation", draws=np.array([90.0, 95.0, 105.0, 110.0]),
        predictive_draws=np.array([80.0, 100.0, 100.0, 120.0]))
    frame = equity.to_frame()
    assert list(frame.index) == ["expected equity (parameter uncertainty)", "realised equity (predictive)"]
    assert frame.index.name == "interval"
    # sd of 90, 95, 105, 110 (ddof 1): sqrt(250 / 3); of 80, 100, 100, 120: sqrt(800 / 3)
    assert frame["sd"].tolist() == pytest.approx([np.sqrt(250 / 3), np.sqrt(800 / 3)])
    assert frame["lower"].tolist() == [80.0, 60.0] and frame["upper"].tolist() == [120.0, 140.0]
    assert frame["method"].tolist() == ["normal draws", "simulation"]
    for column, value in {"estimate": 100.0, "level": 0.9, "n_customers": 50, "n_draws": 4, "seed": 3,
                          "horizon_months": 6}.items():
        assert frame[column].tolist() == [value, value]
    # realised minus expected: -10, 5, -5, 10 -> sd sqrt(250 / 3)
    assert equity.noise_sd == pytest.approx(np.sqrt(250 / 3))
    assert (equity.lower, equity.upper) == (80.0, 120.0)
    assert equity.method == "normal draws; simulation"


def test_value_concentration_sentence_and_table():
    result = clv.value_concentration(pd.Series([50.0, 30.0, 10.0, 5.0, 5.0]), top=(0.2, 0.4))
    # top 1 of 5 holds 50/100, top 2 hold 80/100; Gini by hand: Lorenz 0, .05, .10, .20, .50, 1
    # -> 1 - (0.05 + 0.15 + 0.30 + 0.70 + 1.50) / 5 = 0.46
    assert result.gini == pytest.approx(0.46)
    assert result.summary() == "Of a total value of 100 over 5 customers: top 20% hold 50.0%, top 40% hold 80.0%; Gini 0.460."
    frame = result.to_frame()
    assert frame.index.name == "top_customer_share" and frame["value_share"].tolist() == [0.5, 0.8]


@pytest.mark.parametrize("knobs, message", [
    ({"horizon_months": 0}, r"horizon_months must be a whole number >= 1; got 0\."),
    ({"horizon_months": 1.5}, r"horizon_months must be a whole number >= 1; got 1\.5\."),
    ({"discount_rate_monthly": -1.0}, r"discount_rate_monthly must be > -1; got -1\.0\."),
    ({"gross_margin": 0.0}, r"gross_margin must be in \(0, 1\]; got 0\.0\."),
    ({"gross_margin": 1.5}, r"gross_margin must be in \(0, 1\]; got 1\.5\."),
    ({"time_unit": "Q"}, r"time_unit='Q' for CLV: use one of W, M, D, H, h\."),
])
def test_bad_clv_knob_is_refused_with_its_value(knobs, message):
    model = clv.BetaGeoFit()
    model.params_ = pd.Series({"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426})
    spend = clv.GammaGammaFit()
    spend.params_ = pd.Series({"p": 6.25, "q": 3.74, "v": 15.44})
    summary = pd.DataFrame({"frequency": [2.0], "recency": [30.0], "T": [38.0], "monetary_value": [40.0]})
    with pytest.raises(ParamsError, match=message):
        clv.customer_lifetime_value(model, spend, summary, **knobs)


def test_prediction_score_sentence_error_and_interval_flag():
    from crm_lib.clv.tracking import PredictionScore

    score = PredictionScore(
        observation_end="2020-06-30", scored_to="2020-09-30", elapsed_periods=13.14, horizon_periods=52.0,
        time_unit="W", model="bg_nbd", n_customers=1234, predicted_purchases=1100.4, actual_purchases=1000.0,
        interval_lower=950.0, interval_upper=1250.0, level=0.9, mae=0.4567, mae_naive=0.61234,
        predicted_revenue=5.0, actual_revenue=4.0)
    assert score.summary() == (
        "predictions of 2020-06-30 scored to 2020-09-30 (13.1 of 52 W): predicted 1,100 repeat purchases (90% "
        "interval 950 to 1,250), actual 1,000; MAE 0.457 per customer (naive 0.612)")
    assert score.inside and score.error_pct == pytest.approx(10.04)
    as_dict = score.to_dict()
    assert as_dict["inside"] is True and as_dict["n_customers"] == 1234 and as_dict["deciles"] == []
    below = PredictionScore(**{**{k: v for k, v in as_dict.items() if k != "inside"}, "actual_purchases": 900.0})
    assert not below.inside  # 900 < 950
    above = PredictionScore(**{**{k: v for k, v in as_dict.items() if k != "inside"}, "actual_purchases": 1250.0})
    assert above.inside  # the upper end belongs to the interval
    none = PredictionScore(**{**{k: v for k, v in as_dict.items() if k != "inside"}, "actual_purchases": 0.0})
    assert np.isnan(none.error_pct)


def test_p_alive_history_day_by_day_by_hand():
    from crm_lib.exceptions import DataValidationError

    r, alpha, a, b = 0.243, 4.414, 0.793, 2.426
    model = clv.BetaGeoFit()
    model.params_ = pd.Series({"r": r, "alpha": alpha, "a": a, "b": b})
    tx = pd.DataFrame({"customer_id": ["a", "a", "b", "a", "a"],
                       "date": pd.to_datetime(["2020-01-01", "2020-01-03", "2020-01-02", "2020-01-06", "2020-01-10"]),
                       "amount": 1.0})
    history = clv.p_alive_history(model, tx, "a", time_unit="D", observation_end="2020-01-08")
    # days 0..7 after the first purchase; purchases on days 0, 2 and 5 (the one of 01-10 is after the end)
    assert list(history.index) == list(pd.date_range("2020-01-01", "2020-01-08"))
    assert history.index.name == "period_start"
    assert history["age"].tolist() == [0, 1, 2, 3, 4, 5, 6, 7]
    assert history["frequency"].tolist() == [0, 0, 1, 1, 1, 2, 2, 2]
    assert history["recency"].tolist() == [0, 0, 2, 2, 2, 5, 5, 5]
    assert history["purchase"].tolist() == [True, False, True, False, False, True, False, False]
    # BG/NBD P(alive), FHL note 021: 1 / (1 + a / (b + x - 1) ((alpha + T) / (alpha + t_x))^(r + x)), 1 at x = 0
    x, tx_, T = history["frequency"].to_numpy(), history["recency"].to_numpy(), history["age"].to_numpy()
    expected = np.where(x > 0, 1 / (1 + a / (b + x - 1) * ((alpha + T) / (alpha + tx_)) ** (r + x)), 1.0)
    np.testing.assert_allclose(history["p_alive"], expected, rtol=1e-10)
    assert history.attrs == {"customer_id": "a", "time_unit": "D"}
    with pytest.raises(DataValidationError, match=r"^p_alive_history: customer 'z' has no transactions \(ids look "
                                                  r"like 'a'\)\.$"):
        clv.p_alive_history(model, tx, "z", time_unit="D")


def test_model_comparison_table_without_a_statistic_shows_blanks():
    table = _comparison().table.drop(columns=["log_likelihood", "aic", "holdout_mae"])
    shown = ModelComparison(table=table, winner="pareto_nbd", runner_up="bg_nbd", margin_pct=6.5, fits={}).formatted()
    assert shown["log-likelihood"].tolist() == ["", ""] and shown["AIC"].tolist() == ["", ""]
    assert shown["holdout MAE"].tolist() == ["", ""] and shown["BIC"].tolist() == ["2,490.5", ""]


def test_predict_customer_value_in_days_values_purchases_per_day():
    from crm_lib import loyalty

    tx, _ = loyalty.simulate_loyalty_log(300, seed=6, observation_days=400)
    end = f"{tx['date'].max():%Y-%m-%d}"
    days = clv.predict_customer_value(tx, model="bg_nbd", time_unit="D", horizon_months=6, gross_margin=0.5,
                                      observation_end=end)
    # the same chain by hand: summary in days, BG/NBD and Gamma-Gamma, CLV over 6 months of 30 days
    from crm_lib.summary import rfm_summary

    summary = rfm_summary(tx, time_unit="D", observation_end=end)
    expected = clv.customer_lifetime_value(clv.fit_model(summary, "bg_nbd"), clv.fit_spend_model(summary), summary,
                                           horizon_months=6, discount_rate_monthly=clv.monthly_discount_rate(0.10),
                                           time_unit="D", gross_margin=0.5)
    np.testing.assert_allclose(days["clv"].sort_index(), expected.sort_index(), rtol=1e-6)


def test_spend_frequency_check_sentence_and_row():
    from crm_lib.models.gamma_gamma import CorrelationCheck

    weak = CorrelationCheck(correlation=0.1234, p_value=0.0004, n_customers=1234, threshold=0.3,
                            verdict="|r| < 0.3: spend and frequency are close to independent.")
    assert weak.summary() == ("Spend vs frequency (repeat buyers, n=1,234): Pearson r = 0.123 (p < 0.001). "
                              "|r| < 0.3: spend and frequency are close to independent.")
    assert weak.to_frame().iloc[0].to_dict() == {"correlation": 0.1234, "p_value": 0.0004, "n_customers": 1234,
                                                 "threshold": 0.3, "verdict": weak.verdict}


def test_lifetime_identification_by_hand_and_in_words():
    from crm_lib.retention import lifetime_identification

    # alpha 2, beta 3: E[T] = (2 + 3 - 1) / (2 - 1) = 4 periods; 95% Wald interval on log alpha with
    # SE(alpha) 0.2: alpha exp(-/+ 1.96 x 0.2 / 2) = 1.64 to 2.43, above 1: finite
    finite = lifetime_identification(2.0, 3.0, alpha_se=0.2)
    assert (finite.status, finite.expected_lifetime) == ("finite", 4.0)
    assert (finite.alpha_lower, finite.alpha_upper) == pytest.approx((2 * np.exp(-1.959964 * 0.1), 2 * np.exp(1.959964 * 0.1)))
    assert finite.sentence("month") == "expected lifetime 4.0 months (α = 2.000, 95% interval of α 1.64 to 2.43)"
    row = finite.to_frame().iloc[0].to_dict()
    assert row["status"] == "finite" and row["expected_lifetime"] == 4.0 and row["level"] == 0.95
    wide = lifetime_identification(1.5, 3.0, alpha_interval=(0.9, 2.5))
    assert wide.status == "not identified" and np.isnan(wide.expected_lifetime)
    assert wide.sentence() == ("expected lifetime not identified: α = 1.500 but its 95% interval of α 0.90 to 2.50 "
                               "includes 1, where the mean becomes infinite, so the data cannot bound it")
    below = lifetime_identification(0.668, 3.806, alpha_se=0.1)  # Fader & Hardie (2007), high end
    assert below.status == "unbounded"
    assert below.sentence() == ("expected lifetime unbounded: α = 0.668 ≤ 1, so a group of customers almost never "
                                "cancels and the mean number of periods is infinite")
