"""Boundaries, defaults and error paths of the statistics (issue 16, survivors of mutation sample seed 17).

Each test pins a case the fast suite did not reach: a group of exactly the minimum size, the
smallest groups a difference of means accepts, the empty null distribution, a start value handed
to an optimiser, customers left out of a spend fit, a forced model that could not be fitted, a curve
that falls to zero. Expected values come from hand computation, a log-rank statistic written out
here in numpy, a published table (Fader, Hardie & Shang 2010) or the notebook's parameters cell.
"""
from __future__ import annotations

import inspect
import json
import logging
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from lifetimes import ParetoNBDFitter
from lifetimes.datasets import load_dataset
from scipy import stats

from crm_lib import clv, loyalty
from crm_lib.exceptions import ModelFitError
from crm_lib.loyalty.null import _group_difference
from crm_lib.models import BetaGeoBetaBinomFit, GammaGammaFit
from crm_lib.survival import kaplan_meier, log_rank_test

REPO = Path(__file__).resolve().parents[1]

# --- survival: log-rank with groups at the minimum size ---------------------------------------------


def log_rank_chi2(time: np.ndarray, event: np.ndarray, group: np.ndarray) -> float:
    """The k-group log-rank statistic written out (Kalbfleisch & Prentice 2002, sec. 7.2.2):
    U = sum over event times of (observed - expected) per group, V its hypergeometric covariance,
    chi2 = U' V^- U over the first k - 1 groups."""
    labels = np.unique(group)
    u = np.zeros(len(labels))
    v = np.zeros((len(labels), len(labels)))
    for t in np.unique(time[event == 1]):
        at_risk = np.array([np.sum((time >= t) & (group == g)) for g in labels], dtype=float)
        deaths = np.array([np.sum((time == t) & (event == 1) & (group == g)) for g in labels], dtype=float)
        n, d = at_risk.sum(), deaths.sum()
        u += deaths - d * at_risk / n
        if n > 1:
            share = at_risk / n
            v += d * (n - d) / (n - 1) * (np.diag(share) - np.outer(share, share))
    return float(u[:-1] @ np.linalg.solve(v[:-1, :-1], u[:-1]))


def test_log_rank_by_default_keeps_groups_of_twenty_as_the_curves_do():
    # Three channels of 20, 25 and 19 customers: with the defaults the log-rank test compares
    # exactly the groups that get a Kaplan-Meier curve (20 and more), and leaves out the 19.
    rng = np.random.default_rng(8)
    sizes = {"email": 20, "store": 25, "web": 19}
    group = np.repeat(list(sizes), list(sizes.values()))
    time = np.round(rng.exponential(np.where(group == "store", 60.0, 120.0)), 1) + 1
    event = (rng.random(len(group)) < 0.8).astype(int)
    churn = pd.DataFrame({"duration_days": time, "churned": event.astype(bool), "channel": group})
    curves = kaplan_meier(churn, group_col="channel")
    test = log_rank_test(churn, group_col="channel")
    assert set(test.groups) == set(curves.medians.index) == {"email", "store"}
    assert test.n == 45 and test.df == 1
    kept = group != "web"
    chi2 = log_rank_chi2(time[kept], event[kept], group[kept])
    assert test.statistic == pytest.approx(chi2, rel=1e-9)
    assert test.p_value == pytest.approx(stats.chi2.sf(chi2, 1), rel=1e-9)


def test_kaplan_meier_of_a_curve_that_falls_to_zero_warns_nothing():
    # Five customers who all churn: S = 0.8, 0.6, 0.4, 0.2, 0. The median is the first time S
    # drops below 0.5, day 3; log(0) at the end must not reach the reader as a RuntimeWarning.
    churn = pd.DataFrame({"duration_days": [1.0, 2.0, 3.0, 4.0, 5.0], "churned": True})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = kaplan_meier(churn, min_group_size=1)
    assert result.medians.loc["all", "median_days"] == 3.0
    assert result.survival_at(4)["survival"].tolist() == pytest.approx([0.2])


# --- CLV: a forced model that could not be fitted -----------------------------------------------------


def test_holdout_with_a_forced_model_that_failed_names_it_and_its_error(simulated_holdout, monkeypatch):
    import crm_lib.clv.validation as validation

    real = validation.fit_model

    def fit_or_fail(summary, name, **kwargs):
        if name == "pareto_nbd":
            raise ModelFitError("Pareto/NBD: no convergence after 2000 iterations")
        return real(summary, name, **kwargs)

    monkeypatch.setattr(validation, "fit_model", fit_or_fail)
    cal = simulated_holdout(600)
    auto = clv.holdout_validation(cal, ("bg_nbd", "pareto_nbd"))
    assert auto.winner == "bg_nbd" and auto.runner_up is None
    # the failed model keeps its row: not converged, with its error, shown as "no"
    assert auto.table.loc["pareto_nbd", "converged"] == False  # noqa: E712 (NaN would read as converged)
    assert auto.table.loc["pareto_nbd", "error"] == "Pareto/NBD: no convergence after 2000 iterations"
    assert auto.formatted().loc["Pareto/NBD", "converged"] == "no"
    with pytest.raises(ModelFitError, match=r"^model='pareto_nbd' was requested but could not be fitted: "
                                            r"Pareto/NBD: no convergence after 2000 iterations$"):
        clv.holdout_validation(cal, ("bg_nbd", "pareto_nbd"), choose="pareto_nbd")


# --- models: a start value, customers left out -------------------------------------------------------


def test_bg_bb_from_a_given_start_reaches_the_published_estimates():
    # Fader, Hardie & Shang (2010), table 2 (donations): alpha 1.204, beta 0.750, gamma 0.657,
    # delta 2.783. Started far from them (all 3) and next to them, the fit lands on the table.
    donations = load_dataset("donations.csv")
    for start in ([3.0, 3.0, 3.0, 3.0], [1.2, 0.75, 0.66, 2.8]):
        fit = BetaGeoBetaBinomFit().fit(donations["frequency"], donations["recency"], donations["periods"],
                                        weights=donations["weights"], initial_params=start)
        np.testing.assert_allclose(fit.params_, [1.204, 0.750, 0.657, 2.783], atol=1e-3)


def test_gamma_gamma_exclude_counts_the_customers_left_out_and_fits_the_rest():
    rng = np.random.default_rng(5)
    frequency = rng.integers(1, 6, 200).astype(float)
    spend = rng.gamma(4.0, 10.0, 200)
    weights = np.ones(200)
    weights[:10] = 3.0
    spend[[0, 1, 50]] = 0.0  # free orders only: two rows of weight 3 and one of weight 1
    fit = GammaGammaFit().fit(frequency, spend, weights=weights, nonpositive_spend="exclude")
    assert fit.n_excluded_ == 7.0
    keep = spend > 0
    clean = GammaGammaFit().fit(frequency[keep], spend[keep], weights=weights[keep])
    np.testing.assert_allclose(fit.params_, clean.params_, rtol=1e-8)
    assert clean.n_excluded_ == 0.0


# --- loyalty: small groups, empty nulls, the log line, the statistic's name ---------------------------


def test_group_difference_needs_two_customers_on_each_side():
    values = np.array([[1.0, 2.0, 3.0, 4.0, 5.0]] * 3)
    long = np.array([[True, True, False, False, False]] * 3)
    use = np.array([[True, True, True, True, True],    # 2 long, 3 short
                    [True, True, True, True, False],   # 2 long, 2 short
                    [True, True, True, False, False]])  # 2 long, 1 short
    diff = _group_difference(values, use, long)
    # long mean 1.5; short means 4 and 3.5; one short customer is no mean to compare
    np.testing.assert_allclose(diff[:2], [1.5 - 4.0, 1.5 - 3.5])
    assert np.isnan(diff[2])


def test_monte_carlo_p_value_without_a_usable_null_or_observation_is_nan():
    assert np.isnan(loyalty.monte_carlo_p_value(1.0, np.array([np.nan, np.inf])))
    assert np.isnan(loyalty.monte_carlo_p_value(np.nan, np.arange(9.0)))
    # one usable draw below the observation: 2 min(1, 2) / 2 = 1
    assert loyalty.monte_carlo_p_value(1.0, np.array([0.0, np.nan])) == 1.0


def test_lifetime_durations_logs_customers_censored_and_rule(caplog):
    # The docstring's example: CDNOW Pareto/NBD (weeks), two customers whose P(alive) falls
    # below 0.5 before mid-1998, so neither lifetime is censored.
    model = ParetoNBDFitter()
    model.params_ = pd.Series({"r": 0.553, "alpha": 10.58, "s": 0.606, "beta": 11.67})
    tx = pd.DataFrame({"customer_id": ["a", "a", "b"], "amount": [10.0, 12.0, 8.0],
                       "date": pd.to_datetime(["1997-01-06", "1997-02-03", "1997-01-06"])})
    with caplog.at_level(logging.INFO, logger="crm_lib.loyalty.lifetime"):
        out = loyalty.lifetime_durations(tx, model, time_unit="W", observation_end="1998-06-30")
    assert not out["censored"].any()
    assert "lifetimes of 2 customers: 0 censored, threshold 0.50, crossing=last" in caplog.messages


def test_h2_tests_are_t_statistics():
    rng = np.random.default_rng(1)
    panel = pd.DataFrame({"customer_id": np.repeat(np.arange(30), 4), "tenure_period": np.tile(np.arange(4), 30),
                          "profit": rng.normal(10, 2, 120)})
    result = loyalty.test_profit_tenure(panel)
    assert [t.statistic_name for t in result.tests] == ["t", "t"]


def test_practical_effect_default_is_the_notebook_knob_everywhere():
    # One default from notebook to crm_lib (STYLE.md): 05_loyalty_profit's parameters cell.
    cells = json.loads((REPO / "notebooks" / "05_loyalty_profit.ipynb").read_text())["cells"]
    source = "".join(next(c for c in cells if "parameters" in c["metadata"].get("tags", []))["source"])
    knob = float(source.split("practical_effect = ")[1].split()[0])
    assert knob == 0.05
    for function in (loyalty.calibrated_tests, loyalty.calibrated_from_bases, loyalty.calibrate):
        assert inspect.signature(function).parameters["practical_effect"].default == knob, function.__name__


# --- seed-18 survivors: nullable draws, aliases, index, warnings, likelihood, the tracking hook -----------


def test_monte_carlo_p_value_reads_a_nullable_series_of_draws():
    # pandas' nullable floats: a failed draw is <NA>; it is dropped like NaN. Draws 0.5, 2, 3:
    # 2 at or above 1.0 -> 2 x min(3, 2) / 4 = 1.0; at 2.5: 1 above, 2 below -> 2 x 2 / 4 = 1.0;
    # at 4: none above -> 2 x 1 / 4 = 0.5
    draws = pd.Series([0.5, None, 2.0, 3.0], dtype="Float64")
    assert loyalty.monte_carlo_p_value(1.0, draws) == 1.0
    assert loyalty.monte_carlo_p_value(4.0, draws) == 0.5


def test_predict_is_the_conditional_expectation_and_keeps_the_index_of_any_series():
    model = clv.ModifiedBetaGeoFit()
    model.params_ = pd.Series({"r": 0.525, "alpha": 6.183, "a": 0.891, "b": 1.614})
    T = pd.Series([30.0, 38.0], index=["x", "y"])
    out = model.predict(10.0, np.array([2.0, 0.0]), np.array([20.0, 0.0]), T)
    assert isinstance(out, pd.Series) and list(out.index) == ["x", "y"]
    expected = model.conditional_expected_number_of_purchases_up_to_time(10.0, np.array([2.0, 0.0]),
                                                                         np.array([20.0, 0.0]), T.to_numpy())
    np.testing.assert_allclose(out.to_numpy(), expected)
    # Batislam et al. (2007), eq. 6, by hand for x = 0, T = 38 (t_x plays no role):
    r, alpha, a, b = 0.525, 6.183, 0.891, 1.614
    from scipy.special import hyp2f1

    numerator = (a + b) / (a - 1) * (1 - hyp2f1(r, b + 1, a + b, 10 / (alpha + 38 + 10)) * ((alpha + 38) / (alpha + 48)) ** r)
    assert out["y"] == pytest.approx(numerator / (1 + a / b * ((alpha + 38) / alpha) ** r))


def test_bg_nbd_for_very_frequent_buyers_warns_nothing_and_stays_finite():
    # x = 1,000-5,000 repeat purchases overflow 2F1; the fallback formula takes over without
    # letting inf x 0 reach the reader as a RuntimeWarning.
    model = clv.BetaGeoFit()
    model.params_ = pd.Series({"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426})
    x = np.array([1000.0, 5000.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = model.conditional_expected_number_of_purchases_up_to_time(39.0, x, np.array([70.0, 77.0]), 78.0)
    assert np.all(np.isfinite(out)) and np.all(out > 0)


def test_fits_without_an_analytic_gradient_warn_nothing():
    # BG/BB is fitted with numerical gradients: the optimiser must accept the options it is given.
    donations = load_dataset("donations.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        BetaGeoBetaBinomFit().fit(donations["frequency"], donations["recency"], donations["periods"],
                                  weights=donations["weights"])


def test_gamma_gamma_log_likelihood_is_note_025s_by_hand():
    # Fader, Hardie & Berger, note 025: the mean spend m of x purchases has density
    # Gamma(px + q) / (Gamma(px) Gamma(q)) v^q m^(px - 1) x^px / (v + x m)^(px + q).
    from scipy.special import gammaln

    rng = np.random.default_rng(2)
    x = rng.integers(1, 8, 300).astype(float)
    m = rng.gamma(5.0, 8.0, 300)
    fit = GammaGammaFit().fit(x, m)
    p, q, v = fit.params_.to_numpy()
    rows = (gammaln(p * x + q) - gammaln(p * x) - gammaln(q) + q * np.log(v) + (p * x - 1) * np.log(m)
            + p * x * np.log(x) - (p * x + q) * np.log(v + x * m))
    assert fit.log_likelihood_ == pytest.approx(rows.sum(), rel=1e-10)


def test_tracking_hook_prunes_old_sets_and_writes_the_scores(tmp_path):
    import types

    from crm_lib.clv.tracking import TRACKING_FILE, prediction_folder, track_run_predictions

    folder = prediction_folder(tmp_path, "monthly")
    folder.mkdir(parents=True)
    for end in ("2020-01-31", "2020-02-29"):  # two earlier runs of a discrete-time model (not scored)
        pd.DataFrame({"clv": [1.0]}).to_parquet(folder / f"{end}.parquet")
        (folder / f"{end}.json").write_text(json.dumps({"transaction_model": {"name": "bg_bb"}}))
    log = types.SimpleNamespace(observation_end=pd.Timestamp("2020-03-31"), time_unit="W",
                                transactions=pd.DataFrame({"customer_id": [], "date": [], "amount": []}))
    cache = tmp_path / "cache"
    cache.mkdir()
    ctx = types.SimpleNamespace(log=log, knobs={}, cache_dir=cache)
    report = tmp_path / "report"
    report.mkdir()
    # keep 2 runs: this one and the newest earlier set; the older set is deleted
    assert track_run_predictions(ctx, tmp_path, "monthly", report, keep_runs=2) == []
    assert sorted(p.name for p in folder.iterdir()) == ["2020-02-29.json", "2020-02-29.parquet"]
    assert (report / TRACKING_FILE).read_text() == (
        '{\n "observation_end": "2020-03-31",\n "run": "monthly",\n "scores": []\n}\n')
    # no retention: nothing deleted
    assert track_run_predictions(ctx, tmp_path, "monthly", report) == []
    assert len(list(folder.iterdir())) == 2


def test_bg_bb_conditional_expectation_equals_lifetimes_on_the_donations_estimates():
    # FHS (2010), eq. 13 at table 2's estimates, against lifetimes' BetaGeoBetaBinomFitter
    # (an independent implementation), for histories of none to all 6 opportunities, 5 and 10 ahead.
    import lifetimes

    params = pd.Series({"alpha": 1.204, "beta": 0.750, "gamma": 0.657, "delta": 2.783})
    ours, theirs = BetaGeoBetaBinomFit(), lifetimes.BetaGeoBetaBinomFitter()
    ours.params_, theirs.params_ = params, params
    x, tx = np.array([0.0, 1.0, 3.0, 6.0, 2.0]), np.array([0.0, 1.0, 5.0, 6.0, 6.0])
    for m in (5, 10):
        np.testing.assert_allclose(ours.conditional_expected_number_of_purchases_up_to_time(m, x, tx, 6.0),
                                   theirs.conditional_expected_number_of_purchases_up_to_time(m, x, tx, 6.0), rtol=1e-9)
    series = ours.conditional_expected_number_of_purchases_up_to_time(5, pd.Series(x, index=list("abcde")), tx, 6.0)
    assert list(series.index) == list("abcde")


# --- seed-19 survivors ---------------------------------------------------------------------------------


def test_prediction_set_records_both_models_and_pruning_is_logged(tmp_path, caplog):
    from crm_lib.clv.tracking import PREDICTION_COLUMNS, prune_prediction_sets, store_prediction_set

    bg = clv.BetaGeoFit()
    bg.params_ = pd.Series({"r": 0.25, "alpha": 4.0, "a": 0.8, "b": 2.5})
    bg.log_params_covariance_ = np.eye(4) * 0.01
    gg = GammaGammaFit()
    gg.params_ = pd.Series({"p": 6.0, "q": 4.0, "v": 15.0})
    values = pd.DataFrame({c: [1.0, 2.0] for c in PREDICTION_COLUMNS}, index=[101, 102])
    values.attrs.update(horizon_months=12, gross_margin=0.3)
    for end in ("2020-01-31", "2020-02-29"):
        store_prediction_set(values, bg, gg, tmp_path, observation_end=end, time_unit="W", horizon_periods=52)
    meta = json.loads((tmp_path / "2020-02-29.json").read_text())
    assert meta["spend_model"] == {"name": "gamma_gamma", "params": {"p": 6.0, "q": 4.0, "v": 15.0}}
    assert meta["transaction_model"]["name"] == "bg_nbd"
    assert meta["transaction_model"]["params"] == {"r": 0.25, "alpha": 4.0, "a": 0.8, "b": 2.5}
    assert meta["clv"] == {"horizon_months": 12, "gross_margin": 0.3} and meta["equity"] is None
    assert (meta["observation_end"], meta["time_unit"], meta["horizon_periods"]) == ("2020-02-29", "W", 52.0)
    assert list(pd.read_parquet(tmp_path / "2020-02-29.parquet").index) == ["101", "102"]
    with caplog.at_level(logging.INFO, logger="crm_lib.clv.tracking"):
        assert prune_prediction_sets(tmp_path, keep=1, before="2020-03-31") == ["2020-01-31"]
    assert "predictions of 2020-01-31 deleted (keeping the last 2 runs)" in caplog.messages
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2020-02-29.json", "2020-02-29.parquet"]


def test_min_repeat_buyers_is_the_fitters_own_setting():
    frequency = np.r_[np.zeros(30), np.ones(6), np.full(3, 2.0)]
    recency = np.r_[np.zeros(30), np.full(6, 10.0), np.full(3, 20.0)]
    T = np.full(39, 30.0)
    with pytest.raises(ModelFitError, match=r"only 9 of 39 customers made a repeat purchase; at least 10 are needed"):
        clv.BetaGeoFit(min_repeat_buyers=10).fit(frequency, recency, T)
    with pytest.raises(ModelFitError, match=r"at least 20 are needed"):
        clv.BetaGeoFit().fit(frequency, recency, T)
    assert clv.BetaGeoFit(min_repeat_buyers=5).min_repeat_buyers == 5


def test_null_base_is_reproducible_from_its_seed():
    from crm_lib.loyalty.null import null_base, observed_base

    tx, _ = loyalty.simulate_loyalty_log(40, seed=2, observation_days=200)
    base = observed_base(tx)
    draw = lambda seed: null_base(base, (0.8, 25.0, 0.6, 120.0), (6.0, 4.0, 15.0), n_draws=3, seed=seed)  # noqa: E731
    first, again, other = draw(7), draw(7), draw(8)
    np.testing.assert_array_equal(first.day, again.day)
    np.testing.assert_array_equal(first.amount, again.amount)
    assert len(first.day) != len(other.day) or not np.array_equal(first.amount, other.amount)


def test_group_difference_of_an_empty_side_is_nan_without_a_warning():
    values = np.array([[1.0, 2.0, 3.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        diff = _group_difference(values, np.array([[True, True, True]]), np.array([[False, False, False]]))
    assert np.isnan(diff[0])


def test_p_alive_at_a_purchase_that_a_model_cannot_evaluate_is_one(caplog):
    from crm_lib.loyalty.lifetime import _p_alive

    class NaNAtPurchase:  # as lifetimes' Pareto/NBD does for large x right at a purchase
        def conditional_probability_alive(self, frequency, recency, T):
            return np.where(T == recency, np.nan, 0.25)

    with caplog.at_level(logging.INFO, logger="crm_lib.loyalty.lifetime"):
        p = _p_alive(NaNAtPurchase(), np.array([3.0, 3.0, 1.0]), np.array([10.0, 10.0, 5.0]), np.array([10.0, 12.0, 5.0]))
    # Fader & Hardie (2005), note 009: at T = t_x the Pareto/NBD P(alive) is exactly 1
    assert p.tolist() == [1.0, 0.25, 1.0]
    assert "P(alive) at T = t_x returned NaN for 2 histories; set to its limit 1" in caplog.messages


def test_cost_share_of_a_customer_without_revenue_is_missing():
    tx = pd.DataFrame({"customer_id": ["a", "a", "b", "b"],
                       "date": pd.to_datetime(["2020-01-01", "2020-01-20", "2020-01-02", "2020-01-25"]),
                       "amount": [0.0, 0.0, 10.0, 30.0]})
    durations = pd.DataFrame({"first_purchase": pd.to_datetime(["2020-01-01", "2020-01-02"]),
                              "lifetime_end": pd.to_datetime(["2020-02-01", "2020-02-01"]),
                              "duration": [31.0, 30.0], "duration_days": [31.0, 30.0], "censored": [False, False]},
                             index=pd.Index(["a", "b"], name="customer_id"))
    out = loyalty.lifetime_profit(tx, durations, gross_margin=0.5, cost_per_order=2.0)
    # b: revenue 40, cost 2 orders x 2 = 4, cost share 10%; a bought only free orders: no share
    assert out.loc["b", "cost_share"] == pytest.approx(0.1)
    assert np.isnan(out.loc["a", "cost_share"])


def test_segment_example_of_a_cell_of_one_time_buyers():
    customers = pd.DataFrame({
        "segment": ["strangers", "strangers", "strangers", "true friends", "true friends"],
        "duration": [1.0, 2.0, 3.0, 10.0, 12.0], "profit": [1.0, 2.0, 3.0, 10.0, 12.0], "orders": [1, 1, 1, 1, 3]},
        index=["s1", "s2", "s3", "t1", "t2"])
    examples = loyalty.segment_examples(customers)
    # strangers: nobody has 2 orders, so the whole cell; s2 sits at its median ranks.
    # true friends: only t2 has 2 orders or more.
    assert examples.to_dict() == {"strangers": "s2", "true friends": "t2"}


# --- seed-20 survivors -----------------------------------------------------------------------------------


def test_normal_theory_p_value_without_spread_or_observation_is_nan():
    from crm_lib.loyalty.calibration import normal_theory_p_value

    assert np.isnan(normal_theory_p_value(1.0, np.array([2.0, 2.0, 2.0])))  # no spread: no normal to fit
    assert np.isnan(normal_theory_p_value(np.nan, np.array([1.0, 2.0, 3.0])))
    assert np.isnan(normal_theory_p_value(1.0, np.array([2.0, np.nan])))  # one usable draw


def test_bootstrap_spearman_interval_depends_on_ranks_only():
    from crm_lib.loyalty import bootstrap_correlation_ci

    rng = np.random.default_rng(4)
    x = rng.normal(size=60)
    y = x + rng.normal(size=60)
    spearman = bootstrap_correlation_ci(x, y, method="spearman", n_bootstrap=200, seed=3)
    # a monotone transform keeps every resample's ranks, so the same seed gives the same interval
    assert bootstrap_correlation_ci(x, np.exp(3 * y), method="spearman", n_bootstrap=200, seed=3) == pytest.approx(spearman)
    pearson = bootstrap_correlation_ci(x, np.exp(3 * y), method="pearson", n_bootstrap=200, seed=3)
    assert pearson != pytest.approx(spearman)
    lo, hi = bootstrap_correlation_ci(x, y, n_bootstrap=1, seed=3)  # one resample: a degenerate interval
    assert np.isfinite(lo) and lo == pytest.approx(hi)
    assert all(np.isnan(bootstrap_correlation_ci(x, y, n_bootstrap=0)))


def test_named_outputs_and_the_index_of_any_series_input():
    from crm_lib.loyalty import long_lived

    customers = pd.DataFrame({"duration": [1.0, 5.0, 9.0]}, index=["a", "b", "c"])
    assert long_lived(customers).name == "long_lived" and long_lived(customers).tolist() == [False, False, True]
    fit = GammaGammaFit().fit(*_spend_sample())
    assert fit.params_.name == "estimate" and fit.standard_errors_.name == "standard_error"
    T = pd.Series([30.0, 38.0], index=["x", "y"])
    frequency = pd.Series([2.0, 1.0], index=["x", "y"])
    for model, params in ((clv.BetaGeoFit(), {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}),
                          (clv.ModifiedBetaGeoFit(), {"r": 0.525, "alpha": 6.183, "a": 0.891, "b": 1.614})):
        model.params_ = pd.Series(params)
        for args in ((np.array([2.0, 1.0]), np.array([20.0, 5.0]), T), (frequency, np.array([20.0, 5.0]), T.to_numpy())):
            alive = model.conditional_probability_alive(*args)
            assert isinstance(alive, pd.Series) and list(alive.index) == ["x", "y"], type(model).__name__


def _spend_sample():
    rng = np.random.default_rng(9)
    return rng.integers(1, 6, 200).astype(float), rng.gamma(4.0, 10.0, 200)


# --- seed-21 survivors -----------------------------------------------------------------------------------


def test_a_minimum_of_repeat_buyers_is_enough():
    frequency = np.r_[np.zeros(30), np.ones(20)]
    recency = np.r_[np.zeros(30), np.linspace(1.0, 29.0, 20)]
    model = clv.BetaGeoFit()
    try:  # exactly 20 repeat buyers: enough to try a fit (whether these data identify it is another matter)
        model.fit(frequency, recency, np.full(50, 30.0))
    except ModelFitError as error:
        assert "made a repeat purchase" not in str(error)
    assert model.n_repeat_buyers_ == 20
    donations = load_dataset("donations.csv")
    bgbb = BetaGeoBetaBinomFit().fit(donations["frequency"], donations["recency"], donations["periods"],
                                     weights=donations["weights"])
    assert bgbb.n_histories_ == 22  # the 22 distinct (x, t_x) patterns of FHS (2010), table 1


def test_log_rank_report_mode_keeps_alpha_and_the_kaplan_meier_default_looks_from_day_0():
    churn = pd.DataFrame({"duration_days": [1.0, 2.0, 3.0], "churned": True, "channel": ["a", "a", "b"]})
    one_group = log_rank_test(churn.assign(channel="a"), group_col="channel", min_group_size=1, alpha=0.1,
                              errors="report")
    assert one_group.alpha == 0.1 and one_group.error.startswith("grouping column 'channel' has 1 group")
    km = kaplan_meier(pd.DataFrame({"duration_days": [0.0, 0.0, 2.0, 4.0, 6.0], "churned": True}), min_group_size=1)
    # from day 0 (S = 0.6 after the two day-0 churns): half of 0.6 is crossed at day 4 (S = 0.2)
    assert km.median_after().iloc[0] == 4.0 and km.median_after().name == "median_after_0_days"


def test_lapse_against_a_p_alive_of_zero_is_valid():
    from crm_lib.survival import lapse_vs_p_alive

    churn = pd.DataFrame({"days_since_last_purchase": [10.0, 400.0]}, index=["a", "b"])
    table = lapse_vs_p_alive(churn, pd.Series({"a": 1.0, "b": 0.0}), lapse_days=180)
    assert table.loc["all", "expected_churned_by_model"] == 1.0 and table.loc["lapsed", "mean_p_alive"] == 0.0


def test_custom_model_names_stay_in_the_comparison_table():
    from crm_lib.clv.validation import ModelComparison

    table = pd.DataFrame({"converged": [True], "holdout_rmse": [0.5], "error": [""]}, index=["my_model"])
    shown = ModelComparison(table=table, winner="my_model", runner_up=None, margin_pct=np.nan, fits={}).formatted()
    assert list(shown.index) == ["my_model"]


def test_hypotheses_battery_passes_alpha_to_every_hypothesis():
    rng = np.random.default_rng(2)
    customers = pd.DataFrame({"duration": rng.uniform(10, 100, 80), "profit": rng.normal(10, 5, 80),
                              "price": rng.normal(20, 3, 80), "cost_share": rng.uniform(0.1, 0.3, 80),
                              "cost_source": "cost column"})
    customers["profit"] += 0.05 * customers["duration"]
    panel = pd.DataFrame({"customer_id": np.repeat(np.arange(20), 4), "tenure_period": np.tile(np.arange(1, 5), 20),
                          "profit": rng.normal(5, 1, 80)})
    tests = loyalty.test_hypotheses(customers, panel, n_bootstrap=0, alpha=0.9)
    assert {h.alpha for h in tests.hypotheses} == {0.9}
