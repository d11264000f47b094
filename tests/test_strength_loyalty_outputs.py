"""Loyalty tables for people show what was computed (issue 16, surviving mutants).

The statistics are checked against hand values, scipy and statsmodels in tests/test_loyalty*.py and
tests/test_strength_loyalty.py; here: the full analysis hands its margin and cost to the calibrated
battery, and the formatted tables show each stored figure (expected texts built with plain
``format``). Public names of crm_lib.loyalty only.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lifetimes import ParetoNBDFitter
from scipy import stats

from crm_lib import loyalty


class _Fixed:
    def __init__(self, names, values):
        self.params_ = pd.Series(dict(zip(names, values)))


def _pnbd() -> ParetoNBDFitter:
    model = ParetoNBDFitter()
    model.params_ = pd.Series({"r": 0.8, "alpha": 25.0, "s": 0.6, "beta": 120.0})
    return model


SPEND = (6.0, 4.0, 15.0)  # Gamma-Gamma p, q, v


@pytest.fixture(scope="module")
def log() -> pd.DataFrame:
    tx, _ = loyalty.simulate_loyalty_log(150, seed=5, observation_days=300, price_lift_per_year=0.5)
    return tx


@pytest.fixture  # per test, not per module: mutmut maps a function to the tests that call it (issue 16)
def analysis(log):
    return loyalty.loyalty_analysis(log, _pnbd(), spend_model=_Fixed(["p", "q", "v"], SPEND), model_name="PNBD-x",
                                    null_draws=3, n_bootstrap=0, gross_margin=0.3, cost_per_order=1.5, seed=2)


def test_calibrated_battery_uses_the_analysis_margin_and_cost(analysis):
    observed = analysis.calibration.observed
    customers = analysis.customers
    used = customers[~customers["censored"]]
    # profit = 0.3 revenue - 1.5 per order, by hand from the analysis' own revenue and orders
    np.testing.assert_allclose(used["profit"], 0.3 * used["revenue"] - 1.5 * used["orders"])
    assert observed["rho"] == pytest.approx(stats.spearmanr(used["duration"], used["profit"].round(9)).statistic)
    long = loyalty.long_lived(used)
    assert observed["cost_share_difference"] == pytest.approx(
        used["cost_share"][long].mean() - used["cost_share"][~long].mean())


def test_calibration_verdicts_and_matrix_shares_tables(analysis):
    calibration = analysis.calibration
    verdicts = calibration.verdicts()
    assert verdicts.index.name == "hypothesis"
    assert verdicts["verdict"].to_dict() == {t.hypothesis: t.verdict for t in calibration.tests}
    shares = calibration.matrix_shares()
    assert shares.loc["long-lived with low profit", "observed"] == pytest.approx(
        calibration.observed["share_long_low_profit"])
    assert shares.loc["high-profit that are short-lived", "observed"] == pytest.approx(
        calibration.observed["share_high_profit_short"])
    null = calibration.null["share_high_profit_short"].dropna()
    assert shares.loc["high-profit that are short-lived", "null 97.5%"] == pytest.approx(np.quantile(null, 0.975))


def test_format_calibration_shows_the_signed_effect(analysis):
    table = loyalty.format_calibration(analysis.calibration)
    for t in analysis.calibration.tests:
        assert table.loc[t.hypothesis, "effect"] == ("" if not np.isfinite(t.effect) else f"{t.effect:+.3f}")
        assert table.loc[t.hypothesis, "n"] == f"{t.n:,}"


def test_format_matrix_shows_the_cell_definitions(analysis):
    table = analysis.matrix.table
    shown = loyalty.format_matrix(analysis.matrix)
    assert shown["lifetime"].tolist() == table["duration"].tolist()
    assert shown["profit"].tolist() == table["profit"].tolist()
    assert shown["share of customers"].tolist() == [f"{v:.1%}" for v in table["share_of_customers"]]


def test_format_customers_dates_and_missing_money():
    customers = pd.DataFrame(
        {"first_purchase": pd.to_datetime(["2021-01-04", "2021-02-01"]),
         "lifetime_end": pd.to_datetime(["2021-03-15", "2021-02-01"]),
         "duration": [70.0, 0.0], "censored": [False, True], "orders": [3, 1],
         "revenue": [1234.5, 10.0], "cost": [3.0, np.nan], "profit": [1231.5, np.nan],
         "price": [411.5, 10.0], "cost_share": [3 / 1234.5, np.nan]},
        index=pd.Index(["a", "b"], name="customer_id"))
    shown = loyalty.format_customers(customers, currency="EUR")
    assert shown.loc["a", "first purchase"] == "2021-01-04" and shown.loc["a", "lifetime end"] == "2021-03-15"
    assert shown.loc["a", "revenue (EUR)"] == "1,234.50" and shown.loc["b", "cost (EUR)"] == ""
    assert shown.loc["b", "profit (EUR)"] == "" and shown.loc["b", "cost share"] == ""
    assert shown.loc["a", "duration (days)"] == "70" and shown["censored"].tolist() == ["", "yes"]


def test_summary_names_the_lifetime_model(analysis):
    assert "model PNBD-x," in analysis.summary()


def _one_row(log, **kwargs):
    return loyalty.robustness_table(log, {"Pareto/NBD": _pnbd()}, thresholds=(), split_quantiles=(), crossings=(),
                                    panel_ends=(), gross_margin=0.3, cost_per_order=1.5, seed=2, **kwargs)


def test_robustness_rows_carry_the_statistics_under_their_names(log, analysis):
    classical = _one_row(log).loc["baseline"]
    m = analysis.matrix
    assert classical["long-lived with low profit"] == pytest.approx(m.share_long_low_profit)
    assert classical["high-profit that are short-lived"] == pytest.approx(m.share_high_profit_short)
    assert classical["H1 rho"] == pytest.approx(analysis.tests["H1"].primary.estimate)
    calibrated = _one_row(log, spend_model=_Fixed(["p", "q", "v"], SPEND), null_draws=3).loc["baseline"]
    observed = analysis.calibration.observed
    assert calibrated["H1 rho"] == pytest.approx(observed["rho"])
    assert calibrated["H3 price difference"] == pytest.approx(observed["price_difference"])
    assert {"H1 rho, null", "H2 slope, null", "H3 price difference, null", "phi, null"} <= set(calibrated.index)


def test_p_alive_path_runs_to_the_given_observation_end(log):
    customer = log.sort_values("date")["customer_id"].iloc[0]
    first = log.loc[log["customer_id"] == customer, "date"].min()
    end = log["date"].max() + pd.Timedelta(days=40)
    path = loyalty.p_alive_path(log, _pnbd(), [customer], observation_end=end)
    assert path["age"].max() == (end.normalize() - first.normalize()).days


def test_analysis_settings_and_calibration_notes(analysis):
    # the simulated log has no cost column: the cost is the assumed 1.5 per order
    assert analysis.settings["cost_source"] == "cost per order" and analysis.settings["null_draws"] == 3
    calibration = analysis.calibration
    assert calibration.settings["time_unit"] == "D" and calibration.settings["gross_margin"] == 0.3
    assert calibration["H1"].note == ""
    assert calibration["H4"].note.endswith("the cost share is cost_per_order / mean order value, the same spend "
                                           "data cut another way.")
    # the log has a quantity column: H3 compares prices per unit
    assert calibration["H3"].statistic_name == "P(price per unit of a long-lived > a short-lived customer) - 0.5"
    assert calibration["H4"].effect_name == "excess P(long > short) - 0.5 over the null"  # a rank statistic like H3 (issue 15)


def test_calibration_without_quantity_compares_prices_per_order(log):
    result = loyalty.calibrated_tests(log.drop(columns="quantity"), _pnbd(), _Fixed(["p", "q", "v"], SPEND),
                                      null_draws=27, seed=1, gross_margin=0.3, cost_per_order=1.5)
    assert result["H3"].statistic_name == "P(price per order of a long-lived > a short-lived customer) - 0.5"
    # 27 draws come in chunks of at most 25: every chunk's draws are kept, no more
    assert len(result.null) == 27


@pytest.mark.parametrize("name", ["duration", "profit"])
def test_matrix_quantile_outside_zero_one_names_the_setting(analysis, name):
    from crm_lib.exceptions import ParamsError

    with pytest.raises(ParamsError, match=f"{name}_quantile=1.5 must be strictly between 0 and 1"):
        loyalty.loyalty_profit_matrix(analysis.customers[~analysis.customers["censored"]], **{f"{name}_quantile": 1.5})


def test_null_orders_take_quantity_from_observed_orders_of_a_near_amount():
    # Quantity = amount / 10 in every observed order: a donor of a near amount has a near quantity.
    rng = np.random.default_rng(0)
    n = 400
    amount = np.round(rng.uniform(5, 80, n), 2)  # dense where the null's order values fall (mean 30)
    tx = pd.DataFrame({"customer_id": [f"c{i % 40}" for i in range(n)],
                       "date": pd.Timestamp("2021-01-01") + pd.to_timedelta(rng.integers(0, 200, n), unit="D"),
                       "amount": amount, "quantity": amount / 10})
    observed = loyalty.observed_base(tx)
    base = loyalty.null_base(observed, (0.8, 25.0, 0.6, 120.0), SPEND, n_draws=2, seed=3)
    # One of the DONOR_NEIGHBOURS nearest of 400 observed amounts 0.19 apart: within a few units.
    inside = (base.amount > 6) & (base.amount < 79)
    assert inside.sum() > 100
    assert np.median(np.abs(base.units[inside] * 10 - base.amount[inside])) < 2
    assert np.corrcoef(base.units[inside], base.amount[inside])[0, 1] > 0.95


class _AliveForWeeks:
    """P(alive) = 1 up to age 100 weeks, 0.5 after: a model that keeps one-time buyers alive for 100 weeks."""

    def conditional_probability_alive(self, frequency, recency, T):
        return np.where(np.asarray(T, dtype=float) <= 100, 1.0, 0.5)


def test_weekly_crossing_cache_checks_the_model_over_the_window_in_weeks():
    from crm_lib.exceptions import ModelFitError

    tx = pd.DataFrame({"customer_id": ["a", "b"], "date": pd.to_datetime(["2021-01-04", "2022-01-03"]),
                       "amount": [10.0, 20.0]})
    base = loyalty.observed_base(tx, observation_end="2022-12-31", time_unit="W")
    # The window is about 104 weeks (728 days): at 104 + 2 weeks P(alive) is 0.5, fine.
    assert loyalty.crossing_cache(base, _AliveForWeeks(), 0.5, "W").horizon == (base.end_day - base.first_day.min()) // 7 + 2
    short = loyalty.observed_base(tx, observation_end="2022-06-30", time_unit="W")
    # About 78 weeks: one-time buyers are still certainly alive at the end, the model is refused
    # (read in days, 545 > 100, it would wrongly pass).
    with pytest.raises(ModelFitError, match="P\\(alive\\) = 1 to every one-time buyer"):
        loyalty.crossing_cache(short, _AliveForWeeks(), 0.5, "W")


def test_conclusion_when_every_hypothesis_was_tested(analysis):
    text = loyalty.conclusion(analysis)
    assert all(t.verdict != "not testable" for t in analysis.calibration.tests)
    assert "could not be tested" not in text
    assert ". Not all loyal customers are profitable: **" in text


def test_calibration_without_any_cost_says_h4_cannot_be_tested(log):
    result = loyalty.calibrated_tests(log, _pnbd(), _Fixed(["p", "q", "v"], SPEND), null_draws=3, seed=1)
    assert result["H4"].verdict == "not testable"
    assert result["H4"].explanation == "no cost column and no cost_per_order in params: the cost to serve is unknown."
    assert result["H4"].note == ""
