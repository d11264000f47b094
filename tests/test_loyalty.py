"""Loyalty versus profit (issue 5): exact values on hand-made logs, invariants, errors.

The simulation tests (false-positive rate, planted effects) are in
tests/test_loyalty_simulation.py.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lifetimes import BetaGeoFitter, ParetoNBDFitter
from scipy import stats
from statsmodels.stats.multitest import multipletests

from crm_lib import loyalty
from crm_lib.exceptions import DataValidationError, ModelFitError, ParamsError

START = pd.Timestamp("2021-01-01")


def bgnbd(r=1.0, alpha=10.0, a=0.5, b=1.5) -> BetaGeoFitter:
    model = BetaGeoFitter()
    model.params_ = pd.Series({"r": r, "alpha": alpha, "a": a, "b": b})
    return model


def pnbd(r=0.8, alpha=25.0, s=0.6, beta=120.0) -> ParetoNBDFitter:
    model = ParetoNBDFitter()
    model.params_ = pd.Series({"r": r, "alpha": alpha, "s": s, "beta": beta})
    return model


def hand_log(with_cost: bool = True) -> pd.DataFrame:
    """Four customers, days after 2021-01-01; observation ends on day 60."""
    rows = [
        ("A", 0, 10.0, 1, 1.0),
        ("A", 10, 20.0, 2, 1.0),
        ("B", 0, 5.0, 1, 1.0),
        ("B", 10, 5.0, 1, 1.0),
        ("B", 50, 30.0, 3, 1.0),
        ("C", 5, 8.0, 2, 1.0),
        ("D", 0, 4.0, 1, 1.0),
        ("D", 1, 4.0, 1, 1.0),
        ("D", 2, 4.0, 2, 1.0),
    ]
    tx = pd.DataFrame(rows, columns=["customer_id", "day", "amount", "quantity", "cost"])
    tx["date"] = START + pd.to_timedelta(tx.pop("day"), unit="D")
    return tx if with_cost else tx.drop(columns="cost")


OBS_END = START + pd.Timedelta(days=60)


def bgnbd_crossing(x: int, t_x: float, r=1.0, alpha=10.0, a=0.5, b=1.5, threshold=0.5) -> int:
    """First whole day T >= t_x with BG/NBD P(alive) < threshold, from the closed form.

    Fader, Hardie & Lee, note 021, "Computing P(alive) using the BG/NBD model":
    P = 1 / (1 + a / (b + x - 1) * ((alpha + T) / (alpha + t_x)) ** (r + x)) for x > 0,
    so P < c  <=>  T > (alpha + t_x) * ((1/c - 1) (b + x - 1) / a) ** (1 / (r + x)) - alpha.
    """
    bound = (alpha + t_x) * ((1 / threshold - 1) * (b + x - 1) / a) ** (1 / (r + x)) - alpha
    return max(int(math.floor(bound)) + 1, int(t_x))


# ---------------------------------------------------------------------------------------
# Lifetime duration
# ---------------------------------------------------------------------------------------


def test_durations_on_hand_log_match_the_bgnbd_closed_form():
    d = loyalty.lifetime_durations(hand_log(), bgnbd(), observation_end=OBS_END, allow_immortal_one_time_buyers=True)
    # A: last purchase day 10 (x = 1); closed form gives day 25, before day 60.
    assert bgnbd_crossing(1, 10) == 25
    assert d.loc["A", "duration"] == 25 and not d.loc["A", "censored"]
    assert d.loc["A", "lifetime_end"] == START + pd.Timedelta(days=25)
    # B: dips below 0.5 on day 25 but buys again on day 50 (x = 2), then the crossing
    # (day 93) is after the observation end: censored at its age 60.
    assert bgnbd_crossing(2, 50) == 93
    assert d.loc["B", "duration"] == 60 and d.loc["B", "censored"]
    assert d.loc["B", "dips_below_threshold"] == 1
    # C: one purchase; BG/NBD P(alive) of x = 0 is 1 for ever, so censored at age 55.
    assert d.loc["C", "duration"] == 55 and d.loc["C", "censored"]
    # D: x = 2 at day 2, closed form day 11.
    assert bgnbd_crossing(2, 2) == 11
    assert d.loc["D", "duration"] == 11
    assert d["duration_days"].equals(d["duration"])
    assert list(d["cohort"]) == ["2021-01"] * 4


def test_first_crossing_rule_ends_the_lifetime_at_the_first_dip():
    d = loyalty.lifetime_durations(hand_log(), bgnbd(), observation_end=OBS_END, crossing="first", allow_immortal_one_time_buyers=True)
    assert d.loc["B", "duration"] == 25 and not d.loc["B", "censored"]
    profit = loyalty.lifetime_profit(hand_log(), d, gross_margin=0.5)
    # B's day-50 purchase lies after its lifetime: revenue 5 + 5 only.
    assert profit.loc["B", "revenue"] == pytest.approx(10.0)
    assert profit.loc["B", "orders"] == 2


def test_lifetime_profit_exact_values_with_cost_column():
    d = loyalty.lifetime_durations(hand_log(), bgnbd(), observation_end=OBS_END, allow_immortal_one_time_buyers=True)
    p = loyalty.lifetime_profit(hand_log(), d, gross_margin=0.5, cost_per_order=99.0)
    # The cost column (1 per order) wins over cost_per_order.
    assert set(p["cost_source"]) == {"cost column"}
    assert p["revenue"].to_dict() == pytest.approx({"A": 30.0, "B": 40.0, "C": 8.0, "D": 12.0})
    assert p["cost"].to_dict() == pytest.approx({"A": 2.0, "B": 3.0, "C": 1.0, "D": 3.0})
    # profit = 0.5 * revenue - cost
    assert p["profit"].to_dict() == pytest.approx({"A": 13.0, "B": 17.0, "C": 3.0, "D": 3.0})
    # price per unit = revenue / units
    assert p["price"].to_dict() == pytest.approx({"A": 10.0, "B": 8.0, "C": 4.0, "D": 3.0})
    assert p["cost_share"].to_dict() == pytest.approx({"A": 2 / 30, "B": 3 / 40, "C": 1 / 8, "D": 3 / 12})


def test_cost_per_order_and_price_per_order_without_quantity():
    tx = hand_log(with_cost=False).drop(columns="quantity")
    d = loyalty.lifetime_durations(tx, bgnbd(), observation_end=OBS_END, allow_immortal_one_time_buyers=True)
    p = loyalty.lifetime_profit(tx, d, gross_margin=0.4, cost_per_order=2.0)
    assert set(p["cost_source"]) == {"cost per order"}
    assert p.loc["B", "profit"] == pytest.approx(0.4 * 40 - 3 * 2.0)
    assert p.loc["B", "price"] == pytest.approx(40 / 3)  # per order
    none = loyalty.lifetime_profit(tx, d, gross_margin=0.4)
    assert set(none["cost_source"]) == {"none"} and (none["cost"] == 0).all()


def test_weekly_units_keep_every_purchase_inside_the_lifetime():
    # First purchase on a Monday, last on the Sunday of the next week: one week apart
    # in periods, 13 days apart in dates; the lifetime must still include it.
    tx = pd.DataFrame(
        {
            "customer_id": ["a", "a", "b"],
            "date": pd.to_datetime(["2021-01-04", "2021-01-17", "2021-01-04"]),
            "amount": [10.0, 30.0, 5.0],
        }
    )
    model = pnbd(r=0.553, alpha=10.58, s=0.606, beta=11.67)  # CDNOW, weeks (FHL 2005)
    d = loyalty.lifetime_durations(tx, model, time_unit="W", observation_end="2021-12-31")
    p = loyalty.lifetime_profit(tx, d)
    assert p.loc["a", "revenue"] == pytest.approx(40.0)
    assert (d["lifetime_end"].dt.day_of_week == 6).all()  # weeks end on Sunday
    assert d.loc["a", "duration_days"] == 7 * d.loc["a", "duration"]


def brute_force_durations(tx: pd.DataFrame, model, end: pd.Timestamp, threshold: float) -> pd.Series:
    """Scan every day of every customer (the definition, no bisection)."""
    out = {}
    for cid, group in tx.groupby("customer_id"):
        days = np.unique((group["date"] - group["date"].min()).dt.days.to_numpy())
        T_end = (end - group["date"].min()).days
        ages = np.arange(days[-1], T_end + 1, dtype=float)
        p = model.conditional_probability_alive(
            np.full(len(ages), len(days) - 1.0), np.full(len(ages), float(days[-1])), ages
        )
        below = np.flatnonzero(p < threshold)
        out[cid] = ages[below[0]] if len(below) else float(T_end)
    return pd.Series(out)


def test_vectorised_search_equals_scanning_every_day():
    tx, _ = loyalty.simulate_loyalty_log(120, seed=3, observation_days=300)
    end = tx["date"].max()
    model = pnbd()
    for threshold in (0.3, 0.5, 0.8):
        fast = loyalty.lifetime_durations(tx, model, p_alive_threshold=threshold, observation_end=end)["duration"]
        slow = brute_force_durations(tx, model, end, threshold)
        pd.testing.assert_series_equal(fast, slow.reindex(fast.index), check_names=False)
        assert fast.nunique() > 10  # a real spread of durations, not one value


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.integers(0, 5), st.integers(0, 200), st.floats(0.0, 100.0)),
        min_size=1,
        max_size=25,
    ),
    st.sampled_from(["last", "first"]),
)
def test_duration_invariants(rows, crossing):
    tx = pd.DataFrame(rows, columns=["customer", "day", "amount"])
    tx["customer_id"] = "c" + tx.pop("customer").astype(str)
    tx["date"] = START + pd.to_timedelta(tx.pop("day"), unit="D")
    end = START + pd.Timedelta(days=210)
    model = pnbd()
    low = loyalty.lifetime_durations(tx, model, p_alive_threshold=0.3, observation_end=end, crossing=crossing)
    high = loyalty.lifetime_durations(tx, model, p_alive_threshold=0.7, observation_end=end, crossing=crossing)
    age_at_end = (end - tx.groupby("customer_id")["date"].min()).dt.days
    last_age = (tx.groupby("customer_id")["date"].max() - tx.groupby("customer_id")["date"].min()).dt.days
    assert (low["duration"] >= 0).all()
    assert (low["duration"] <= age_at_end.reindex(low.index)).all()
    # A stricter threshold (0.7) is reached no later than a looser one (0.3).
    assert (high["duration"] <= low["duration"]).all()
    assert (low.loc[low["censored"], "duration"] == age_at_end.reindex(low.index)[low["censored"]]).all()
    if crossing == "last":
        # Every purchase lies inside the lifetime.
        assert (low["duration"] >= last_age.reindex(low.index)).all()
        profit = loyalty.lifetime_profit(tx, low)
        totals = tx.groupby("customer_id")["amount"].sum()
        np.testing.assert_allclose(profit["revenue"], totals.reindex(profit.index))


# ---------------------------------------------------------------------------------------
# The tests' statistics on hand-made numbers
# ---------------------------------------------------------------------------------------


def hand_customers() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "duration": [1.0, 2.0, 3.0, 4.0, 5.0],
            "profit": [2.0, 1.0, 4.0, 3.0, 5.0],
            "cohort": ["2021-01"] * 5,
        },
        index=pd.Index(list("abcde"), name="customer_id"),
    )


def test_h1_exact_correlations_and_ols_slope():
    h1 = loyalty.test_duration_profit(hand_customers(), n_bootstrap=200)
    spearman, pearson, ols = h1.tests
    # Ranks d = (-1, 1, -1, 1, 0): rho = 1 - 6 * 4 / (5 * 24) = 0.8; the values are
    # ranks, so Pearson r = 8 / sqrt(10 * 10) = 0.8 too; OLS slope = Sxy / Sxx = 0.8.
    assert spearman.estimate == pytest.approx(0.8)
    assert pearson.estimate == pytest.approx(0.8)
    assert ols.estimate == pytest.approx(0.8)
    t = 0.8 * math.sqrt(3 / (1 - 0.64))
    assert spearman.statistic == pytest.approx(t)
    assert spearman.p_value == pytest.approx(2 * stats.t.sf(t, 3))
    assert spearman.primary and spearman.n == 5
    assert -1 <= spearman.ci_low <= spearman.ci_high <= 1
    # Family of three tests within H1: the smallest p is tripled (Holm 1979).
    smallest = min(t.p_value for t in h1.tests)
    assert min(t.p_holm for t in h1.tests) == pytest.approx(min(1.0, 3 * smallest))
    # n = 5 cannot show it after Holm: not supported.
    assert h1.verdict == "no evidence either way"


def test_h1_ols_controls_for_cohort_with_robust_errors():
    rng = np.random.default_rng(0)
    customers = pd.DataFrame({"duration": rng.uniform(0, 100, 300), "cohort": rng.choice(["2021-01", "2021-02"], 300)})
    customers["profit"] = 2.0 * customers["duration"] + np.where(customers["cohort"] == "2021-02", 50.0, 0.0) + rng.normal(0, 10, 300)
    ols = loyalty.test_duration_profit(customers, n_bootstrap=0).tests[2]
    reference = smf.ols("profit ~ duration + C(cohort)", data=customers).fit(cov_type="HC3")
    assert "cohort" in ols.method and "HC3" in ols.method
    assert ols.estimate == pytest.approx(reference.params["duration"])
    assert ols.ci_high - ols.ci_low == pytest.approx(2 * 1.959964 * reference.bse["duration"], rel=1e-5)
    assert ols.estimate == pytest.approx(2.0, abs=0.05)


def test_bootstrap_interval_covers_the_estimate_and_is_reproducible():
    rng = np.random.default_rng(1)
    x = rng.normal(size=400)
    y = 0.5 * x + rng.normal(size=400)
    lo, hi = loyalty.bootstrap_correlation_ci(x, y, method="pearson", n_bootstrap=500, seed=7)
    r = stats.pearsonr(x, y).statistic
    assert lo < r < hi
    # Width close to the Fisher-z interval's: 2 * 1.96 * (1 - r^2) / sqrt(n).
    assert hi - lo == pytest.approx(2 * 1.96 * (1 - r * r) / math.sqrt(400), rel=0.25)
    assert (lo, hi) == loyalty.bootstrap_correlation_ci(x, y, method="pearson", n_bootstrap=500, seed=7)


def test_fixed_effects_slope_exact_and_equal_to_dummy_regression():
    panel = pd.DataFrame(
        {
            "customer_id": ["A", "A", "A", "B", "B", "C"],
            "tenure_period": [0, 1, 2, 0, 1, 0],
            "profit": [1.0, 2.0, 3.0, 5.0, 3.0, 9.0],
        }
    )
    fe = loyalty.fixed_effects_slope(panel)
    # Within deviations: A x (-1, 0, 1), y (-1, 0, 1); B x (-.5, .5), y (1, -1);
    # C has one period and no within variation. Sxy = 2 - 1 = 1, Sxx = 2.5.
    assert fe["slope"] == pytest.approx(0.4)
    assert fe["groups"] == 2 and fe["n"] == 5
    # Own slopes: A rises by 1 a period, B falls by 2; C has none.
    assert loyalty.customer_slopes(panel).to_dict() == pytest.approx({"A": 1.0, "B": -2.0})
    assert loyalty.customer_slopes(panel, min_periods=3).to_dict() == pytest.approx({"A": 1.0})

    rng = np.random.default_rng(2)
    big = pd.DataFrame({"customer_id": np.repeat([f"c{i}" for i in range(40)], 5), "tenure_period": np.tile(np.arange(5), 40)})
    big["profit"] = rng.normal(0, 1, 200) + np.repeat(rng.normal(0, 5, 40), 5) + 0.3 * big["tenure_period"]
    fe = loyalty.fixed_effects_slope(big)
    ref = smf.ols("profit ~ tenure_period + C(customer_id)", data=big).fit(
        cov_type="cluster", cov_kwds={"groups": pd.factorize(big["customer_id"])[0]}
    )
    assert fe["slope"] == pytest.approx(ref.params["tenure_period"])
    assert fe["se"] == pytest.approx(ref.bse["tenure_period"], rel=1e-6)


def test_two_group_tests_exact_welch_and_mann_whitney():
    customers = pd.DataFrame(
        {"duration": [10.0, 20.0, 30.0, 1.0, 2.0], "price": [10.0, 12.0, 14.0, 5.0, 7.0]},
        index=list("abcde"),
    )
    h3 = loyalty.test_price(customers, duration_split=5.0)
    welch, mw = h3.tests
    # Means 12 and 6; variances 4 and 2: se = sqrt(4/3 + 2/2).
    se = math.sqrt(4 / 3 + 1)
    df = (4 / 3 + 1) ** 2 / ((4 / 3) ** 2 / 2 + 1)
    assert welch.estimate == pytest.approx(6.0)
    assert welch.statistic == pytest.approx(6.0 / se)
    assert welch.p_value == pytest.approx(2 * stats.t.sf(6.0 / se, df))
    assert welch.ci_low == pytest.approx(6.0 - stats.t.ppf(0.975, df) * se)
    # Every long-lived price exceeds every short-lived one: U = 3 * 2, P(long > short) = 1.
    assert mw.statistic == 6.0 and mw.estimate == pytest.approx(0.5)
    assert "per order" in h3.claim  # no quantity column


def test_holm_adjustment_matches_hand_and_statsmodels():
    p = np.array([0.01, 0.04, 0.03, 0.005])
    # Sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 -> 0.02, 0.03, 0.06, 0.04 -> monotone 0.06.
    np.testing.assert_allclose(loyalty.holm_adjust(p), [0.03, 0.06, 0.06, 0.02])
    rng = np.random.default_rng(3)
    q = rng.uniform(0, 0.2, 12)
    np.testing.assert_allclose(loyalty.holm_adjust(q), multipletests(q, method="holm")[1])
    assert np.isnan(loyalty.holm_adjust(np.array([np.nan, 0.01]))[0])


def matrix_customers() -> pd.DataFrame:
    # duration median 4.5, profit median 4.5: long = e..h, high = profit 5..8.
    return pd.DataFrame(
        {
            "duration": [1, 2, 3, 4, 5, 6, 7, 8],
            "profit": [1, 2, 3, 8, 4, 5, 6, 7],
            "revenue": [10, 20, 30, 80, 40, 50, 60, 70],
        },
        index=list("abcdefgh"),
        dtype=float,
    )


def test_loyalty_profit_matrix_exact_cells_chi_square_and_cramers_v():
    m = loyalty.loyalty_profit_matrix(matrix_customers())
    assert m.duration_cut == 4.5 and m.profit_cut == 4.5
    counts = m.table["customers"].to_dict()
    # short: a, b, c low; d high. long: e low; f, g, h high.
    assert counts == {"strangers": 3, "butterflies": 1, "true friends": 3, "barnacles": 1}
    assert m.table.loc["true friends", "profit_share"] == pytest.approx(18 / 36)
    assert m.table.loc["butterflies", "revenue_share"] == pytest.approx(80 / 360)
    assert m.table.loc["barnacles", "mean_profit"] == pytest.approx(4.0)
    # 2x2 [[3, 1], [1, 3]]: chi2 = n (ad - bc)^2 / (row and column totals) = 8 * 64 / 256 = 2.
    assert m.chi2 == pytest.approx(2.0)
    assert m.p_value == pytest.approx(stats.chi2.sf(2.0, 1))
    assert m.cramers_v == pytest.approx(0.5)
    assert m.share_long_low_profit == pytest.approx(1 / 4)
    assert m.share_high_profit_short == pytest.approx(1 / 4)
    assert m.segment["d"] == "butterflies" and m.segment["e"] == "barnacles"
    assert "butterflies" in m.summary() and "Cramer's V = 0.50" in m.summary()


def test_matrix_with_thresholds_from_params():
    m = loyalty.loyalty_profit_matrix(matrix_customers(), duration_split=6.0, profit_split=2.0)
    assert m.table["customers"].to_dict() == {"strangers": 2, "butterflies": 4, "true friends": 2, "barnacles": 0}


# ---------------------------------------------------------------------------------------
# The battery on a simulated log, the panel, verdict wording, robustness
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def simulated():
    tx, truth = loyalty.simulate_loyalty_log(400, seed=11, price_lift_per_year=1.5)
    return tx, truth


def test_tenure_panel_sums_to_lifetime_profit(simulated):
    tx, _ = simulated
    customers = loyalty.lifetime_profit(
        tx, loyalty.lifetime_durations(tx, pnbd()), gross_margin=0.3, cost_per_order=1.5
    )
    panel = loyalty.tenure_panel(tx, customers, gross_margin=0.3, cost_per_order=1.5, period_days=30)
    totals = panel.groupby("customer_id")["profit"].sum()
    np.testing.assert_allclose(totals.reindex(customers.index), customers["profit"])
    periods = panel.groupby("customer_id")["tenure_period"].max() + 1
    # Days 0 to duration (inclusive) in periods of 30 days.
    expected = customers["duration_days"] // 30 + 1
    np.testing.assert_array_equal(periods.reindex(customers.index), expected)
    # Stopping at the last purchase keeps the profit and ends on a period with a sale.
    short = loyalty.tenure_panel(tx, customers, gross_margin=0.3, cost_per_order=1.5, panel_end="last_purchase")
    np.testing.assert_allclose(short.groupby("customer_id")["profit"].sum().reindex(customers.index), customers["profit"])
    last_rows = short.groupby("customer_id").tail(1)
    assert (last_rows["profit"] != 0).all()
    assert len(short) < len(panel)


def test_battery_holm_family_and_verdict_lines(simulated):
    tx, _ = simulated
    result = loyalty.loyalty_analysis(tx, pnbd(), gross_margin=0.3, cost_per_order=1.5, n_bootstrap=200)
    frame = result.tests.to_frame()
    assert list(frame["hypothesis"].unique()) == ["H1", "H2", "H3", "H4"]
    np.testing.assert_allclose(frame["p_holm"], multipletests(frame["p_value"], method="holm")[1])
    verdicts = result.tests.verdicts()
    # The planted price lift: long-lived customers pay more, so H3 and H4 hold.
    assert verdicts.loc["H3", "verdict"] == "supported"
    assert verdicts.loc["H4", "verdict"] == "supported"
    assert verdicts.loc["H1", "verdict"] == "supported"
    assert verdicts.loc["H4", "explanation"].endswith("not measured costs.")
    assert result.tests["H3"].explanation.startswith("long-lived customers pay higher prices: difference in mean price")
    # Running lifetimes are left out of the tests and the matrix: they have no cell.
    running = result.customers["censored"]
    assert set(result.customers.loc[~running, "segment"]) == set(loyalty.SEGMENT_ORDER)
    assert result.customers.loc[running, "segment"].isna().all()
    assert "H2: profit per period rises with tenure" in result.summary()


def test_h4_not_testable_without_cost_says_why(simulated):
    tx, _ = simulated
    result = loyalty.loyalty_analysis(tx, pnbd(), gross_margin=0.3, n_bootstrap=0)
    h4 = result.tests["H4"]
    assert h4.verdict == "not testable" and h4.tests == () and h4.primary is None
    assert "no cost column and no cost_per_order" in h4.explanation
    assert h4.to_frame()["verdict"].tolist() == ["not testable"]
    # Holm family is the other hypotheses' tests only.
    frame = result.tests.to_frame().dropna(subset=["p_value"])
    np.testing.assert_allclose(frame["p_holm"], multipletests(frame["p_value"], method="holm")[1])


def test_profit_by_tenure_groups(simulated):
    tx, _ = simulated
    result = loyalty.loyalty_analysis(tx, pnbd(), gross_margin=0.3, n_bootstrap=0)
    used = result.customers[~result.customers["censored"]]
    curve = loyalty.profit_by_tenure(result.panel, used)
    assert set(curve["group"]) == {"long-lived", "short-lived"}
    # The H2 panel starts at tenure period 1 (period 0 always holds the first order).
    assert curve["tenure_period"].min() == 1
    first = curve[curve["tenure_period"] == 1].set_index("group")["customers"]
    long = loyalty.long_lived(used)
    in_panel = long.reindex(result.panel.loc[result.panel["tenure_period"] == 1, "customer_id"])
    assert first["long-lived"] == in_panel.sum() and first["short-lived"] == (~in_panel).sum()


def test_robustness_table_one_change_per_row(simulated):
    tx, _ = simulated
    models = {"Pareto/NBD": pnbd(), "BG/NBD": bgnbd(r=0.8, alpha=25.0, a=0.6, b=2.5)}
    table = loyalty.robustness_table(tx, models, gross_margin=0.3, cost_per_order=1.5)
    assert list(table.index) == [
        "baseline",
        "P(alive) threshold 0.3",
        "P(alive) threshold 0.7",
        "splits at the 33% quantile",
        "splits at the 67% quantile",
        "crossing rule 'first'",
        "H2 panel up to the last purchase",
    ]
    # BG/NBD keeps every one-time buyer alive: it is left out, with the reason.
    assert "P(alive) = 1 to every one-time buyer" in table.attrs["left_out"]["BG/NBD"]
    base = loyalty.loyalty_analysis(tx, pnbd(), gross_margin=0.3, cost_per_order=1.5, n_bootstrap=0)
    assert table.loc["baseline", "H3 verdict"] == base.tests["H3"].verdict
    assert table.loc["baseline", "Cramer's V"] == pytest.approx(base.matrix.cramers_v)
    # A higher threshold ends lifetimes sooner.
    assert table.loc["P(alive) threshold 0.7", "median duration"] <= table.loc["P(alive) threshold 0.3", "median duration"]


# ---------------------------------------------------------------------------------------
# Errors a user can act on
# ---------------------------------------------------------------------------------------


def test_threshold_outside_zero_one_is_a_params_error():
    with pytest.raises(ParamsError, match=r"p_alive_threshold=1.5 is not a probability .* use e.g. 0.5"):
        loyalty.lifetime_durations(hand_log(), bgnbd(), p_alive_threshold=1.5)


def test_object_without_p_alive_is_a_model_error():
    with pytest.raises(ModelFitError, match=r"dict has no conditional_probability_alive.*crm_lib.clv.fit_model"):
        loyalty.lifetime_durations(hand_log(), {"r": 1})


def test_unknown_crossing_rule_and_bad_margin():
    with pytest.raises(ParamsError, match=r"crossing='middle' is not a rule; use one of last, first"):
        loyalty.lifetime_durations(hand_log(), bgnbd(), crossing="middle")
    d = loyalty.lifetime_durations(hand_log(), bgnbd(), allow_immortal_one_time_buyers=True)
    with pytest.raises(ParamsError, match=r"gross_margin=30 must be a share of revenue in \(0, 1\]"):
        loyalty.lifetime_profit(hand_log(), d, gross_margin=30)
    with pytest.raises(ParamsError, match=r"cost_per_order=-1.0 must be a non-negative amount"):
        loyalty.lifetime_profit(hand_log(), d, cost_per_order=-1.0)


def test_missing_column_names_the_frame_and_the_fix():
    with pytest.raises(DataValidationError, match=r"transactions: column\(s\) \['date'\] not found.*canonical columns"):
        loyalty.lifetime_durations(hand_log().drop(columns="date"), bgnbd())


def test_matrix_split_outside_the_range_says_what_to_set():
    with pytest.raises(DataValidationError, match=r"duration split at 100.00 puts all 8 customers on one side; set duration_split"):
        loyalty.loyalty_profit_matrix(matrix_customers(), duration_split=100.0)


def test_model_returning_nan_is_reported():
    class Broken:
        def conditional_probability_alive(self, frequency, recency, T):
            return np.full(len(T), np.nan)

    with pytest.raises(ModelFitError, match=r"returned \d+ P\(alive\) values that are not numbers.*refit the model"):
        loyalty.lifetime_durations(hand_log(), Broken())


# ---------------------------------------------------------------------------------------
# P(alive) paths, examples and figures
# ---------------------------------------------------------------------------------------


def test_p_alive_path_crosses_where_the_lifetime_ends(simulated):
    tx, _ = simulated
    model = pnbd()
    result = loyalty.loyalty_analysis(tx, model, n_bootstrap=0)
    examples = loyalty.segment_examples(result.customers)
    assert list(examples.index) == loyalty.SEGMENT_ORDER
    assert (result.customers.loc[examples, "segment"].to_numpy() == examples.index.to_numpy()).all()
    paths = loyalty.p_alive_path(tx, model, list(examples))
    for customer, path in paths.groupby("customer_id"):
        row = result.customers.loc[customer]
        # Pareto/NBD: P(alive) is 1 right at each purchase.
        np.testing.assert_allclose(path.loc[path["purchase"], "p_alive"], 1.0)
        last = path.loc[path["purchase"], "age"].max()
        after = path[(path["age"] >= last) & (path["p_alive"] < 0.5)]
        expected = after["age"].min() if len(after) else path["age"].max()
        assert row["duration"] == expected
    with pytest.raises(DataValidationError, match=r"customer\(s\) \['nobody'\] not found"):
        loyalty.p_alive_path(tx, model, ["nobody"])


def test_figures_are_titled_and_labelled_with_units(simulated):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from crm_lib.plots import loyalty as plots

    tx, _ = simulated
    model = pnbd()
    result = loyalty.loyalty_analysis(tx, model, gross_margin=0.3, n_bootstrap=0)
    examples = loyalty.segment_examples(result.customers)
    axes = [
        plots.plot_p_alive_paths(loyalty.p_alive_path(tx, model, list(examples)), 0.5, examples=examples),
        plots.plot_duration_profit(result.customers, result.matrix, currency="EUR"),
        plots.plot_profit_by_tenure(loyalty.profit_by_tenure(result.panel, result.customers), currency="EUR"),
        plots.plot_segment_shares(result.matrix),
    ]
    for ax in axes:
        assert ax.get_title() and "(" in ax.get_ylabel()
    for ax in axes[:3]:  # numeric x axes carry a unit; the cells' axis is categorical
        assert "(" in ax.get_xlabel()
    assert "EUR" in axes[1].get_ylabel() and "days" in axes[1].get_xlabel()
    # The paths are labelled by cell, in the matrix's order.
    assert [t.get_text() for t in axes[0].get_legend().get_texts()] == [f"{c} ({examples[c]})" for c in loyalty.SEGMENT_ORDER]
    # The caption states the crossing rule the analysis used (the text and the caption once disagreed).
    from crm_lib.plots.theme import caption_of

    assert caption_of(axes[0]).endswith("after the customer's last purchase.")
    first = plots.plot_p_alive_paths(loyalty.p_alive_path(tx, model, list(examples)), 0.5, crossing="first")
    assert caption_of(first).endswith("for the first time.")
    # Four cells in the scatter legend with their counts.
    legend = [t.get_text() for t in axes[1].get_legend().get_texts()]
    assert legend[0] == f"strangers ({(result.matrix.segment == 'strangers').sum():,})"
    plt.close("all")


def test_verdict_stability_counts_agreeing_variants():
    table = pd.DataFrame(
        {
            "H1 verdict": ["supported", "supported", "not supported"],
            "H2 verdict": ["contradicted", "contradicted", "contradicted"],
        },
        index=pd.Index(["baseline", "P(alive) threshold 0.3", "model BG/NBD"], name="variant"),
    )
    stability = loyalty.verdict_stability(table)
    assert stability.loc["H1", "variants agreeing"] == "1 of 2"
    assert stability.loc["H1", "differs under"] == "model BG/NBD: not supported"
    assert stability.loc["H2", "share agreeing"] == 1.0 and stability.loc["H2", "differs under"] == "none"


def test_formatted_tables_for_people(simulated):
    tx, _ = simulated
    result = loyalty.loyalty_analysis(tx, pnbd(), gross_margin=0.3, n_bootstrap=0)
    tests = loyalty.format_tests(result.tests)
    assert len(tests) == len(result.tests.to_frame())
    h1 = tests.loc[("H1", "* Spearman rank correlation (bootstrap 95% CI)")]
    assert h1["estimate"] == f"rho = {result.tests['H1'].primary.estimate:.3g}"
    assert tests.loc[("H4", "  not testable"), "verdict"] == "not testable"
    people = loyalty.format_customers(result.customers, currency="EUR")
    assert "profit (EUR)" in people.columns and "duration (days)" in people.columns
    matrix = loyalty.format_matrix(result.matrix)
    assert list(matrix.index) == loyalty.SEGMENT_ORDER
    robustness = pd.DataFrame(
        {"H1 verdict": ["supported"], "H1 rho": [0.5561], "censored lifetimes": [0.318], "median duration": [180.0]},
        index=["baseline"],
    )
    assert loyalty.format_robustness(robustness).loc["baseline"].tolist() == ["supported", "+0.556", "32%", "180"]


def test_conclusion_names_what_holds_and_what_is_fragile(simulated):
    tx, _ = simulated
    result = loyalty.loyalty_analysis(tx, pnbd(), gross_margin=0.3, n_bootstrap=0)
    verdicts = result.tests.verdicts()["verdict"]
    held = [h for h in ("H1", "H2", "H3") if verdicts[h] == "supported"]
    stability = pd.DataFrame({"differs under": ["none", "model BG/NBD: supported"]}, index=["H1", "H3"])
    text = loyalty.conclusion(result, stability)
    assert text.startswith(
        "On this log, on classical tests that ignore the mechanical ties of P(alive) lifetimes (no calibration was run), "
        f"**{len(held)} of 3 testable statements are supported** ({', '.join(held) or 'none'})"
    )
    assert "H4 could not be tested." in text
    assert f"**{result.matrix.share_long_low_profit:.0%}** of the long-lived customers" in text
    assert text.endswith("The verdicts of H3 change with at least one analysis choice (robustness table): read them with care.")
