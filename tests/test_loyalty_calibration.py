"""The stationary null and the calibrated loyalty battery (issue 15).

- The simulator's purchase counts and order values match the Pareto/NBD and Gamma-Gamma
  formulas (Fader & Hardie, note 009, eq. 27; Fader, Hardie & Lee 2005b, eq. 4);
  planted effects have the stated size.
- The vectorised pipeline of crm_lib.loyalty.null gives the same statistics as the
  public per-customer functions on a log.
- Monte-Carlo p-values, Holm and verdict words on hand-made null distributions.
- Size on small simulated bases (true parameters, no refit), and a slow size/power test
  with the models refitted per log (the report's procedure).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from lifetimes import BetaGeoFitter, ParetoNBDFitter
from scipy import stats

from crm_lib import loyalty
from crm_lib.exceptions import ModelFitError, ParamsError
from crm_lib.loyalty import calibration, null
from crm_lib.simulate import simulate_loyalty_orders, simulate_stationary_log

PURCHASE = (0.8, 25.0, 0.6, 120.0)  # Pareto/NBD, rates per day
SPEND = (6.0, 4.0, 15.0)  # Gamma-Gamma p, q, v: mean order value p v / (q - 1) = 30


class _Fixed:
    """A fitted model given by its parameters (as crm_lib.clv fitters expose them)."""

    def __init__(self, names, values):
        self.params_ = pd.Series(dict(zip(names, values)))


def pnbd() -> ParetoNBDFitter:
    model = ParetoNBDFitter()
    model.params_ = pd.Series(dict(zip(["r", "alpha", "s", "beta"], PURCHASE)))
    return model


def gamma_gamma() -> _Fixed:
    return _Fixed(["p", "q", "v"], SPEND)


# ---------------------------------------------------------------------------------------
# The simulator
# ---------------------------------------------------------------------------------------


def test_stationary_orders_match_the_pareto_nbd_and_gamma_gamma_means():
    n, t = 20_000, 300
    orders = simulate_loyalty_orders(np.full(n, t), PURCHASE, SPEND, seed=3)
    repeats = orders.groupby("customer").size() - 1
    r, alpha, s, beta = PURCHASE
    # Fader & Hardie, note 009, eq. 27: E[X(t)] = r beta / (alpha (s - 1)) (1 - (beta / (beta + t))^(s - 1)).
    expected = r * beta / (alpha * (s - 1)) * (1 - (beta / (beta + t)) ** (s - 1))
    assert repeats.mean() == pytest.approx(expected, abs=4 * repeats.std() / np.sqrt(n))
    p, q, v = SPEND
    # Gamma-Gamma: E[z] = p v / (q - 1) (Fader, Hardie & Lee 2005b, "RFM and CLV", eq. 4).
    per_customer = orders.groupby("customer")["amount"].first()
    assert per_customer.mean() == pytest.approx(p * v / (q - 1), rel=0.05)
    assert (orders.groupby("customer")["day"].min() == 0).all()
    assert orders["day"].max() <= t - 1 and (orders["cost_factor"] == 1).all()


def test_planted_effects_have_the_stated_size():
    window = np.full(5000, 730)
    lifted = simulate_loyalty_orders(window, (0.8, 25.0, 0.1, 500.0), SPEND, seed=4, spend_lift_per_year=1.0)
    late = lifted[lifted["day"] >= 365]["amount"].mean() / lifted[lifted["day"] < 30]["amount"].mean()
    # Orders in the second year carry 1 + 1.0 * (1 to 2 years): about 2.5 times the first month's.
    assert 2.2 < late < 2.8
    cost = simulate_loyalty_orders(window, (0.8, 25.0, 0.1, 500.0), SPEND, seed=4, cost_drop_per_year=0.5)
    year2 = cost[cost["day"] >= 365]["cost_factor"]
    # Whole day 365 is a tenure of 365 to 366 days: factor at most 1 - 0.5 * 365 / 365.25.
    assert year2.max() <= 1 - 0.5 * 365 / 365.25 + 1e-12 and year2.min() >= 0.0
    rate = simulate_loyalty_orders(window, (0.8, 25.0, 0.1, 500.0), SPEND, seed=4, rate_lift_per_year=1.0)
    base = simulate_loyalty_orders(window, (0.8, 25.0, 0.1, 500.0), SPEND, seed=4)
    ratio = lambda o: (o["day"] >= 365).sum() / ((o["day"] > 0) & (o["day"] < 365)).sum()  # noqa: E731
    # Intensity 1 + t: second-year orders / first-year orders ~ (1 + 1.5) / (1 + 0.5) among survivors.
    assert ratio(rate) > 1.4 * ratio(base)


def test_stationary_log_is_a_canonical_log_with_costs():
    tx = simulate_stationary_log(300, seed=2, observation_days=200, acquisition_days=50, cost_per_order=2.0)
    assert list(tx.columns) == ["customer_id", "date", "amount", "quantity", "cost"]
    assert tx["customer_id"].nunique() == 300 and (tx["cost"] == 2.0).all()
    assert (tx["date"] - pd.Timestamp("2020-01-06")).dt.days.max() <= 199


# ---------------------------------------------------------------------------------------
# The vectorised pipeline equals the public per-customer one
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def log() -> pd.DataFrame:
    tx, _ = loyalty.simulate_loyalty_log(300, seed=7, observation_days=400, price_lift_per_year=0.5)
    return tx


@pytest.mark.parametrize(
    "crossing, censored, unit, panel_end",
    [("last", "exclude", "D", "lifetime_end"), ("first", "include", "D", "lifetime_end"), ("last", "exclude", "W", "last_purchase")],
)
def test_pipeline_statistics_equal_the_public_functions(log, crossing, censored, unit, panel_end):
    settings = dict(gross_margin=0.3, cost_per_order=1.5)
    model = pnbd()
    if unit == "W":  # the same customers in weeks: rates per week
        model.params_ = model.params_ / pd.Series({"r": 1.0, "alpha": 7.0, "s": 1.0, "beta": 7.0})
    observed = null.base_statistics(
        null.observed_base(log, time_unit=unit), model, time_unit=unit, crossing=crossing, censored=censored,
        panel_end=panel_end, **settings,
    ).iloc[0]
    d = loyalty.lifetime_durations(log, model, crossing=crossing, time_unit=unit)
    c = loyalty.lifetime_profit(log, d, **settings)
    used = c[~c["censored"]] if censored == "exclude" else c
    assert observed["censored_share"] == pytest.approx(c["censored"].mean())
    assert observed["customers_used"] == len(used)
    assert observed["rho"] == pytest.approx(stats.spearmanr(used["duration"], used["profit"]).statistic)
    long = loyalty.long_lived(used)
    assert observed["price_difference"] == pytest.approx(used["price"][long].mean() - used["price"][~long].mean())
    # Ties matter to ranks: the pipeline rounds revenue sums to 1e-9.
    price = used["revenue"].round(9) / used["units"]
    a, b = price[long].dropna(), price[~long].dropna()
    u = stats.mannwhitneyu(a, b, alternative="two-sided").statistic
    assert observed["price_auc"] == pytest.approx(u / (len(a) * len(b)) - 0.5)
    assert observed["cost_share_difference"] == pytest.approx(
        used["cost_share"][long].mean() - used["cost_share"][~long].mean()
    )
    share = used["cost"].round(9) / used["revenue"].round(9)
    a, b = share[long].dropna(), share[~long].dropna()
    u = stats.mannwhitneyu(a, b, alternative="two-sided").statistic
    assert observed["cost_share_auc"] == pytest.approx(u / (len(a) * len(b)) - 0.5)
    panel = loyalty.tenure_panel(log, used, skip_first_period=True, panel_end=panel_end, **settings)
    assert observed["slope"] == pytest.approx(loyalty.fixed_effects_slope(panel)["slope"])
    # The pipeline rounds sums to 1e-9 (ties at a split point fall the same way in every draw).
    matrix = loyalty.loyalty_profit_matrix(used.assign(profit=used["profit"].round(9)))
    assert abs(observed["phi"]) == pytest.approx(matrix.cramers_v)
    assert observed["share barnacles"] == pytest.approx(matrix.table.loc["barnacles", "share_of_customers"])
    assert observed["share_long_low_profit"] == pytest.approx(matrix.share_long_low_profit)


def test_with_one_cost_per_order_h4_is_h3_mirrored():
    # One unit and a cost of 2 per order: cost share = 2 / price per order, a decreasing
    # function, so P(cost share of long > short) - 0.5 is exactly minus that of price, in
    # the log and in every null draw (quantity and cost of simulated orders come from
    # observed ones). The size of H4 on such logs is therefore the size of H3.
    tx = simulate_stationary_log(300, seed=5, observation_days=300, acquisition_days=60,
                                 purchase_params=PURCHASE, spend_params=SPEND)
    observed = null.observed_base(tx)
    frames = [null.base_statistics(base, pnbd(), gross_margin=0.3)
              for base in (observed, null.null_base(observed, PURCHASE, SPEND, n_draws=5, seed=1))]
    for frame in frames:
        assert np.allclose(frame["cost_share_auc"], -frame["price_auc"], atol=1e-12)


def test_lifetime_models_that_keep_one_time_buyers_alive_are_refused(log):
    bgnbd = BetaGeoFitter()
    bgnbd.params_ = pd.Series({"r": 0.8, "alpha": 25.0, "a": 0.6, "b": 2.5})
    message = r"gives P\(alive\) = 1 to every one-time buyer .* Use lifetime_model 'pareto_nbd'"
    with pytest.raises(ModelFitError, match=message):
        loyalty.lifetime_durations(log, bgnbd)
    with pytest.raises(ModelFitError, match=message):
        loyalty.loyalty_analysis(log, bgnbd, n_bootstrap=0)
    with pytest.raises(ParamsError, match="simulate the null from a fitted Pareto/NBD"):
        loyalty.calibrated_tests(log, bgnbd, gamma_gamma(), null_draws=5)


# ---------------------------------------------------------------------------------------
# p-values, Holm and verdict words
# ---------------------------------------------------------------------------------------


def test_monte_carlo_p_value_is_the_two_sided_rank_with_plus_one():
    draws = np.arange(1.0, 20.0)  # 19 draws: 1..19
    assert calibration.monte_carlo_p_value(100.0, draws) == pytest.approx(2 / 20)
    assert calibration.monte_carlo_p_value(-5.0, draws) == pytest.approx(2 / 20)
    # 3 of 19 draws at or above 17: 2 * (1 + 3) / 20.
    assert calibration.monte_carlo_p_value(17.0, draws) == pytest.approx(0.4)
    assert calibration.monte_carlo_p_value(10.0, draws) == 1.0


def test_normal_theory_p_value_holds_its_size_where_a_plain_normal_does_not():
    # 8,000 sets of 30 iid normal values: the first is "observed", 29 are the null draws.
    # Exchangeable draws from one normal: the Student t prediction p-value rejects at 5%
    # and 1% at the nominal rates (within 4 Monte-Carlo s.e.); plugging the sample s.d.
    # into a normal rejects 6.4% and 1.7% (t with 28 df, scale sqrt(1 + 1/29)).
    rng = np.random.default_rng(11)
    values = rng.normal(3.0, 2.0, (8_000, 30))
    p = np.array([calibration.normal_theory_p_value(row[0], row[1:]) for row in values])
    for level in (0.05, 0.01):
        assert (p < level).mean() == pytest.approx(level, abs=4 * np.sqrt(level * (1 - level) / len(p)))
    z = np.abs(values[:, 0] - values[:, 1:].mean(axis=1)) / values[:, 1:].std(axis=1, ddof=1)
    assert (2 * stats.norm.sf(z) < 0.05).mean() > 0.06
    assert np.isnan(calibration.normal_theory_p_value(1.0, np.array([2.0])))


def _frames(observed_values: dict, n_draws: int = 399) -> tuple[pd.Series, pd.DataFrame]:
    rng = np.random.default_rng(0)
    null_frame = pd.DataFrame({
        "rho": rng.normal(0.5, 0.01, n_draws), "slope": rng.normal(-0.2, 0.01, n_draws),
        "price_auc": rng.normal(0.0, 0.01, n_draws), "cost_share_auc": rng.normal(0.0, 0.01, n_draws),
        "phi": rng.normal(0.4, 0.01, n_draws),
    })
    observed = pd.Series({"rho": 0.5, "slope": -0.2, "price_auc": 0.0, "cost_share_auc": 0.0, "phi": 0.4,
                          "mean_price": 10.0, "mean_cost_share": 0.1, "mean_period_profit": 1.0,
                          "customers_used": 1000, "censored_share": 0.3, **observed_values})
    return observed, null_frame


def test_verdict_words_follow_direction_significance_and_practical_effect():
    # rho far above the null by 0.1 (> 0.05): supported; P(long > short) 0.1 below the
    # null: contradicted; phi 0.03 above (< 0.05 practical): no evidence.
    observed, null_frame = _frames({"rho": 0.6, "price_auc": -0.1, "phi": 0.43})
    tests = {t.hypothesis: t for t in calibration.calibrate(observed, null_frame, practical_effect=0.05)}
    assert tests["H1"].verdict == "supported" and tests["H1"].p_value == pytest.approx(2 / 400)
    assert tests["H3"].verdict == "contradicted"
    assert tests["M"].verdict == "no evidence either way" and tests["M"].p_holm < 0.05
    assert "smaller than the practical effect" in tests["M"].explanation
    assert tests["H2"].verdict == "no evidence either way" and tests["H2"].p_value > 0.05
    # Holm over the five statistics (Holm 1979): the smallest p-value times 5.
    assert tests["H1"].p_holm == pytest.approx(min(1.0, 5 * 2 / 400))
    assert tests["H1"].explanation.startswith("Spearman rho of duration and profit is 0.6; a base with no loyalty effect would give 0.5")
    # A constant cost per order: H4 is flagged as not separate evidence from H3.
    assert "not separate evidence from H3" in tests["H4"].note
    none = {t.hypothesis: t for t in calibration.calibrate(observed, null_frame, cost_source="none")}
    assert none["H4"].verdict == "not testable" and np.isnan(none["H4"].p_holm)


# ---------------------------------------------------------------------------------------
# Size on small simulated bases
# ---------------------------------------------------------------------------------------


def test_calibrated_p_values_keep_their_size_under_the_true_null():
    # 40 stationary logs of 150 customers, calibrated with the true parameters (no refit)
    # against 29 null bases each: the raw p-values of every statistic reject at 10% no
    # more often than 10% + 3 Monte-Carlo standard errors (a pipeline that differed
    # between the log and the null would reject nearly always). The slow test below and
    # validation/loyalty_size_power.py measure size with refitted models.
    n_seeds, level = 40, 0.10
    p_values = []
    for seed in range(n_seeds):
        tx = simulate_stationary_log(150, seed=seed, observation_days=300, acquisition_days=60,
                                     purchase_params=PURCHASE, spend_params=SPEND)
        result = loyalty.calibrated_tests(tx, pnbd(), gamma_gamma(), null_draws=29, seed=seed,
                                          gross_margin=0.3, censored="include")
        p_values.append(result.to_frame()["p_value"])
    rates = (pd.concat(p_values, axis=1) < level).mean(axis=1)
    bound = level + 3 * np.sqrt(level * (1 - level) / n_seeds)
    for name, rate in rates.items():
        assert rate <= bound, f"{name}: rejects {rate:.0%} of {n_seeds} stationary logs at {level:.0%}"


# ---------------------------------------------------------------------------------------
# Slow: the report's procedure (models refitted on each log), size and power
# ---------------------------------------------------------------------------------------


def _study():
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "validation"))
    import loyalty_size_power as study

    return study


@pytest.mark.slow
def test_size_and_power_with_refitted_models():
    study = _study()
    # The configuration of validation/loyalty_size_power.py (2,000 customers, 99 draws), fewer seeds.
    n_seeds, customers, draws = 20, 2000, 99
    null_runs = pd.DataFrame([study.one_run("null", seed, customers, draws) for seed in range(n_seeds)])
    for h in study.STATISTICS:
        rate = (null_runs[f"p {h}"] < 0.05).mean()
        assert rate <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / n_seeds), f"{h}: size {rate:.0%}"
    # Each planted effect at the size stated in study.SCENARIOS is seen by its statistic
    # (study.SEEN_BY) in at least 80% of 10 logs: order value x3 after a year of tenure
    # (H3), cost to serve -90% per year (H4), purchase rate x11 after a year (H2), half the
    # customers butterflies buying 15 times as often with a 20 times shorter mean lifetime (H1).
    assert study.SCENARIOS["butterflies"] == {"butterfly_share": 0.5, "butterfly_rate_factor": 15.0,
                                              "butterfly_lifetime_factor": 0.05}
    assert study.SCENARIOS["spend_lift"] == {"spend_lift_per_year": 2.0}
    assert study.SCENARIOS["cost_drop"] == {"cost_drop_per_year": 0.9}
    assert study.SCENARIOS["rate_lift"] == {"rate_lift_per_year": 10.0}
    for scenario, h in study.SEEN_BY.items():
        runs = pd.DataFrame([study.one_run(scenario, seed, customers, draws) for seed in range(10)])
        assert (runs[f"p {h}"] < 0.05).mean() >= 0.8, f"{scenario}: {h} power {(runs[f'p {h}'] < 0.05).mean():.0%}"


@pytest.mark.slow
def test_robustness_table_p_values_keep_their_size_under_the_stationary_null():
    # The report's robustness table (7 rows, normal-theory p-values from 29 shared null
    # draws, models refitted per log) on 12 stationary logs of 1,500 customers: pooled
    # over the rows, each statistic's raw p-value is below 5% no more often than 5% + 3
    # Monte-Carlo s.e. counted on the logs (rows of one log are not independent), and
    # no row reaches a verdict more often than that. validation/loyalty_size_power.py
    # (--scenario robustness) measures it on 200 logs of 2,000.
    study = _study()
    n_logs = 12
    runs = [study.robustness_run(seed, 1500, 29) for seed in range(n_logs)]
    rates = study.robustness_rates(runs)
    bound = 0.05 + 3 * np.sqrt(0.05 * 0.95 / n_logs)
    assert len(rates["variant"].unique()) == 7
    for h, group in rates.groupby("statistic"):
        assert group["rejection rate (p < 0.05)"].mean() <= bound, f"{h}: {group['rejection rate (p < 0.05)'].mean():.0%}"
    assert rates["verdict rate (Holm)"].max() <= bound


def test_calibrated_robustness_rows_share_one_null_and_leave_out_invalid_models(log):
    bgnbd = BetaGeoFitter()
    bgnbd.params_ = pd.Series({"r": 0.8, "alpha": 25.0, "a": 0.6, "b": 2.5})
    table = loyalty.robustness_table(
        log, {"Pareto/NBD": pnbd(), "BG/NBD": bgnbd}, spend_model=gamma_gamma(), null_draws=9,
        thresholds=(0.7,), split_quantiles=(), crossings=(), panel_ends=(), gross_margin=0.3, cost_per_order=1.5,
    )
    assert list(table.index) == ["baseline", "P(alive) threshold 0.7"]
    assert list(table.attrs["left_out"]) == ["BG/NBD"] and table.attrs["null_draws"] == 9
    observed = null.base_statistics(null.observed_base(log), pnbd(), gross_margin=0.3, cost_per_order=1.5).iloc[0]
    assert table.loc["baseline", "H1 rho"] == pytest.approx(observed["rho"])
    assert set(table["M verdict"]) <= set(calibration.CALIBRATED_VERDICTS)
