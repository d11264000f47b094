"""The robustness table changes the choice its row names, and only that (issue 16, seed-17 survivors).

A row "splits at the 25% quantile" must split both duration and profit at their 25% quantiles; a
fixed profit split given in the settings must reach the calibrated rows; one null draw is a
calibration. Expected shares are counted here with pandas from the customers' durations and
profits (the rule loyalty_profit_matrix documents: long-lived = duration above the cut, high-profit =
profit above the cut; the cut is a quantile, or a fixed amount when given). Public names only.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crm_lib import loyalty
from tests.test_strength_loyalty_outputs import SPEND as SPEND_PARAMS
from tests.test_strength_loyalty_outputs import _Fixed, _pnbd

SPEND = _Fixed(["p", "q", "v"], SPEND_PARAMS)  # Gamma-Gamma p, q, v
KNOBS = dict(gross_margin=0.3, cost_per_order=1.5, seed=2)
ONE_ROW = dict(thresholds=(), split_quantiles=(), crossings=(), panel_ends=())


@pytest.fixture(scope="module")
def log() -> pd.DataFrame:
    tx, _ = loyalty.simulate_loyalty_log(150, seed=5, observation_days=300, price_lift_per_year=0.5)
    return tx


def _used_customers(log) -> pd.DataFrame:
    customers = loyalty.loyalty_analysis(log, _pnbd(), n_bootstrap=0, **KNOBS).customers
    return customers[~customers["censored"]]


def _shares(used: pd.DataFrame, duration_cut: float, profit_cut: float) -> tuple[float, float]:
    long, high = used["duration"] > duration_cut, used["profit"] > profit_cut
    return (long & ~high).sum() / long.sum(), (high & ~long).sum() / high.sum()


def test_split_quantile_row_splits_duration_and_profit_at_that_quantile(log):
    table = loyalty.robustness_table(log, {"Pareto/NBD": _pnbd()}, **{**ONE_ROW, "split_quantiles": (0.25,)}, **KNOBS)
    assert list(table.index) == ["baseline", "splits at the 25% quantile"]
    used = _used_customers(log)
    for variant, q in (("baseline", 0.5), ("splits at the 25% quantile", 0.25)):
        long_low, high_short = _shares(used, used["duration"].quantile(q), used["profit"].quantile(q))
        assert table.loc[variant, "long-lived with low profit"] == pytest.approx(long_low)
        assert table.loc[variant, "high-profit that are short-lived"] == pytest.approx(high_short)


def test_calibrated_rows_use_a_fixed_profit_split_from_the_settings(log):
    used = _used_customers(log)
    cut = round(float(used["profit"].quantile(0.3)), 2)  # a fixed amount, not the median
    table = loyalty.robustness_table(log, {"Pareto/NBD": _pnbd()}, spend_model=SPEND, null_draws=2, profit_split=cut,
                                     **ONE_ROW, **KNOBS)
    long_low, high_short = _shares(used, used["duration"].median(), cut)
    assert table.loc["baseline", "long-lived with low profit"] == pytest.approx(long_low)
    assert table.loc["baseline", "high-profit that are short-lived"] == pytest.approx(high_short)


def test_one_null_draw_is_a_calibration(log):
    analysis = loyalty.loyalty_analysis(log, _pnbd(), spend_model=SPEND, null_draws=1, n_bootstrap=0, **KNOBS)
    assert analysis.calibration is not None
    assert len(analysis.calibration.null) == 1
    assert {t.null_draws for t in analysis.calibration.tests} == {1}


def test_calibration_gets_every_choice_of_the_analysis(log):
    analysis = loyalty.loyalty_analysis(log, _pnbd(), spend_model=SPEND, null_draws=1, n_bootstrap=0,
                                        p_alive_threshold=0.4, crossing="first", duration_quantile=0.4,
                                        profit_quantile=0.6, profit_split=None, tenure_period_days=60,
                                        panel_end="last_purchase", censored_lifetimes="include", **KNOBS)
    assert analysis.calibration.settings == {
        "time_unit": "D", "p_alive_threshold": 0.4, "crossing": "first", "gross_margin": 0.3, "cost_per_order": 1.5,
        "duration_split": None, "duration_quantile": 0.4, "profit_split": None, "profit_quantile": 0.6,
        "tenure_period_days": 60, "panel_end": "last_purchase", "censored": "include"}
    # H2's effect per year of 60-day periods, over |mean profit per period| (calibrate's scale)
    observed, h2 = analysis.calibration.observed, analysis.calibration["H2"]
    assert h2.effect == pytest.approx((observed["slope"] - h2.null_mean) * 365.25 / 60 / abs(observed["mean_period_profit"]))
    settings = analysis.settings
    assert (settings["p_alive_threshold"], settings["crossing"], settings["tenure_period_days"]) == (0.4, "first", 60)
    assert (settings["panel_end"], settings["censored_lifetimes"], settings["null_draws"]) == ("last_purchase", "include", 1)
    # censored lifetimes included: every customer is in the matrix
    assert analysis.matrix.n == len(analysis.customers)
    assert settings["duration_cut"] == pytest.approx(analysis.customers["duration"].quantile(0.4))
    assert settings["profit_cut"] == pytest.approx(analysis.customers["profit"].quantile(0.6))


def test_sample_customers_keeps_every_order_of_the_chosen_and_says_so(log):
    from crm_lib.exceptions import ParamsError
    from crm_lib.loyalty.analysis import sample_customers

    ids = pd.unique(log["customer_id"])
    assert len(ids) == 150
    sample, end, note = sample_customers(log, 100, seed=3)
    chosen = set(ids[np.random.default_rng(3).choice(150, 100, replace=False)])  # the documented draw
    assert set(sample["customer_id"]) == chosen
    assert len(sample) == log["customer_id"].isin(chosen).sum()  # all their orders
    assert end == log["date"].max()  # the window of the whole log
    assert note == (
        f"The loyalty analysis uses a random sample of 100 of the 150 customers (seed 3; {len(sample):,} of "
        f"{len(log):,} transactions), and the bases with no loyalty effect are simulated for the same customers: "
        "every statistic, interval and share here carries the sampling error of 100 customers, and the verdicts "
        "are those of the sample.")
    whole, end_whole, none = sample_customers(log, 150, observation_end="2021-01-01")
    assert whole is log and none == "" and end_whole == pd.Timestamp("2021-01-01")
    assert sample_customers(log, None)[2] == ""
    with pytest.raises(ParamsError, match=r"loyalty max_customers=99: use at least 100 customers, or None"):
        sample_customers(log, 99)


def test_calibrated_profit_level_and_slope_are_those_of_the_tenure_panel(log):
    # H2's scale (mean profit per period) and slope in the calibration are computed without the
    # panel (crm_lib.loyalty.null); they must equal the panel's, customers with 2+ periods.
    analysis = loyalty.loyalty_analysis(log, _pnbd(), spend_model=SPEND, null_draws=1, n_bootstrap=0, **KNOBS)
    panel = analysis.panel
    periods = panel.groupby("customer_id")["tenure_period"].transform("size")
    kept = panel[periods >= 2]
    observed = analysis.calibration.observed
    assert observed["mean_period_profit"] == pytest.approx(kept["profit"].sum() / len(kept))
    assert observed["slope"] == pytest.approx(loyalty.fixed_effects_slope(kept)["slope"])
    # the robustness table's calibrated baseline uses the same 30-day tenure periods by default
    table = loyalty.robustness_table(log, {"Pareto/NBD": _pnbd()}, spend_model=SPEND, null_draws=1, **ONE_ROW, **KNOBS)
    assert table.loc["baseline", "H2 slope"] == pytest.approx(observed["slope"])


def test_calibrated_rows_follow_the_observation_end_alpha_and_count_the_customers_used(log):
    end = log["date"].max() + pd.Timedelta(days=60)  # 60 quiet days after the last order
    analysis = loyalty.loyalty_analysis(log, _pnbd(), spend_model=SPEND, null_draws=2, n_bootstrap=0,
                                        observation_end=end, **KNOBS)
    table = loyalty.robustness_table(log, {"Pareto/NBD": _pnbd()}, spend_model=SPEND, null_draws=2,
                                     observation_end=end, alpha=0.9, practical_effect=0.0, **ONE_ROW, **KNOBS)
    row = table.loc["baseline"]
    used = analysis.customers[~analysis.customers["censored"]]
    assert row["customers used"] == len(used)
    assert row["censored lifetimes"] == pytest.approx(analysis.customers["censored"].mean())
    # alpha 0.9 with no practical threshold: every Holm p below 0.9 gives a verdict
    holm = table.attrs["p_values"].loc["baseline"]
    for hypothesis in ("H1", "H2", "H3", "H4", "M"):
        p = holm[f"{hypothesis} Holm"]
        verdict = row[f"{hypothesis} verdict"]
        if np.isfinite(p) and p < 0.9:
            assert verdict in ("supported", "contradicted"), (hypothesis, p, verdict)
        else:
            assert verdict in ("no evidence either way", "not testable"), (hypothesis, p, verdict)
    adjusted = holm.filter(like="Holm")
    assert ((adjusted >= 0.05) & (adjusted < 0.9)).any()  # a verdict that the default alpha 0.05 would withhold
