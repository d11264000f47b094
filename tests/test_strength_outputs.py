"""What the reports show equals what was computed (issue 16, mutants that survived the fast tests).

The figures themselves are checked against independent values elsewhere (tests/test_strength_*.py);
these tests pin the step from a computed figure to the table, sentence or attribute a reader sees:
a table that shows the wrong column, rounds to the wrong digits or drops a label is a wrong answer
too. Expected texts are built here from the stored numbers with plain ``format``; expected numbers
come from hand computation or scipy's distributions, never from the function under test.
Public names only, so the loyalty, survival and format refactors of round 3 keep them valid.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from crm_lib import clv
from crm_lib.clv.validation import ModelComparison
from crm_lib.models.gamma_gamma import spend_frequency_correlation
from crm_lib.models.shifted_beta_geo import ShiftedBetaGeometricFitter
from crm_lib.survival import cox_proportional_hazards, kaplan_meier, lapse_vs_p_alive, time_to_churn

# --- CLV: repeat-transaction tracking ----------------------------------------------------------


class _LinearCurve:
    """A stand-in fit with E[X(t)] = 0.5 t, so the expected column is plain arithmetic."""

    def expected_number_of_purchases_up_to_time(self, t):
        return 0.5 * np.asarray(t, dtype=float)


def test_tracking_expected_counts_index_and_attributes_by_hand():
    # Weeks (pandas W, Monday-Sunday): a first buys in week 0 and again in weeks 1 and 3;
    # b first buys in week 1; c first buys in week 3, after the calibration end (week 2).
    tx = pd.DataFrame({
        "customer_id": ["a", "a", "a", "b", "c"],
        "date": pd.to_datetime(["2021-01-04", "2021-01-12", "2021-01-26", "2021-01-13", "2021-01-27"]),
    })
    out = clv.repeat_transactions_tracking(tx, _LinearCurve(), calibration_end="2021-01-20",
                                           observation_end="2021-01-31", time_unit="W")
    assert out.index.name == "period_start"
    assert list(out.index) == list(pd.to_datetime(["2021-01-04", "2021-01-11", "2021-01-18", "2021-01-25"]))
    assert out.attrs == {"time_unit": "W", "calibration_end": "2021-01-20", "n_customers": 2}
    assert out["actual"].tolist() == [0, 1, 0, 1]
    # Cohort: one customer first seen in week 0, one in week 1. Expected cumulative at the end of
    # week p: 0.5 p + 0.5 (p - 1) for p >= 1 (age 0 counts nothing).
    np.testing.assert_allclose(out["expected_cumulative"], [0.0, 0.5, 1.5, 2.5])
    np.testing.assert_allclose(out["expected"], [0.0, 0.5, 1.0, 1.0])
    assert out["holdout"].tolist() == [False, False, False, True]


# --- CLV: the model comparison table for people ------------------------------------------------


def test_model_comparison_formatted_shows_each_figure_at_its_precision():
    table = pd.DataFrame(
        {"n_params": [4, 4], "log_likelihood": [-1234.56, -1240.04], "aic": [2477.12, 2488.08],
         "bic": [2490.5, 2501.46], "converged": [True, False], "holdout_mae": [0.123456, 0.2],
         "holdout_rmse": [0.654321, 0.7], "predicted_holdout_total": [1234.4, 999.6],
         "actual_holdout_total": [1200.0, 1200.0], "aggregate_error_pct": [2.866, -16.7],
         "error": ["", ""]},
        index=["pareto_nbd", "bg_nbd"])
    comparison = ModelComparison(table=table, winner="pareto_nbd", runner_up="bg_nbd",
                                 margin_pct=6.5, fits={})
    out = comparison.formatted()
    assert out.index.name == "model"
    first = out.iloc[0]
    assert first["log-likelihood"] == "-1,234.6" and first["AIC"] == "2,477.1" and first["BIC"] == "2,490.5"
    assert first["holdout MAE"] == "0.1235" and first["holdout RMSE"] == "0.6543"
    assert first["predicted total"] == "1,234" and first["actual total"] == "1,200"
    assert first["aggregate error"] == "+2.9%" and out.iloc[1]["aggregate error"] == "-16.7%"
    assert out["chosen"].tolist() == ["✓", ""]


# --- models ------------------------------------------------------------------------------------


def test_spend_frequency_correlation_p_value_is_the_t_test_of_pearson_r():
    summary = pd.DataFrame({"frequency": [0, 1, 2, 3, 4, 5, 6, 7],
                            "monetary_value": [0.0, 10.0, 14.0, 9.0, 20.0, 18.0, 25.0, 21.0]})
    check = spend_frequency_correlation(summary)
    buyers = summary[summary["frequency"] > 0]
    x, y = buyers["frequency"].to_numpy(float), buyers["monetary_value"].to_numpy(float)
    r = np.sum((x - x.mean()) * (y - y.mean())) / math.sqrt(np.sum((x - x.mean()) ** 2) * np.sum((y - y.mean()) ** 2))
    n = len(x)
    t = r * math.sqrt((n - 2) / (1 - r * r))
    p = 2 * stats.t.sf(abs(t), n - 2)  # the textbook two-sided t test of a correlation
    assert check.correlation == pytest.approx(r) and check.p_value == pytest.approx(p)
    assert check.n_customers == 7


def test_spend_frequency_correlation_missing_column_says_how_to_build_it():
    with pytest.raises(Exception, match="rfm_summary"):
        spend_frequency_correlation(pd.DataFrame({"frequency": [1, 2, 3]}))


def test_sbg_retention_rates_are_indexed_by_period():
    model = ShiftedBetaGeometricFitter()
    model.params_ = pd.Series({"alpha": 0.668, "beta": 3.806})
    rates = model.retention_rates(3)
    assert rates.index.name == "period" and rates.name == "retention_rate"
    # r_t = (beta + t - 1) / (alpha + beta + t - 1), Fader & Hardie (2007) eq. 8
    np.testing.assert_allclose(rates.to_numpy(), [(3.806 + t - 1) / (0.668 + 3.806 + t - 1) for t in (1, 2, 3)])


def test_unfitted_model_repr_names_the_class():
    assert repr(clv.BetaGeoFit()) == "<BetaGeoFit (not fitted)>"


# --- survival ----------------------------------------------------------------------------------


def test_failed_kaplan_meier_has_the_columns_of_a_fitted_one():
    churn = pd.DataFrame({"duration_days": [1.0, 2, 3, 4], "churned": [True, False, True, True]})
    fitted = kaplan_meier(churn)
    failed = kaplan_meier(churn, group_col="segment", errors="report")
    assert failed.error and failed.curves.empty
    # what a plot or a table reads from the curves: the same names as a fitted result's
    assert set(failed.curves.columns) <= set(fitted.curves.columns)
    assert {"group", "time", "survival", "lower", "upper"} <= set(failed.curves.columns)


def test_lapse_vs_p_alive_takes_a_one_column_frame_like_a_series():
    tx = pd.DataFrame({"customer_id": ["a", "b", "c"],
                       "date": pd.to_datetime(["2020-01-01", "2020-03-20", "2020-01-10"]),
                       "amount": 10.0, "quantity": 1})
    churn = time_to_churn(tx, lapse_days=30, observation_end="2020-03-31")
    p_alive = pd.Series({"a": 0.25, "b": 0.75, "c": 0.5})
    from_series = lapse_vs_p_alive(churn, p_alive, lapse_days=30)
    from_frame = lapse_vs_p_alive(churn, p_alive.to_frame("p_alive"), lapse_days=30)
    pd.testing.assert_frame_equal(from_series, from_frame)
    assert from_frame.loc["all", "expected_churned_by_model"] == pytest.approx(0.75 + 0.25 + 0.5)


@pytest.fixture(scope="module")
def cox_fit():
    rng = np.random.default_rng(3)
    n = 400
    amount = rng.lognormal(3, 0.8, n)
    web = rng.random(n) < 0.4
    time = rng.exponential(100 * np.exp(0.3 * np.log2(1 + amount) - 0.5 * web))
    censor = rng.uniform(0, 400, n)
    churn = pd.DataFrame({"duration_days": np.round(np.minimum(time, censor), 3), "churned": time <= censor,
                          "first_order_amount": amount, "channel": np.where(web, "web", "store")})
    return cox_proportional_hazards(churn, covariates=["first_order_amount", "channel"])


def test_cox_table_summary_and_ph_table_show_the_fitted_numbers(cox_fit):
    hr, ph = cox_fit.hazard_ratios, cox_fit.ph_test
    table = cox_fit.table()
    for term, row in hr.iterrows():
        assert table.loc[term, "hazard ratio"] == f"{row['hazard_ratio']:.3f}"
        assert table.loc[term, "95% interval"] == f"{row['lower']:.3f} to {row['upper']:.3f}"
        assert f"HR {row['hazard_ratio']:.3f} [{row['lower']:.3f}, {row['upper']:.3f}]" in cox_fit.summary()
    shown = cox_fit.ph_table()
    for term, row in ph.iterrows():
        expected_rho = "" if np.isnan(row["rho"]) else f"{row['rho']:+.3f}"
        assert shown.loc[term, "correlation with time (ρ)"] == expected_rho
        assert shown.loc[term, "χ²"] == f"{row['chi2']:.2f}"
    assert shown.loc["GLOBAL", "correlation with time (ρ)"] == ""


# --- CLV: P(alive) grid and the one-call value table -------------------------------------------


def test_p_alive_grid_axes_are_whole_recency_and_frequency():
    model = clv.BetaGeoFit()
    model.params_ = pd.Series({"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426})
    grid = clv.p_alive_grid(model, max_frequency=3, max_T=4)
    assert grid.index.name == "recency" and grid.columns.name == "frequency"
    assert grid.index.tolist() == [0, 1, 2, 3, 4] and grid.columns.tolist() == [0, 1, 2, 3]
    assert grid.columns.dtype.kind == "i" and grid.index.dtype.kind == "i"
    # BG/NBD P(alive), Fader, Hardie & Lee note 021: 1 / (1 + a / (b + x - 1) ((alpha + T) / (alpha + t_x))^(r + x))
    r, alpha, a, b = 0.243, 4.414, 0.793, 2.426
    assert grid.loc[2, 3] == pytest.approx(1 / (1 + a / (b + 2) * ((alpha + 4) / (alpha + 2)) ** (r + 3)))


def test_value_table_leaves_out_buyers_whose_repeat_purchases_were_free():
    from crm_lib import loyalty

    tx, _ = loyalty.simulate_loyalty_log(200, seed=3, observation_days=365)
    tx = tx[["customer_id", "date", "amount"]]
    last = tx["date"].max()
    free = pd.DataFrame({"customer_id": ["free"] * 3, "amount": [20.0, 0.0, 0.0],
                         "date": [last - pd.Timedelta(days=d) for d in (200, 100, 10)]})
    # default model: BG/NBD
    table = clv.predict_customer_value(pd.concat([tx, free], ignore_index=True), time_unit="W", observation_end=last)
    assert "free" in table.index and np.isfinite(table.loc["free", "clv"])


# --- sBG, contracts ----------------------------------------------------------------------------


def test_sbg_derl_default_is_a_customer_who_has_just_paid_the_first_time():
    model = ShiftedBetaGeometricFitter()
    alpha, beta, d = 0.668, 3.806, 0.1
    model.params_ = pd.Series({"alpha": alpha, "beta": beta})
    # Fader & Hardie (2010) eq. 6, valued just before the renewal decision, with n = 1 (no renewal yet):
    # B(alpha, beta + 1) / B(alpha, beta) 2F1(1, beta + 1; alpha + beta + 1; 1 / (1 + d)), which is the
    # sum over renewals t = 1, 2, ... of S(t) / (1 + d)^(t - 1), S(t) = B(alpha, beta + t) / B(alpha, beta).
    from scipy.special import betaln, hyp2f1
    t = np.arange(1, 4000)
    brute = np.sum(np.exp(betaln(alpha, beta + t) - betaln(alpha, beta)) / (1 + d) ** (t - 1))
    closed = beta / (alpha + beta) * hyp2f1(1, beta + 1, alpha + beta + 1, 1 / (1 + d))
    assert brute == pytest.approx(closed, rel=1e-9)
    assert model.discounted_expected_residual_lifetime(d) == pytest.approx(brute, rel=1e-6)


def test_unknown_contract_period_lists_the_supported_ones():
    from crm_lib.exceptions import ParamsError
    from crm_lib.retention import survivors_from_contracts

    contracts = pd.DataFrame({"start_date": pd.to_datetime(["2020-01-01"]), "cancel_date": [pd.NaT]})
    with pytest.raises(ParamsError, match=r"period='W' is not supported; use one of Y, Q, M\."):
        survivors_from_contracts(contracts, period="W")


# --- lapse backtest ----------------------------------------------------------------------------


def test_backtest_follows_only_customers_whose_churn_can_show_before_the_cut():
    from crm_lib.survival import lapse_backtest

    days = {"a": [0, 10, 100], "b": [5, 200], "c": [20], "late": [75, 76]}  # cut at day 90, lapse 30
    tx = pd.DataFrame([(c, pd.Timestamp("2020-01-01") + pd.Timedelta(days=d), 1.0) for c, ds in days.items() for d in ds],
                      columns=["customer_id", "date", "amount"])
    backtest = lapse_backtest(tx, truncate_at="2020-03-31", lapse_days=30, horizons_days=(5,))
    # "late" was acquired 15 days before the cut: no churn of it can show there (needs > 30 silent days).
    assert backtest.customers == 3


def test_backtest_sentence_says_when_the_truth_is_outside_the_interval():
    from crm_lib.survival import LapseBacktest

    table = pd.DataFrame({"estimate": [0.5], "lower": [0.4], "upper": [0.6], "truth": [0.3],
                          "difference": [0.2], "covered": [False]},
                         index=pd.MultiIndex.from_tuples([(90.0, "recognisable")], names=["horizon_days", "censoring"]))
    backtest = LapseBacktest(table=table, lapse_days=30, truncate_at=pd.Timestamp("2020-03-31"),
                             observation_end=pd.Timestamp("2020-06-30"), customers=10, alpha=0.05)
    assert "30.0% for the same customers, outside the interval" in backtest.sentence()
    assert "retention is 50.0% (95% interval 40.0% to 60.0%)" in backtest.sentence()


def test_value_table_without_spend_names_the_table_the_column_and_the_fix():
    from crm_lib.exceptions import DataValidationError

    summary = pd.DataFrame({"frequency": [1.0], "recency": [2.0], "T": [5.0]})
    with pytest.raises(DataValidationError, match=r"customer table.*monetary_value.*rfm_summary"):
        clv.customer_value_table(summary, clv.BetaGeoFit(), None)


def test_cox_on_a_table_without_churn_columns_points_to_the_churn_table():
    from crm_lib.exceptions import ParamsError

    with pytest.raises(ParamsError, match=r"time to churn: column\(s\) \['churned'\] not found.*the churn table"):
        cox_proportional_hazards(pd.DataFrame({"duration_days": [1.0, 2.0], "first_order_amount": [1.0, 2.0]}),
                                 covariates=["first_order_amount"])


def test_grouped_kaplan_meier_curves_are_numbered_from_zero():
    churn = pd.DataFrame({"duration_days": [1.0, 2, 3, 4, 5, 6], "churned": [True, False, True, True, True, False],
                          "segment": ["x", "x", "x", "y", "y", "y"]})
    curves = kaplan_meier(churn, group_col="segment", min_group_size=2).curves
    assert list(curves.index) == list(range(len(curves))) and set(curves["group"]) == {"x", "y"}


def test_parameter_draw_copy_keeps_the_estimate_label():
    model = clv.BetaGeoFit()
    model.params_ = pd.Series({"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}, name="estimate")
    other = model.with_params([0.3, 5.0, 0.7, 2.0])
    assert other.params_.name == "estimate" and other.params_.to_dict() == {"r": 0.3, "alpha": 5.0, "a": 0.7, "b": 2.0}
    assert model.params_["r"] == 0.243  # the original is untouched


def test_gross_margin_above_one_is_refused():
    from crm_lib.exceptions import ParamsError

    summary = pd.DataFrame({"frequency": [1.0], "recency": [2.0], "T": [5.0], "monetary_value": [10.0]})
    with pytest.raises(ParamsError, match=r"gross_margin must be in \(0, 1\]; got 1.5"):
        clv.customer_lifetime_value(clv.BetaGeoFit(), None, summary, gross_margin=1.5)


def test_history_with_recency_but_no_repeat_purchase_is_named():
    from crm_lib.exceptions import DataValidationError

    with pytest.raises(DataValidationError, match="have recency > 0 with frequency 0"):
        clv.BetaGeoFit().fit([0.0, 1.0], [2.0, 3.0], [5.0, 5.0])


def test_time_to_churn_default_lapse_is_180_days():
    # b's last purchase is 181 days before the end: lapsed under "more than 180 silent days".
    tx = pd.DataFrame({"customer_id": ["a", "a", "b", "b"], "amount": 1.0,
                       "date": pd.to_datetime(["2020-10-01", "2020-12-01", "2020-06-01", "2020-07-03"])})
    end = pd.Timestamp("2020-12-31")
    assert (end - pd.Timestamp("2020-07-03")).days == 181
    churn = time_to_churn(tx, observation_end=end)
    pd.testing.assert_frame_equal(churn, time_to_churn(tx, observation_end=end, lapse_days=180))
    assert churn.loc["b", "churned"] and not churn.loc["a", "churned"]


def test_kaplan_meier_summary_states_the_interval_level():
    churn = pd.DataFrame({"duration_days": [1.0, 2, 3, 4, 5, 6], "churned": [True, False, True, True, True, False]})
    assert "Kaplan-Meier retention by all customers (90% intervals)" in kaplan_meier(churn, alpha=0.1).summary()


def test_history_with_recency_beyond_its_age_is_named():
    from crm_lib.exceptions import DataValidationError

    with pytest.raises(DataValidationError, match="have recency larger than T"):
        clv.BetaGeoFit().fit([1.0, 2.0], [5.5, 3.0], [5.0, 5.0])
