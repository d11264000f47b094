"""Kaplan-Meier and log-rank results as people read them, on curves made by hand (issue 16).

The survival files kept the most survivors of mutation sample seed 17 (6 of 23), mostly in what is
printed. Here the result objects get hand-made curves and numbers, and their tables, sentences
and look-ups are compared with text written out in the test. The Kaplan-Meier curve itself is
checked on a six-customer example computed by hand (product-limit estimate; Greenwood variance;
log(-log) band, Kalbfleisch & Prentice 2002, eq. 1.16). Public names only.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crm_lib.survival import KaplanMeierResult, LogRankResult, kaplan_meier

NAN, INF = float("nan"), float("inf")


def _result() -> KaplanMeierResult:
    curves = pd.DataFrame({
        "group": ["web"] * 3 + ["store"] * 2,
        "time": [10.0, 200.0, 400.0, 30.0, 100.0],
        "at_risk": [4, 3, 1, 2, 1], "events": [1, 1, 0, 1, 1],
        "survival": [0.75, 0.5, 0.5, 0.5, 0.0],
        "lower": [0.6, 0.3, 0.3, 0.2, 0.0], "upper": [0.9, 0.7, 0.7, 0.8, 0.0]})
    medians = pd.DataFrame(
        {"customers": [4, 2], "churned": [2, 2], "censored": [2, 0], "median_days": [NAN, 100.0],
         "median_lower": [150.0, NAN], "median_upper": [INF, NAN], "longest_follow_up_days": [400.0, 100.0]},
        index=pd.Index(["web", "store"], name="channel"))
    return KaplanMeierResult(curves=curves, medians=medians, group_col="channel", alpha=0.1,
                             notes=("1 group(s) of channel left out",))


def test_survival_at_before_between_and_beyond_the_data():
    km = _result()
    at = km.survival_at(5)
    assert at.index.name == "group" and list(at.index) == ["web", "store"]
    assert at.loc["web"].tolist() == [1.0, 1.0, 1.0]  # before the first event
    assert km.survival_at(150).loc["web"].tolist() == [0.75, 0.6, 0.9]  # step function: value at day 10
    assert km.survival_at(200).loc["web"].tolist() == [0.5, 0.3, 0.7]  # at an event time: after the drop
    beyond = km.survival_at(500)
    assert np.isnan(beyond.loc["web", "survival"])  # censored at 400: unknown after
    assert beyond.loc["store"].tolist() == [0.0, 0.0, 0.0]  # everybody churned by day 100


def test_median_after_a_day_is_the_first_time_below_half_of_the_curve_then():
    km = _result()
    after_0 = km.median_after(0)
    assert after_0.name == "median_after_0_days"
    # web never drops strictly below 0.5; store drops to 0 at day 100
    assert np.isnan(after_0["web"]) and after_0["store"] == 100.0
    after_10 = km.median_after(10)
    # web at day 10 is 0.75: below 0.375 never; store at day 10 is 1: below 0.5 at day 100
    assert after_10.name == "median_after_10_days"
    assert np.isnan(after_10["web"]) and after_10["store"] == 100.0
    assert np.isnan(km.median_after(100)["store"])  # nothing left to halve


def test_table_and_summary_write_out_medians_intervals_and_retention():
    km = _result()
    table = km.table(horizon_days=300)
    assert table.index.name == "channel"
    assert table.loc["web"].to_dict() == {
        "customers": "4", "churned": "2", "censored": "2", "median lifetime": "not reached",
        "median 90% interval": "150 days to beyond the data", "median of those who bought again": "not reached",
        "retention at 300 days": "50.0%", "retention 90% interval": "30.0% to 70.0%"}
    assert table.loc["store"].to_dict() == {
        "customers": "2", "churned": "2", "censored": "0", "median lifetime": "100 days",
        "median 90% interval": "n/a (the curve drops past 50% at once)",
        "median of those who bought again": "100 days",
        "retention at 300 days": "0.0%", "retention 90% interval": "0.0% to 0.0%"}
    later = km.table(horizon_days=1000).loc["web"]
    assert later["retention at 1,000 days"] == "not identified (curve ends at 400 days)"
    assert later["retention 90% interval"] == "n/a"
    assert km.summary() == (
        "Kaplan-Meier retention by channel (90% intervals)\n"
        "  web: 4 customers, 2 churned, median lifetime not reached [150 days, beyond the data]\n"
        "  store: 2 customers, 2 churned, median lifetime 100 days [not estimable, not estimable]\n"
        "  note: 1 group(s) of channel left out")
    assert km.groups == ["web", "store"]
    pd.testing.assert_frame_equal(km.to_frame(), km.medians)


def test_a_failed_result_says_why_in_each_view():
    failed = KaplanMeierResult.failed("every group is too small; merge groups", "channel")
    assert failed.summary() == "Kaplan-Meier not available: every group is too small; merge groups"
    assert failed.table().to_dict() == {"not available": {"reason": "every group is too small"}}
    assert failed.groups == []


def test_log_rank_verdict_in_words_either_side_of_alpha():
    common = dict(df=2, n=1234, groups=("a", "b", "c"), group_col="cohort", alpha=0.05)
    differs = LogRankResult(statistic=12.345, p_value=0.0004, notes=("group 'd' left out",), **common)
    assert differs.verdict == ("Retention differs between the 3 groups of cohort (log-rank χ² = 12.3 on 2 df, "
                               "p < 0.001, 1,234 customers): the curves are not all the same.")
    assert differs.summary() == differs.verdict + "\nnote: group 'd' left out"
    same = LogRankResult(statistic=1.0, p_value=0.05, **common)  # p = alpha is not below it
    assert same.verdict == ("There is no evidence that retention differs between the 3 groups of cohort "
                            "(log-rank χ² = 1.0 on 2 df, p = 0.050, 1,234 customers).")
    row = same.to_frame().iloc[0].to_dict()
    assert row == {"statistic": 1.0, "df": 2, "p_value": 0.05, "customers": 1234, "groups": "a, b, c",
                   "method": "log-rank test (statsmodels survdiff)"}
    failed = LogRankResult(NAN, 0, NAN, 0, (), "cohort", error="one group only")
    assert failed.verdict == "The log-rank test could not be run: one group only"


def test_kaplan_meier_curve_greenwood_band_and_counts_by_hand():
    # Times 2, 3+, 5, 5, 8+, 9 (+: censored). Product limit: S(2) = 5/6, S(5) = 5/6 * 2/4 = 5/12,
    # S(9) = 0. Greenwood: var S(t) = S(t)^2 sum d / (n (n - d)).
    churn = pd.DataFrame({"duration_days": [2.0, 3, 5, 5, 8, 9], "churned": [True, False, True, True, False, True]})
    km = kaplan_meier(churn, min_group_size=1)
    curve = km.curves.set_index("time")
    assert curve.loc[[2.0, 5.0, 9.0], "survival"].tolist() == pytest.approx([5 / 6, 5 / 12, 0.0])
    assert curve.loc[[2.0, 5.0, 9.0], "at_risk"].tolist() == [6, 4, 1]
    assert curve.loc[[2.0, 5.0, 9.0], "events"].tolist() == [1, 2, 1]
    s = np.array([5 / 6, 5 / 12])
    greenwood = np.cumsum([1 / (6 * 5), 2 / (4 * 2)])
    se = s * np.sqrt(greenwood)
    z = 1.959963984540054
    se_loglog = se / (s * np.abs(np.log(s)))
    lower = np.exp(-np.exp(np.log(-np.log(s)) + z * se_loglog))
    upper = np.exp(-np.exp(np.log(-np.log(s)) - z * se_loglog))
    np.testing.assert_allclose(curve.loc[[2.0, 5.0], "lower"], lower, rtol=1e-6)
    np.testing.assert_allclose(curve.loc[[2.0, 5.0], "upper"], upper, rtol=1e-6)
    # S = 0 at day 9: the band collapses to the curve
    assert curve.loc[9.0, ["lower", "upper"]].tolist() == [0.0, 0.0]
    medians = km.medians.loc["all"]
    assert (medians["customers"], medians["churned"], medians["censored"]) == (6, 4, 2)
    assert medians["median_days"] == 5.0 and medians["longest_follow_up_days"] == 9.0


# --- Cox results as read -----------------------------------------------------------------------------

def _cox(ph_p=(0.2, 0.5), rho=(0.05, -0.3)) -> "CoxResult":
    from crm_lib.survival import CoxResult

    hazard = pd.DataFrame(
        {"meaning": ["per doubling of the first order", "web vs store"], "coef": [np.log(0.8), np.log(1.5)],
         "hazard_ratio": [0.8, 1.5], "lower": [0.7, 0.9], "upper": [0.9, 2.5], "p_value": [0.0004, 0.1234]},
        index=["first_order_amount", "channel[web]"])
    ph = pd.DataFrame({"rho": [rho[0], rho[1], NAN], "chi2": [1.5, 0.25, 1.75], "df": [1, 1, 2],
                       "p_value": [ph_p[0], ph_p[1], 0.4169]}, index=["first_order_amount", "channel[web]", "GLOBAL"])
    return CoxResult(hazard_ratios=hazard, ph_test=ph, scaled_schoenfeld=pd.DataFrame(), n=1234, events=567,
                     covariates=("first_order_amount", "channel"), alpha=0.05, notes=("channel 'app' left out",))


def test_cox_table_verdict_and_summary_in_words():
    cox = _cox()
    assert cox.table().to_dict(orient="index") == {
        "first_order_amount": {"meaning": "per doubling of the first order", "hazard ratio": "0.800",
                               "95% interval": "0.700 to 0.900", "p-value": "<0.001", "churn hazard": "lower"},
        "channel[web]": {"meaning": "web vs store", "hazard ratio": "1.500", "95% interval": "0.900 to 2.500",
                         "p-value": "0.123", "churn hazard": "no clear difference"}}
    assert cox.verdict == (
        "1 of 2 terms change the churn hazard (95% interval excludes 1). The largest: first_order_amount "
        "(per doubling of the first order) has a hazard ratio of 0.80 [0.70, 0.90], a 20% lower churn hazard.")
    assert cox.ph_verdict == (
        "No evidence against proportional hazards (global test χ² = 1.8 on 2 df, p = 0.417; smallest per-term "
        "p = 0.200): the hazard ratios can be read as constant over time.")
    lines = cox.summary().splitlines()
    assert lines[0] == "Cox proportional hazards (Newton on risk-set sums per churn day, Efron ties): 1,234 customers, 567 churned"
    assert lines[1] == "  first_order_amount             HR 0.800 [0.700, 0.900] p <0.001"
    assert lines[2] == "  channel[web]                   HR 1.500 [0.900, 2.500] p 0.123"
    assert lines[3] == cox.ph_verdict and lines[4] == "note: channel 'app' left out"
    pd.testing.assert_frame_equal(cox.to_frame(), cox.hazard_ratios)


def test_cox_ph_verdict_names_the_terms_that_drift_and_says_when_the_drift_is_small():
    large = _cox(ph_p=(0.2, 0.01), rho=(0.05, -0.3))
    assert large.ph_verdict == (
        "Proportional hazards is doubtful for channel[web] (ρ = -0.30, p = 0.010) (global test χ² = 1.8 on 2 df, "
        "p = 0.417): their effect changes with time since acquisition, so read those hazard ratios as averages "
        "over the observed lifetimes.")
    small = _cox(ph_p=(0.0001, 0.5), rho=(0.05, -0.3))
    assert small.ph_verdict.endswith(
        "over the observed lifetimes. The drift is small (|ρ| ≤ 0.05) and detectable mainly because of the 567 "
        "churn events, so the hazard ratios remain fair averages.")
    assert "first_order_amount (ρ = +0.05, p < 0.001)" in small.ph_verdict


def test_cox_without_a_clear_effect_and_a_failed_cox_say_so():
    from crm_lib.survival import CoxResult

    cox = _cox()
    flat = CoxResult(cox.hazard_ratios.assign(lower=0.5, upper=2.0), cox.ph_test, pd.DataFrame(), 1234, 567,
                     cox.covariates, alpha=0.1)
    assert flat.verdict == "No covariate changes the churn hazard clearly (90% intervals all include 1; 1,234 customers)."
    assert list(flat.table().columns)[2] == "90% interval"
    failed = CoxResult.failed("no churn event among 12 customers (all censored); lower lapse_days", ["channel"])
    assert failed.verdict == "The Cox model could not be fitted: no churn event among 12 customers (all censored); lower lapse_days"
    assert failed.summary() == failed.verdict
    assert failed.ph_verdict.startswith("The proportional-hazards check could not be run: no churn event")
    assert failed.table().to_dict() == {"not available": {"reason": "no churn event among 12 customers (all censored)"}}


def test_cox_on_a_sample_states_the_sample_and_its_cost():
    from crm_lib.survival import cox_proportional_hazards

    rng = np.random.default_rng(12)
    n = 1500
    amount = rng.lognormal(3, 0.8, n)
    time = rng.exponential(100, n)
    churn = pd.DataFrame({"duration_days": np.round(np.minimum(time, 300), 2), "churned": time <= 300,
                          "first_order_amount": amount})
    cox = cox_proportional_hazards(churn, covariates=["first_order_amount"], max_customers=1000, seed=4)
    assert (cox.n, cox.sampled_from) == (1000, 1500)
    # widening sqrt(1500 / 1000) = 1.22; sampling error sqrt(1 - 1000 / 1500) = 0.58 standard errors
    assert cox.sample_note == (
        "The Cox model and its check were fitted on a simple random sample of 1,000 of the 1,500 customers "
        "(seed 4), to keep the fit to seconds: the hazard ratios, intervals and p-values are the sample's. The "
        "intervals keep their stated coverage but are about 1.2 times wider than a fit on every customer would "
        "give, and each log hazard ratio differs from the every-customer fit by a sampling error of about 0.58 "
        "times its standard error.")
    assert cox.notes[-1] == cox.sample_note
    whole = cox_proportional_hazards(churn, covariates=["first_order_amount"], max_customers=None)
    assert (whole.n, whole.sampled_from, whole.sample_note) == (1500, 0, "")
    from crm_lib.exceptions import ParamsError

    with pytest.raises(ParamsError, match=r"max_customers=999 is too small for a Cox fit; use at least 1,000 or None"):
        cox_proportional_hazards(churn, covariates=["first_order_amount"], max_customers=999)


# --- the lapse rule against P(alive), and where a curve stops ------------------------------------------


def test_lapse_vs_p_alive_counts_and_sums_by_hand():
    from crm_lib.exceptions import DataValidationError
    from crm_lib.survival import lapse_vs_p_alive

    churn = pd.DataFrame({"days_since_last_purchase": [10.0, 40.0, 31.0, 30.0, 5.0]},
                         index=pd.Index(["a", "b", "c", "d", "z"], name="customer_id"))
    p_alive = pd.Series({"a": 0.9, "b": 0.2, "c": 0.4, "d": 0.5, "y": 0.7})  # z and y have no partner
    table = lapse_vs_p_alive(churn, p_alive, lapse_days=30)
    assert table.index.name == "lapse rule (30 days)"
    # lapsed: more than 30 days silent -> b, c; not lapsed: a, d (30 days is not more than 30)
    assert table.loc["lapsed"].to_dict() == pytest.approx(
        {"customers": 2, "mean_p_alive": 0.3, "expected_churned_by_model": 1.4, "churned_by_rule": 2})
    assert table.loc["not lapsed"].to_dict() == pytest.approx(
        {"customers": 2, "mean_p_alive": 0.7, "expected_churned_by_model": 0.6, "churned_by_rule": 0})
    assert table.loc["all"].to_dict() == pytest.approx(
        {"customers": 4, "mean_p_alive": 0.5, "expected_churned_by_model": 2.0, "churned_by_rule": 2})
    assert lapse_vs_p_alive(churn, None, lapse_days=30) is None
    with pytest.raises(DataValidationError, match=r"^p_alive has 2 of 5 values outside \[0, 1\] \(e\.g\. customer "
                                                  r"'b': 1\.2\); pass probabilities\.$"):
        lapse_vs_p_alive(churn, p_alive.replace({0.2: 1.2, 0.7: -0.1}), lapse_days=30)
    with pytest.raises(DataValidationError, match=r"^p_alive has 2 columns \['p', 'q'\]; pass one column of P\(alive\)\.$"):
        lapse_vs_p_alive(churn, pd.DataFrame({"p": p_alive, "q": p_alive}), lapse_days=30)
    with pytest.raises(DataValidationError, match=r"^p_alive and the churn table have no customer id in common \(e\.g\. "
                                                  r"'a' vs 'q1'\); compute both from the same log\.$"):
        lapse_vs_p_alive(churn, pd.Series({"q1": 0.5}), lapse_days=30)


def test_curve_cut_note_says_where_the_curve_stops_and_what_that_means():
    from crm_lib.survival import curve_cut_note

    km = _result()  # web ends at day 400, store at day 100
    assert curve_cut_note(km, lapse_days=90) == (
        "The curve ends at between 100 and 400 days depending on the group after the first purchase: a churn is "
        "recognised only after more than 90 days of silence, so even the earliest customers could not yet show a "
        "churn later than that.")
    with_horizon = curve_cut_note(km, lapse_days=90, horizon_days=365)
    # at day 100: web 0.75 (first group), store 0
    assert with_horizon.endswith(" Retention at 365 days is therefore not identified by these data; at 100 days it "
                                 "is 75.0% (first group).")
    one = KaplanMeierResult(curves=_result().curves.query("group == 'web'"), medians=_result().medians.iloc[:1],
                            group_col=None)
    assert curve_cut_note(one, lapse_days=30, horizon_days=500).startswith("The curve ends at 400 days after")
    assert curve_cut_note(one, lapse_days=30, horizon_days=500).endswith(
        " Retention at 500 days is therefore not identified by these data; at 400 days it is 50.0%.")
    # a horizon inside the curve needs no warning
    assert curve_cut_note(one, lapse_days=30, horizon_days=365) == curve_cut_note(one, lapse_days=30)
    assert curve_cut_note(KaplanMeierResult.failed("no data"), lapse_days=30) == ""


# --- the lapse backtest in words -------------------------------------------------------------------------


def _backtest():
    from crm_lib.survival import LapseBacktest

    index = pd.MultiIndex.from_tuples([(90, "recognisable"), (180, "recognisable"), (365, "recognisable"),
                                       (730, "recognisable"), (180, "last_purchase")], names=["horizon_days", "censoring"])
    table = pd.DataFrame({"estimate": [0.8, 0.6, NAN, NAN, 0.7], "lower": [0.75, 0.5, NAN, NAN, 0.65],
                          "upper": [0.85, 0.7, NAN, NAN, 0.75], "truth": [0.78, 0.72, 0.5, NAN, 0.72],
                          "difference": [0.02, -0.12, NAN, NAN, -0.02], "covered": [True, False, False, False, True]},
                         index=index)
    return LapseBacktest(table=table, lapse_days=90, truncate_at=pd.Timestamp("2020-06-30"),
                         observation_end=pd.Timestamp("2020-12-31"), customers=1234, alpha=0.1)


def test_lapse_backtest_sentence_and_table():
    backtest = _backtest()
    # the longest horizon both windows identify is 180 days; 365 is identified only in the full
    # window (listed), 730 in neither (not listed)
    assert backtest.sentence() == (
        "Estimated on the data up to 2020-06-30 (1,234 customers, lapse 90 days), the 180-day retention is 60.0% "
        "(90% interval 50.0% to 70.0%); the window to 2020-12-31 shows 72.0% for the same customers, outside the "
        "interval. Censoring at the last purchase (the older rule) would have given 70.0%. At 365 days the "
        "shortened window identifies nothing (no churn that late could show in it yet), where the older rule "
        "printed a flat tail.")
    shown = backtest.people_table()
    assert shown.index.names == ["retention at (days)", "censoring"]
    assert shown.loc[(90, "recognisable")].tolist() == ["80.0% (75.0% to 85.0%)", "78.0%", "yes"]
    assert shown.loc[(365, "recognisable")].tolist() == ["not identified", "50.0%", ""]
    assert shown.loc[(730, "recognisable")].tolist() == ["not identified", "not identified", ""]
    assert list(shown.columns) == ["estimate to 2020-06-30 (90% interval)", "full window to 2020-12-31",
                                   "truth inside the interval"]
