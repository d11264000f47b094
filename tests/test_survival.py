"""Time to churn, Kaplan-Meier, log-rank and Cox (crm_lib.survival)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats

from crm_lib.exceptions import DataValidationError, ModelFitError, ParamsError
from crm_lib.survival import (
    cox_design,
    curve_cut_note,
    cox_proportional_hazards,
    format_days,
    kaplan_meier,
    lapse_sensitivity,
    lapse_vs_p_alive,
    log_rank_test,
    time_to_churn,
    value_band_labels,
)

# ---------------------------------------------------------------------------------------
# A hand-made log (lapse_days = 30, observation end 2020-03-31)
# ---------------------------------------------------------------------------------------


@pytest.fixture
def hand_log() -> pd.DataFrame:
    rows = [
        # a: gaps of 10 and 9 days, then 71 days to the end (> 30): churned at 01-20.
        ("a", "2020-01-01", 10.0, 1), ("a", "2020-01-01", 5.0, 2), ("a", "2020-01-11", 7.0, 1),
        ("a", "2020-01-20", 3.0, 1),
        # b: one purchase, 90 days to the end: churned at day 0.
        ("b", "2020-01-01", 40.0, 4),
        # c: a 60-day gap, then a purchase 30 days before the end (not > 30): churned at
        # day 0 in the first spell, reactivated, not lapsed at the end.
        ("c", "2020-01-01", 20.0, 1), ("c", "2020-03-01", 20.0, 1),
        # d: gaps of 27 and 47 days: churned at 02-01 (day 27), reactivated on 03-20.
        ("d", "2020-01-05", 15.0, 1), ("d", "2020-02-01", 15.0, 1), ("d", "2020-03-20", 15.0, 1),
        # e: 15-day gap, last purchase 6 days before the end: censored.
        ("e", "2020-03-10", 25.0, 2), ("e", "2020-03-25", 5.0, 1),
        # after the observation end: ignored.
        ("e", "2020-04-15", 99.0, 9),
    ]
    frame = pd.DataFrame(rows, columns=["customer_id", "date", "amount", "quantity"])
    frame["date"] = pd.to_datetime(frame["date"])
    return frame


def test_time_to_churn_on_hand_log(hand_log):
    churn = time_to_churn(hand_log, lapse_days=30, observation_end="2020-03-31")
    assert list(churn.index) == ["a", "b", "c", "d", "e"]
    # e was acquired on 03-10, after 02-29 (the last day a churn could still show by 03-31
    # with a 30-day lapse): no follow-up time. The older rule censored it at its last purchase.
    np.testing.assert_array_equal(churn["duration_days"], [19.0, 0.0, 0.0, 27.0, np.nan])
    old_rule = time_to_churn(hand_log, lapse_days=30, observation_end="2020-03-31", censoring="last_purchase")
    assert old_rule["duration_days"].tolist() == [19.0, 0.0, 0.0, 27.0, 15.0]
    assert churn["churned"].tolist() == [True, True, True, True, False]
    assert churn["reactivated"].tolist() == [False, False, True, True, False]
    assert churn["purchases"].tolist() == [3, 1, 1, 2, 2]
    assert churn["days_since_last_purchase"].tolist() == [71.0, 90.0, 30.0, 11.0, 6.0]
    # The first order is the first day's orders summed (a: 10 + 5, 2 + 1 items).
    assert churn["first_order_amount"].tolist() == [15.0, 40.0, 20.0, 15.0, 25.0]
    assert churn["first_order_quantity"].tolist() == [3.0, 4.0, 1.0, 1.0, 2.0]
    assert churn["cohort"].tolist() == ["2020-01"] * 4 + ["2020-03"]
    assert churn.loc["d", "last_purchase"] == pd.Timestamp("2020-02-01")


def test_lapse_recognised_event_time(hand_log):
    churn = time_to_churn(hand_log, lapse_days=30, observation_end="2020-03-31", event_time="lapse_recognised")
    # Churned: last purchase of the spell + 30 days; e has no follow-up (acquired too late).
    np.testing.assert_array_equal(churn["duration_days"], [49.0, 30.0, 30.0, 57.0, np.nan])
    old_rule = time_to_churn(hand_log, lapse_days=30, observation_end="2020-03-31", event_time="lapse_recognised",
                             censoring="last_purchase")
    # The older rule: censored e at observation end - first purchase.
    assert old_rule["duration_days"].tolist() == [49.0, 30.0, 30.0, 57.0, 21.0]


def test_censoring_at_the_last_recognisable_day():
    # f buys on 01-10, 02-05, 03-01 and 03-20 (gaps 26, 25, 19 days; 11 days silent at 03-31):
    # not lapsed with N = 30. A churn shows only after more than 30 silent days, so by 03-31
    # the last purchase day whose churn could be seen is 02-29: f is censored there, 50 days
    # after its first purchase (the older rule: at its last purchase, day 70).
    tx = pd.DataFrame({"customer_id": "f", "date": pd.to_datetime(["2020-01-10", "2020-02-05", "2020-03-01",
                                                                    "2020-03-20"]), "amount": 1.0})
    churn = time_to_churn(tx, lapse_days=30, observation_end="2020-03-31")
    assert churn.loc["f", "duration_days"] == 50.0 and not churn.loc["f", "churned"]
    assert time_to_churn(tx, lapse_days=30, observation_end="2020-03-31",
                         censoring="last_purchase").loc["f", "duration_days"] == 70.0
    recognised = time_to_churn(tx, lapse_days=30, observation_end="2020-03-31", event_time="lapse_recognised")
    assert recognised.loc["f", "duration_days"] == 80.0
    with pytest.raises(ParamsError, match="censoring='end' is not supported; use one of recognisable, last_purchase"):
        time_to_churn(tx, censoring="end")
    # Nobody followed: the estimators say why.
    late = time_to_churn(tx.iloc[3:], lapse_days=30, observation_end="2020-03-31")
    with pytest.raises(DataValidationError, match=r"no customer can show a churn yet: all 1 were acquired within "
                                                  r"the last 30 days"):
        kaplan_meier(late)


def test_lapse_is_strictly_more_than_n_days(hand_log):
    # With lapse_days = 71, customer a's 71 days to the end are not a lapse: censored.
    churn = time_to_churn(hand_log, lapse_days=71, observation_end="2020-03-31")
    assert not churn.loc["a", "churned"]
    assert churn.loc["b", "churned"]  # 90 > 71


def test_time_to_churn_bad_parameters(hand_log):
    with pytest.raises(ParamsError, match="lapse_days=-5 must be a positive number"):
        time_to_churn(hand_log, lapse_days=-5)
    with pytest.raises(ParamsError, match="event_time='end' is not supported; use one of last_purchase"):
        time_to_churn(hand_log, event_time="end")
    with pytest.raises(DataValidationError, match=r"no purchase on or before observation_end \(2019-01-01\).*2020-01-01"):
        time_to_churn(hand_log, observation_end="2019-01-01")
    with pytest.raises(DataValidationError, match="column 'amount' not found"):
        time_to_churn(hand_log.drop(columns="amount"))


def test_value_bands_are_equal_count_and_labelled():
    amounts = pd.Series(np.arange(1.0, 10.0), index=list("abcdefghi"))
    bands = value_band_labels(amounts, bands=3)
    assert bands.tolist() == ["1 (1-3)"] * 3 + ["2 (4-6)"] * 3 + ["3 (7-9)"] * 3


# ---------------------------------------------------------------------------------------
# Kaplan-Meier against a hand computation
# ---------------------------------------------------------------------------------------


def test_kaplan_meier_matches_hand_computation():
    # Durations 2, 3+, 4, 4, 5+, 7, 8+, 9 (+ = censored). Product-limit estimate:
    #   t=2: 8 at risk, 1 event  -> S = 7/8                 = 0.875
    #   t=4: 6 at risk, 2 events -> S = 0.875 * 4/6         = 0.583333
    #   t=7: 3 at risk, 1 event  -> S = 0.583333 * 2/3      = 0.388889
    #   t=9: 1 at risk, 1 event  -> S = 0
    # Median: first time S < 0.5 -> 7 days.
    # Greenwood at t=4: Var = S^2 (1/(8*7) + 2/(6*4)) = 0.340278 * 0.101190 = 0.034433, se = 0.185561.
    # log(-log) band: c = log(-log 0.583333) = -0.618046, se_c = 0.185561 / (0.583333 * 0.538997) = 0.590177,
    #   lower = exp(-exp(c + 1.959964 se_c)) = 0.180189, upper = exp(-exp(c - 1.959964 se_c)) = 0.844069.
    churn = pd.DataFrame(
        {"duration_days": [2.0, 3, 4, 4, 5, 7, 8, 9], "churned": [True, False, True, True, False, True, False, True]}
    )
    km = kaplan_meier(churn)
    curve = km.curves
    assert curve["time"].tolist() == [2.0, 4.0, 7.0, 9.0]
    assert curve["at_risk"].tolist() == [8, 6, 3, 1]
    assert curve["events"].tolist() == [1, 2, 1, 1]
    np.testing.assert_allclose(curve["survival"], [0.875, 0.583333, 0.388889, 0.0], atol=1e-6)
    row = curve.iloc[1]
    assert row["lower"] == pytest.approx(0.180189, abs=1e-5)
    assert row["upper"] == pytest.approx(0.844069, abs=1e-5)
    assert km.medians.loc["all", "median_days"] == 7.0
    assert km.medians.loc["all", ["customers", "churned", "censored"]].tolist() == [8, 5, 3]
    at = km.survival_at(5)
    assert at.loc["all", "survival"] == pytest.approx(0.583333, abs=1e-6)
    assert km.survival_at(1).loc["all", "survival"] == 1.0
    assert km.survival_at(20).loc["all", "survival"] == 0.0  # everybody churned by day 9
    assert "median lifetime 7 days" in km.summary()


def test_kaplan_meier_curve_runs_to_longest_censored_follow_up():
    churn = pd.DataFrame({"duration_days": [1.0, 2, 10], "churned": [True, True, False]})
    km = kaplan_meier(churn)
    assert km.curves["time"].tolist() == [1.0, 2.0, 10.0]
    assert km.curves["survival"].iloc[-1] == pytest.approx(1 / 3)
    assert np.isnan(km.survival_at(11).loc["all", "survival"])  # beyond the data: unknown
    assert km.medians.loc["all", "median_days"] == 2.0  # S(2) = 1/3 < 0.5


def test_kaplan_meier_by_group_and_small_groups():
    rng = np.random.default_rng(7)
    churn = pd.DataFrame(
        {
            "duration_days": rng.exponential(100, 130),
            "churned": rng.random(130) < 0.8,
            "channel": ["web"] * 60 + ["store"] * 60 + ["phone"] * 10,
        }
    )
    km = kaplan_meier(churn, group_col="channel", min_group_size=20)
    assert km.groups == ["store", "web"]
    assert km.medians["customers"].tolist() == [60, 60]
    assert km.notes == (
        "1 group(s) of channel left out, fewer than 20 customers: 'phone' (10 customers); "
        "merge small groups or lower min_group_size in params.",
    )
    with pytest.raises(DataValidationError, match=r"every group has fewer than 100 customers \(largest: 'store' with 60\)"):
        kaplan_meier(churn, group_col="channel", min_group_size=100)


def test_unknown_grouping_column_names_the_columns():
    churn = pd.DataFrame({"duration_days": [1.0, 2], "churned": [True, False], "cohort": ["x", "y"]})
    with pytest.raises(ParamsError, match=r"column\(s\) \['segment'\] not found; the table has \['duration_days', "
                                          r"'churned', 'cohort'\]. Set group_col in params"):
        kaplan_meier(churn, group_col="segment")
    failed = kaplan_meier(churn, group_col="segment", errors="report")
    assert failed.error.startswith("grouping column: column(s) ['segment'] not found")
    assert failed.summary().startswith("Kaplan-Meier not available: ")
    with pytest.raises(ParamsError, match="errors='ignore' is not supported"):
        kaplan_meier(churn, errors="ignore")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    durations=st.lists(st.integers(min_value=0, max_value=400), min_size=1, max_size=60),
    flags=st.lists(st.booleans(), min_size=60, max_size=60),
)
def test_kaplan_meier_curve_is_a_non_increasing_probability(durations, flags):
    churn = pd.DataFrame({"duration_days": np.asarray(durations, float), "churned": flags[: len(durations)]})
    curve = kaplan_meier(churn).curves
    s = curve["survival"].to_numpy()
    assert np.all((s >= 0) & (s <= 1))
    assert np.all(np.diff(s) <= 1e-12)
    assert np.all(curve["lower"] <= s + 1e-12) and np.all(s <= curve["upper"] + 1e-12)
    assert curve["events"].sum() == int(np.sum(flags[: len(durations)]))


# ---------------------------------------------------------------------------------------
# Properties of the churn definition on random logs
# ---------------------------------------------------------------------------------------


@st.composite
def transaction_logs(draw):
    n = draw(st.integers(min_value=1, max_value=40))
    customers = draw(st.lists(st.sampled_from(list("abcdefgh")), min_size=n, max_size=n))
    days = draw(st.lists(st.integers(min_value=0, max_value=500), min_size=n, max_size=n))
    return pd.DataFrame(
        {
            "customer_id": customers,
            "date": pd.Timestamp("2020-01-01") + pd.to_timedelta(days, unit="D"),
            "amount": np.ones(n),
        }
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tx=transaction_logs(), lapse_days=st.integers(min_value=1, max_value=200))
def test_churn_definition_invariants(tx, lapse_days):
    end = pd.Timestamp("2021-06-01")
    churn = time_to_churn(tx, lapse_days=lapse_days, observation_end=end)
    age = (end - churn["first_purchase"]).dt.days
    # Followed up to the last day a churn could show: end - lapse_days - 1.
    horizon = age - lapse_days - 1
    assert (churn["duration_days"].isna() == (horizon < 0)).all()
    followed = churn[horizon >= 0]
    assert (followed["duration_days"] >= 0).all()
    # Every churn seen happened by the censoring day; the censored are censored exactly there.
    assert (followed["duration_days"] <= horizon[horizon >= 0]).all()
    censored_followed = followed[~followed["churned"]]
    assert (censored_followed["duration_days"] == horizon[censored_followed.index]).all()
    assert not churn.loc[horizon < 0, "churned"].any()
    # With event_time="lapse_recognised" every follow-up time moves by lapse_days, no more.
    shifted = time_to_churn(tx, lapse_days=lapse_days, observation_end=end, event_time="lapse_recognised")
    np.testing.assert_array_equal(shifted["duration_days"], churn["duration_days"] + lapse_days)
    churn = time_to_churn(tx, lapse_days=lapse_days, observation_end=end, censoring="last_purchase")
    assert (churn["duration_days"] >= 0).all()
    assert (churn["duration_days"] <= age).all()
    # Censored customers bought within the last lapse_days days and never lapsed.
    censored = ~churn["churned"]
    assert (churn.loc[censored, "days_since_last_purchase"] <= lapse_days).all()
    assert not churn.loc[censored, "reactivated"].any()
    # A churned customer who did not come back has been silent for more than lapse_days.
    gone = churn["churned"] & ~churn["reactivated"]
    assert (churn.loc[gone, "days_since_last_purchase"] > lapse_days).all()
    recognised = time_to_churn(tx, lapse_days=lapse_days, observation_end=end, event_time="lapse_recognised",
                               censoring="last_purchase")
    assert (recognised.loc[recognised["churned"], "duration_days"] >= lapse_days).all()
    assert (recognised["duration_days"] <= age + lapse_days).all()
    assert (recognised.loc[~recognised["churned"], "duration_days"] == age[~recognised["churned"]]).all()


# ---------------------------------------------------------------------------------------
# Log-rank
# ---------------------------------------------------------------------------------------


def _two_groups(rate_b: float, n: int = 300, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    time = np.r_[rng.exponential(100, n), rng.exponential(100 / rate_b, n)]
    censor = rng.uniform(0, 300, 2 * n)
    return pd.DataFrame(
        {"duration_days": np.minimum(time, censor), "churned": time <= censor, "band": ["low"] * n + ["high"] * n}
    )


def test_log_rank_agrees_with_scipy():
    churn = _two_groups(rate_b=1.3)
    result = log_rank_test(churn, group_col="band")
    low, high = churn[churn["band"] == "low"], churn[churn["band"] == "high"]
    reference = stats.logrank(
        stats.CensoredData.right_censored(low["duration_days"], ~low["churned"]),
        stats.CensoredData.right_censored(high["duration_days"], ~high["churned"]),
    )
    assert result.statistic == pytest.approx(reference.statistic**2, rel=1e-6)
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-6)
    assert result.df == 1 and result.n == 600


def test_log_rank_verdicts():
    different = log_rank_test(_two_groups(rate_b=2.0), group_col="band")
    assert different.p_value < 1e-6
    assert different.verdict.startswith("Retention differs between the 2 groups of band (log-rank χ² = ")
    assert "p < 0.001, 600 customers" in different.verdict
    # Same lifetime distribution in both groups (seed fixed; under the null p is uniform).
    same = log_rank_test(_two_groups(rate_b=1.0, seed=6), group_col="band")
    assert same.p_value > 0.05
    assert same.verdict.startswith("There is no evidence that retention differs between the 2 groups of band")


def test_log_rank_needs_two_groups_large_enough():
    churn = _two_groups(rate_b=1.0, n=30)
    churn.loc[churn.index[:25], "band"] = "tiny"  # groups: high 30, tiny 25, low 5
    with pytest.raises(DataValidationError, match=r"has 1 group with at least 26 customers \('high', 30 customers\)"):
        log_rank_test(churn, group_col="band", min_group_size=26)
    failed = log_rank_test(churn, group_col="band", min_group_size=26, errors="report")
    assert failed.verdict.startswith("The log-rank test could not be run: grouping column 'band' has 1 group")
    assert "'low' (5 customers)" in failed.verdict


# ---------------------------------------------------------------------------------------
# Cox
# ---------------------------------------------------------------------------------------


def _simulated_cox(n=3000, beta_amount=-0.3, beta_web=0.5, seed=11, time_varying=False):
    """Exponential lifetimes with hazard exp(b1 log2(1 + amount) + b2 [channel = web])."""
    rng = np.random.default_rng(seed)
    amount = rng.lognormal(3, 0.8, n)
    web = rng.random(n) < 0.4
    lp = beta_amount * np.log2(1 + amount) + beta_web * web
    if time_varying:
        # The web effect flips sign after 100 days: piecewise-exponential hazard.
        t1 = rng.exponential(100 * np.exp(-lp))
        late = t1 > 100
        lp_late = beta_amount * np.log2(1 + amount) - beta_web * web
        time = np.where(late, 100 + rng.exponential(100 * np.exp(-lp_late)), t1)
    else:
        time = rng.exponential(100 * np.exp(-lp))
    censor = rng.uniform(0, 600, n)
    return pd.DataFrame(
        {
            "duration_days": np.round(np.minimum(time, censor), 3),
            "churned": time <= censor,
            "first_order_amount": amount,
            "channel": np.where(web, "web", "store"),
        }
    )


def test_cox_recovers_simulated_hazard_ratios():
    churn = _simulated_cox()
    cox = cox_proportional_hazards(churn, covariates=["first_order_amount", "channel"])
    hr = cox.hazard_ratios
    assert list(hr.index) == ["first_order_amount", "channel[web]"]
    assert hr.loc["first_order_amount", "meaning"] == "per doubling of (1 + first-day spend)"
    assert hr.loc["channel[web]", "meaning"] == "channel web vs store"
    assert hr.loc["first_order_amount", "coef"] == pytest.approx(-0.3, abs=3 * hr.loc["first_order_amount", "se"])
    assert hr.loc["channel[web]", "coef"] == pytest.approx(0.5, abs=3 * hr.loc["channel[web]", "se"])
    assert hr.loc["channel[web]", "lower"] < np.exp(0.5) < hr.loc["channel[web]", "upper"]
    # The SEs used above are checked against an independent partial likelihood and against the
    # spread over simulated seeds in tests/test_strength_survival.py.
    assert cox.events == int(churn["churned"].sum()) and cox.n == 3000
    assert "channel[web] (channel web vs store) has a hazard ratio of 1.6" in cox.verdict
    # Proportional hazards hold by construction: no term flagged.
    assert cox.ph_test.loc["GLOBAL", "p_value"] > 0.01
    assert cox.ph_verdict.startswith("No evidence against proportional hazards (global test χ² = ")


def test_cox_ph_check_flags_a_time_varying_effect():
    churn = _simulated_cox(time_varying=True, beta_web=0.8)
    cox = cox_proportional_hazards(churn, covariates=["first_order_amount", "channel"])
    assert cox.ph_test.loc["channel[web]", "p_value"] < 1e-6
    assert cox.ph_test.loc["channel[web]", "rho"] < 0  # the web effect falls over time
    assert cox.ph_test.loc["first_order_amount", "p_value"] > 0.01
    assert cox.ph_verdict.startswith("Proportional hazards is doubtful for channel[web] (ρ = -")
    assert "first_order_amount (" not in cox.ph_verdict
    assert len(cox.scaled_schoenfeld) == cox.events


def test_cox_constant_covariate_is_a_clear_error():
    churn = _simulated_cox(n=200).assign(channel="web")
    with pytest.raises(ModelFitError, match=r"Cox covariate 'channel' has the same value \('web'\) for all 200 customers"
                                            r".*remove it from cox_covariates"):
        cox_proportional_hazards(churn, covariates=["first_order_amount", "channel"])
    failed = cox_proportional_hazards(churn, covariates=["first_order_amount", "channel"], errors="report")
    assert failed.error and failed.hazard_ratios.empty
    assert failed.verdict.startswith("The Cox model could not be fitted: Cox covariate 'channel'")
    assert failed.ph_verdict.startswith("The proportional-hazards check could not be run")


def test_cox_non_convergence_is_a_clear_error():
    churn = _simulated_cox(n=300)
    with pytest.raises(ModelFitError, match=r"did not converge after 1 iterations.*remove covariates from cox_covariates"):
        cox_proportional_hazards(churn, covariates=["first_order_amount", "channel"], max_iterations=1)


def test_cox_unknown_collinear_and_missing_covariates():
    churn = _simulated_cox(n=200)
    with pytest.raises(ParamsError, match=r"column\(s\) \['cohort'\] not found.*Set cox_covariates in params"):
        cox_proportional_hazards(churn, covariates=["first_order_amount", "cohort"])
    with pytest.raises(ModelFitError, match="are collinear"):
        cox_design(churn.assign(copy=churn["first_order_amount"] * 2), ["first_order_amount", "copy"],
                   log2_covariates=())
    gaps = churn.copy()
    gaps.loc[gaps.index[:3], "first_order_amount"] = np.nan
    with pytest.raises(DataValidationError, match="'first_order_amount' is missing for 3 of 200 customers"):
        cox_proportional_hazards(gaps, covariates=["first_order_amount"])


# ---------------------------------------------------------------------------------------
# Sensitivity, P(alive), formatting
# ---------------------------------------------------------------------------------------


def test_lapse_sensitivity_on_hand_log(hand_log):
    table = lapse_sensitivity(hand_log, lapse_days=[30, 100], horizon_days=10, observation_end="2020-03-31")
    assert table.index.tolist() == [30, 100]
    # lapse 30: durations 19, 0, 0, 27 (e acquired too late to be followed) -> S(10) = 2/4
    # (b and c churn at day 0); every customer followed has churned by day 27, where the curve
    # reaches 0 and ends.
    assert table.loc[30, "retention_at_horizon"] == pytest.approx(0.5)
    assert table.loc[30, "identified_until_days"] == 27.0
    assert table.loc[30, "churned_share"] == pytest.approx(0.8)
    assert table.loc[30, "reactivated_share"] == pytest.approx(0.4)
    # lapse 100: no customer was acquired 101 days before the end: nothing is identified.
    assert table.loc[100, "churned_share"] == 0.0
    assert np.isnan(table.loc[100, "retention_at_horizon"]) and np.isnan(table.loc[100, "median_days"])
    # The older rule kept them all at risk: retention 1 where no churn could be seen.
    old_rule = lapse_sensitivity(hand_log, lapse_days=[100], horizon_days=10, observation_end="2020-03-31",
                                 censoring="last_purchase")
    assert old_rule.loc[100, "retention_at_horizon"] == 1.0


def test_lapse_vs_p_alive(hand_log):
    churn = time_to_churn(hand_log, lapse_days=30, observation_end="2020-03-31")
    assert lapse_vs_p_alive(churn, None, lapse_days=30) is None
    p_alive = pd.Series({"a": 0.2, "b": 0.1, "c": 0.9, "d": 0.8, "e": 1.0})
    table = lapse_vs_p_alive(churn, p_alive, lapse_days=30)
    # lapsed at the end (> 30 days silent): a (71) and b (90).
    assert table.loc["lapsed", "customers"] == 2
    assert table.loc["lapsed", "mean_p_alive"] == pytest.approx(0.15)
    assert table.loc["all", "expected_churned_by_model"] == pytest.approx(0.8 + 0.9 + 0.1 + 0.2 + 0.0)
    assert table.loc["all", "churned_by_rule"] == 2
    with pytest.raises(DataValidationError, match=r"1 of 5 values outside \[0, 1\] \(e.g. customer 'e': 1.5\)"):
        lapse_vs_p_alive(churn, p_alive.replace(1.0, 1.5), lapse_days=30)


def test_format_helpers():
    assert format_days(12.0) == "12 days"
    assert format_days(np.nan) == "not reached"
    assert format_days(np.inf) == "beyond the data"


# ---------------------------------------------------------------------------------------
# On CDNOW (known figures of the full log)
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cdnow_churn():
    from crm_lib.data import load_transactions
    from crm_lib.datasets import CDNOW_COLUMN_MAP

    log = load_transactions("embedded:CDNOW_master.txt", column_map=CDNOW_COLUMN_MAP, sep=r"\s+", date_format="%Y%m%d")
    return time_to_churn(log.transactions, lapse_days=180)


def test_cdnow_time_to_churn(cdnow_churn):
    from lifetimes.datasets import load_dataset

    assert len(cdnow_churn) == 23_570
    # Cohorts: CDNOW customers were all acquired in the first quarter of 1997.
    assert sorted(cdnow_churn["cohort"].unique()) == ["1997-01", "1997-02", "1997-03"]
    # One-time buyers have a lifetime of 0 days: cross-check their number against the
    # lifetimes package's own reading of the log (customers with a single purchase day).
    raw = load_dataset("CDNOW_master.txt", sep=r"\s+", dtype=str)
    purchase_days = raw.drop_duplicates(["customer_id", "date"]).groupby("customer_id").size()
    assert (cdnow_churn["purchases"] >= 1).all()
    one_day = int((purchase_days == 1).sum())
    assert int(((cdnow_churn["duration_days"] == 0) & ~cdnow_churn["reactivated"] & cdnow_churn["churned"]).sum()) \
        <= one_day <= int((cdnow_churn["duration_days"] == 0).sum())
    km = kaplan_meier(cdnow_churn, group_col="first_order_band")
    # The curves end at 364 days (1998-06-30 - 181 days - 1997-01-01): 365 is not identified.
    assert km.curves.groupby("group")["time"].max().max() == 364.0
    assert km.survival_at(365)["survival"].isna().all()
    note = curve_cut_note(kaplan_meier(cdnow_churn), lapse_days=180, horizon_days=365)
    assert note.startswith("The curve ends at 364 days after the first purchase: a churn is recognised only after "
                           "more than 180 days of silence")
    assert "Retention at 365 days is therefore not identified by these data; at 364 days it is 6.7%." in note
    year = km.survival_at(364)["survival"]
    # Customers whose first order was larger stay longer.
    assert year.is_monotonic_increasing


def test_cox_skips_columns_the_log_does_not_have():
    churn = _simulated_cox(n=300).drop(columns="channel")
    cox = cox_proportional_hazards(churn, covariates=["first_order_amount", "channel"], skip_absent=True)
    assert list(cox.hazard_ratios.index) == ["first_order_amount"]
    assert cox.notes == ("Left out channel: the transaction log has no such column "
                         "(map a column of the file to it in the params file to use it).",)
    assert cox.table().loc["first_order_amount", "churn hazard"] == "lower"
    # A misspelt covariate is not an absent optional column: still an error.
    with pytest.raises(ParamsError, match=r"\['frist_order_amount'\] not found"):
        cox_proportional_hazards(churn, covariates=["frist_order_amount"], skip_absent=True)


def test_retention_rates_by_cohort_on_hand_log(hand_log):
    from crm_lib.survival import retention_rates_by_cohort

    rates = retention_rates_by_cohort(hand_log[hand_log["date"] <= "2020-03-31"], period="M", cohort_period="M",
                                      min_cohort_size=1)
    jan = rates[rates["cohort"] == "2020-01"].set_index("period")
    # Cohort 2020-01 = a, b, c, d. January active: a, b, c, d; February: d -> 1/4.
    # March: c, d; of February's active (d), d is active again -> 1/1.
    assert jan.loc["2020-02", "retention_rate"] == pytest.approx(0.25)
    assert jan.loc["2020-03", "retention_rate"] == pytest.approx(1.0)
    assert jan["cohort_customers"].iloc[0] == 4
    # Cohort 2020-03 (e) has one period only: no rate.
    assert "2020-03" not in set(rates["cohort"])
    with pytest.raises(DataValidationError, match="no acquisition cohort"):
        retention_rates_by_cohort(hand_log, period="M", min_cohort_size=50)


def test_kaplan_meier_table_for_people():
    churn = pd.DataFrame(
        {"duration_days": [2.0, 3, 4, 4, 5, 7, 8, 9], "churned": [True, False, True, True, False, True, False, True]}
    )
    table = kaplan_meier(churn).table(horizon_days=5)
    assert table.loc["all", "median lifetime"] == "7 days"
    assert table.loc["all", "retention at 5 days"] == "58.3%"
    assert table.loc["all", "retention 95% interval"] == "18.0% to 84.4%"


def test_median_after_day_0_and_sensitivity_table():
    # 5 of 9 churn at day 0 (S(0) = 4/9 < 0.5: median 0 days); the other 4: 10, 20+, 30, 40.
    # Half of S(0) is 2/9: S(10) = 4/9 * 3/4 = 1/3, S(30) = 1/3 * 1/2 = 1/6 < 2/9 -> 30 days.
    churn = pd.DataFrame(
        {"duration_days": [0.0, 0, 0, 0, 0, 10, 20, 30, 40], "churned": [True] * 6 + [False, True, True]}
    )
    km = kaplan_meier(churn)
    assert km.medians.loc["all", "median_days"] == 0.0
    assert km.median_after(0).loc["all"] == 30.0
    assert km.table(15).loc["all", "median of those who bought again"] == "30 days"
    from crm_lib.survival import format_lapse_sensitivity, p_text

    assert p_text(0.0004) == "p < 0.001" and p_text(0.0423) == "p = 0.042"
    tx = pd.DataFrame({"customer_id": ["a", "a", "b"], "date": pd.to_datetime(["2020-01-01", "2020-01-20", "2020-01-05"]),
                       "amount": 1.0})
    table = format_lapse_sensitivity(lapse_sensitivity(tx, lapse_days=[10, 30], horizon_days=10,
                                                       observation_end="2020-03-01"), horizon_days=10)
    # lapse 10: a churns at day 0 (19-day gap), b at day 0: median 0 days, retention 0.
    assert table.loc[10].tolist() == ["2", "100.0%", "50.0%", "0 days", "0.0%", "0.0% to 0.0%"]
    assert table.loc[30, "retention at 10 days"] == "50.0%"


def test_failed_results_give_a_short_table():
    churn = pd.DataFrame({"duration_days": [1.0, 2], "churned": [True, False]})
    table = kaplan_meier(churn, group_col="segment", errors="report").table()
    assert table.loc["reason", "not available"] == "grouping column: column(s) ['segment'] not found"


# ---------------------------------------------------------------------------------------
# The lapse rule's Kaplan-Meier against simulation truth, and the CDNOW backtest
# ---------------------------------------------------------------------------------------


def _purchase_histories(n, seed, *, mean_gap=20.0, mean_life=150.0, acquisition_days=90, max_purchases=150):
    """Customers acquired uniformly over ``acquisition_days``; each buys at Poisson rate
    1/mean_gap until an exponential death (mean ``mean_life`` days). Whole days, from
    day 0 = 2020-01-01. Returns (first day, purchase days as a masked 2-D array)."""
    rng = np.random.default_rng(seed)
    first = rng.uniform(0, acquisition_days, n)
    life = rng.exponential(mean_life, n)
    gaps = rng.exponential(mean_gap, (n, max_purchases))
    gaps[:, 0] = 0.0
    since_first = np.cumsum(gaps, axis=1)
    alive = since_first <= life[:, None]
    days = np.floor(first[:, None] + since_first)
    return days, alive


def _true_lapse_lifetimes(days, alive, lapse_days):
    """The lapse rule applied to complete histories (no observation end; death is final):
    the first spell runs to the purchase before the first gap of more than lapse_days."""
    d = np.where(alive, days, np.nan)
    gap_after = np.diff(d, axis=1, append=np.nan)
    gap_after = np.where(np.isnan(gap_after), np.inf, gap_after)  # after the last purchase: gone for good
    first_lapse = np.argmax(gap_after > lapse_days, axis=1)
    return d[np.arange(len(d)), first_lapse] - d[:, 0]


def _simulated_log(days, alive):
    rows, cols = np.nonzero(alive)
    return pd.DataFrame({"customer_id": rows, "date": pd.Timestamp("2020-01-01") + pd.to_timedelta(days[rows, cols], "D"),
                         "amount": 1.0})


LAPSE, END, HORIZON = 90, pd.Timestamp("2020-01-01") + pd.Timedelta(days=270), 150


@pytest.fixture(scope="module")
def simulated_truth():
    # S(150) of the lapse-rule lifetime on 50,000 complete histories (s.e. about 0.0016).
    days, alive = _purchase_histories(50_000, seed=999)
    return float(np.mean(_true_lapse_lifetimes(days, alive, LAPSE) > HORIZON))


def _coverage(seed, truth, censoring):
    tx = _simulated_log(*_purchase_histories(2_000, seed))
    churn = time_to_churn(tx, lapse_days=LAPSE, observation_end=END, censoring=censoring)
    at = kaplan_meier(churn).survival_at(HORIZON).loc["all"]
    return at["survival"], bool(at["lower"] <= truth <= at["upper"])


def test_lapse_rule_kaplan_meier_is_unbiased_on_one_simulated_log(simulated_truth):
    # Observation ends on day 270, customers arrive on days 0-89, lapse 90 days: a churn can
    # show for 90 to 179 days after the first purchase, so S(150) rests on censored customers.
    new, covered = _coverage(seed=1, truth=simulated_truth, censoring="recognisable")
    old, old_covered = _coverage(seed=1, truth=simulated_truth, censoring="last_purchase")
    assert covered and abs(new - simulated_truth) < 0.03
    assert not old_covered and old > simulated_truth + 0.03  # the older rule is biased upward


@pytest.mark.slow
def test_lapse_rule_kaplan_meier_interval_covers_the_truth(simulated_truth):
    # 200 simulated logs: the 95% interval of S(150) must cover the truth in about 95% of
    # them (binomial: 95% of 200 is 190, s.d. 3.1; accept 180 or more), and the estimates
    # must centre on the truth (mean error within 3 s.e. of the mean).
    results = [_coverage(seed, simulated_truth, "recognisable") for seed in range(200)]
    estimates = np.array([r[0] for r in results])
    covered = sum(r[1] for r in results)
    assert covered >= 180, covered
    assert abs(estimates.mean() - simulated_truth) < 3 * estimates.std() / np.sqrt(len(estimates))
    old = [_coverage(seed, simulated_truth, "last_purchase")[1] for seed in range(50)]
    assert sum(old) < 25  # the older censoring rule misses the truth most of the time


def test_cdnow_backtest_matches_the_full_window():
    # Issue 10: fit on CDNOW to 1997-12-31 and compare with the full window to 1998-06-30
    # (lapse 180). Measured there: S(180) 0.164 (older rule) against 0.128 in the full
    # window, S(270) 0.164 against 0.092.
    from crm_lib.data import load_transactions
    from crm_lib.datasets import CDNOW_COLUMN_MAP
    from crm_lib.survival import lapse_backtest

    log = load_transactions("embedded:CDNOW_master.txt", column_map=CDNOW_COLUMN_MAP, sep=r"\s+", date_format="%Y%m%d")
    backtest = lapse_backtest(log.transactions, truncate_at="1997-12-31", lapse_days=180, horizons_days=(180, 270))
    table = backtest.table
    assert backtest.customers == 23_570
    assert table.loc[(180, "recognisable"), "truth"] == pytest.approx(0.128, abs=0.0005)
    assert table.loc[(270, "recognisable"), "truth"] == pytest.approx(0.092, abs=0.0005)
    assert table.loc[(180, "last_purchase"), "estimate"] == pytest.approx(0.164, abs=0.0005)
    assert table.loc[(270, "last_purchase"), "estimate"] == pytest.approx(0.164, abs=0.0005)
    # The unbiased rule is within sampling error; the older one is not.
    assert table.loc[(180, "recognisable"), "covered"]
    assert not table.loc[(180, "last_purchase"), "covered"]
    # Data to 1997-12-31 cannot show a 270-day lifetime (the curve ends at 183 days).
    assert np.isnan(table.loc[(270, "recognisable"), "estimate"])
    assert "S(270) censoring=recognisable: not identified; full window 0.092" in backtest.summary()
    assert backtest.sentence().startswith("Estimated on the data up to 1997-12-31 (23,570 customers, lapse 180 days), "
                                          "the 180-day retention is 12.4% (95% interval 11.7% to 13.1%); the window to "
                                          "1998-06-30 shows 12.8% for the same customers, within the interval.")
    people = backtest.people_table()
    assert people.loc[(180, "last_purchase")].tolist() == ["16.4% (16.0% to 16.9%)", "12.8%", "no"]
    assert people.loc[(270, "recognisable")].tolist() == ["not identified", "9.2%", ""]
    with pytest.raises(ParamsError, match="give either truncate_at .* or holdout_days"):
        lapse_backtest(log.transactions, truncate_at="1997-12-31", holdout_days=181)
    with pytest.raises(ParamsError, match="truncate_at=1998-07-01 must be before the end of the data"):
        lapse_backtest(log.transactions, truncate_at="1998-07-01")


def test_empty_churn_table_and_constant_covariate_get_plain_messages():
    """An empty churn table is refused in words (and reported with errors='report'); a constant
    covariate's value is printed as a reader writes it, not as numpy's repr."""
    empty = pd.DataFrame({"duration_days": pd.Series([], dtype=float), "churned": pd.Series([], dtype=bool)})
    with pytest.raises(DataValidationError, match="the churn table has no rows"):
        kaplan_meier(empty)
    assert kaplan_meier(empty, errors="report").error.startswith("the churn table has no rows")
    churn = pd.DataFrame({"duration_days": [1.0, 2, 3, 4], "churned": [True, False, True, True],
                          "first_order_amount": np.float64(10.0)})
    with pytest.raises(ModelFitError, match=r"has the same value \(10\.0\) for all 4 customers"):
        cox_proportional_hazards(churn, covariates=["first_order_amount"])
