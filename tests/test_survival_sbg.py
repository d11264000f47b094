"""Contractual retention: the shifted-beta-geometric model (crm_lib.retention)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crm_lib.exceptions import DataValidationError, ModelFitError, ParamsError
from crm_lib.retention import (
    ShiftedBetaGeometricFitter,
    fit_cohorts,
    sbg_churn_probability,
    sbg_retention_rate,
    sbg_survival,
    survivors_from_contracts,
    survivors_from_params,
)

# Fader, P. S. & Hardie, B. G. S. (2007), "How to project customer retention",
# Journal of Interactive Marketing 21(1), 76-90: survivors of 1,000 customers over
# years 0-7 and the maximum-likelihood estimates they report.
HIGH_END = [1000, 869, 743, 653, 593, 551, 517, 491]
REGULAR = [1000, 631, 468, 382, 326, 289, 262, 241]


@pytest.mark.parametrize(
    ("survivors", "alpha", "beta"),
    [(HIGH_END, 0.668, 3.806), (REGULAR, 0.704, 1.182)],
    ids=["high end", "regular"],
)
def test_published_sbg_estimates(survivors, alpha, beta):
    fitter = ShiftedBetaGeometricFitter().fit(survivors)
    # Published to three decimals.
    assert fitter.params_["alpha"] == pytest.approx(alpha, abs=6e-4)
    assert fitter.params_["beta"] == pytest.approx(beta, abs=6e-4)
    # Standard errors: checked against an independent numerical Hessian of eq. 6-7 in
    # tests/test_strength_survival.py (test_sbg_standard_errors_equal_an_independent_numerical_hessian).


def test_fitted_curve_follows_the_published_counts():
    fitter = ShiftedBetaGeometricFitter().fit(HIGH_END)
    projection = fitter.projection(12)
    observed = projection[projection["observed"]]
    assert observed["survivors_observed"].tolist() == HIGH_END
    # Expected survivors at year 1 from the published estimates: 1000 * S(1) = 1000 * beta / (alpha + beta).
    assert projection.loc[1, "survivors_expected"] == pytest.approx(1000 * 3.806 / 4.474, abs=0.2)
    assert projection["period"].max() == 12 and (~projection["observed"]).sum() == 5
    # Retention rates rise (heterogeneity): r_1 = beta / (alpha + beta) = 3.806 / 4.474.
    r = projection["retention_expected"].to_numpy()[1:]
    assert r[0] == pytest.approx(3.806 / 4.474, abs=1e-3)
    assert np.all(np.diff(r) > 0)


def test_closed_forms_agree_with_each_other():
    alpha, beta = 0.704, 1.182
    t = np.arange(1, 30)
    s = sbg_survival(np.arange(0, 30), alpha, beta)
    # S(t) = S(t-1) - P(T = t) and S(t) / S(t-1) = r_t (Fader & Hardie 2007, eq. 5-8).
    np.testing.assert_allclose(s[1:], s[:-1] - sbg_churn_probability(t, alpha, beta), rtol=1e-10)
    np.testing.assert_allclose(s[1:] / s[:-1], sbg_retention_rate(t, alpha, beta), rtol=1e-10)
    assert s[0] == 1.0


def test_discounted_lifetimes_match_brute_force_sums():
    fitter = ShiftedBetaGeometricFitter().fit(REGULAR)
    alpha, beta = fitter.params_
    d = 0.1
    t = np.arange(0, 5000)
    s = sbg_survival(t, alpha, beta)
    # DEL = sum_{t>=0} S(t) / (1 + d)^t.
    assert fitter.discounted_expected_lifetime(d) == pytest.approx(np.sum(s / (1 + d) ** t), rel=1e-8)
    # DERL after n - 1 = 3 renewals: sum_{t>=4} S(t) / S(3) / (1 + d)^(t - 4) (Fader & Hardie 2010, eq. 5).
    n = 4
    brute = np.sum(s[n:] / s[n - 1] / (1 + d) ** (t[n:] - n))
    assert fitter.discounted_expected_residual_lifetime(d, renewals=n - 1) == pytest.approx(brute, rel=1e-8)
    assert fitter.customer_lifetime_value(50.0, d) == pytest.approx(50.0 * np.sum(s / (1 + d) ** t), rel=1e-8)
    values = fitter.value_table(50.0, d, renewals=(0, 3))
    assert values.loc["after 3 renewals", "expected_value"] == pytest.approx(50.0 * brute, rel=1e-8)
    # Customers who have renewed are worth more: the fickle ones have left.
    assert values["expected_value"].iloc[1] < values["expected_value"].iloc[2]


def test_expected_lifetime():
    fitter = ShiftedBetaGeometricFitter().fit(HIGH_END)
    # alpha < 1: infinite mean lifetime; a horizon gives the truncated sum of S(t).
    assert fitter.expected_lifetime() == float("inf")
    alpha, beta = fitter.params_
    assert fitter.expected_lifetime(horizon=10) == pytest.approx(sbg_survival(np.arange(10), alpha, beta).sum())
    # alpha > 1: E[T] = (alpha + beta - 1) / (alpha - 1), the mean of a shifted geometric under a beta.
    fitter.params_ = pd.Series({"alpha": 3.0, "beta": 2.0})
    assert fitter.expected_lifetime() == pytest.approx(2.0)
    assert fitter.expected_lifetime(horizon=20000) == pytest.approx(2.0, rel=1e-3)


def test_parameter_recovery_on_simulated_cohorts():
    rng = np.random.default_rng(2007)
    alpha, beta, n = 1.2, 4.0, 20_000
    theta = rng.beta(alpha, beta, n)
    lifetime = rng.geometric(theta)  # periods until cancellation, >= 1
    counts = [int((lifetime > t).sum()) for t in range(10)]
    fitter = ShiftedBetaGeometricFitter().fit(counts)
    for name, true in (("alpha", alpha), ("beta", beta)):
        assert fitter.params_[name] == pytest.approx(true, abs=3 * fitter.standard_errors_[name])


def test_several_cohorts_share_parameters():
    rng = np.random.default_rng(5)
    theta = rng.beta(0.8, 2.5, 30_000)
    lifetime = rng.geometric(theta)
    long = [int((lifetime[:15_000] > t).sum()) for t in range(8)]
    short = [int((lifetime[15_000:] > t).sum()) for t in range(4)]
    fitter = ShiftedBetaGeometricFitter().fit({"2019": long, "2022": short})
    assert fitter.params_["alpha"] == pytest.approx(0.8, abs=3 * fitter.standard_errors_["alpha"])
    assert fitter.survivors_.shape == (2, 8) and np.isnan(fitter.survivors_.loc["2022", 5])
    table = fit_cohorts({"high end": HIGH_END, "regular": REGULAR})
    assert table.loc["regular", "beta"] == pytest.approx(1.182, abs=6e-4)
    assert table["cohort_size"].tolist() == [1000, 1000]


@settings(max_examples=50, deadline=None)
@given(alpha=st.floats(0.05, 20), beta=st.floats(0.05, 20))
def test_survival_falls_and_retention_rises(alpha, beta):
    t = np.arange(0, 40)
    s = sbg_survival(t, alpha, beta)
    assert np.all(np.diff(s) < 0) and np.all((s > 0) & (s <= 1))
    assert np.all(np.diff(sbg_retention_rate(t[1:], alpha, beta)) > 0)


def test_bad_survivor_counts_are_clear_errors():
    with pytest.raises(DataValidationError, match=r"survivors rise from 743 in period 2 to 800 in period 3"):
        ShiftedBetaGeometricFitter().fit([1000, 869, 743, 800])
    with pytest.raises(DataValidationError, match=r"has 1 survivor count\(s\); give the cohort size and at least one"):
        ShiftedBetaGeometricFitter().fit([1000])
    with pytest.raises(DataValidationError, match="must be whole numbers >= 0"):
        ShiftedBetaGeometricFitter().fit([1000, 869.5])
    with pytest.raises(ModelFitError, match="no customer cancelled in any cohort"):
        ShiftedBetaGeometricFitter().fit([500, 500, 500])
    with pytest.raises(ModelFitError, match="not fitted yet; call fit"):
        ShiftedBetaGeometricFitter().projection(3)
    with pytest.raises(ParamsError, match="discount_rate=0 must be positive"):
        ShiftedBetaGeometricFitter().fit(REGULAR).discounted_expected_lifetime(0)


def test_survivors_from_params():
    frame = survivors_from_params({"high end": HIGH_END, "regular": REGULAR[:4]})
    assert frame.loc["regular"].tolist()[:4] == [1000, 631, 468, 382] and frame.loc["regular"].isna().sum() == 4
    with pytest.raises(ParamsError, match=r"survivors\['regular'\] must be a list of counts"):
        survivors_from_params({"regular": "1000, 631"})
    with pytest.raises(ParamsError, match="survivors must map each cohort name to its survivor counts"):
        survivors_from_params([1000, 631])


def test_survivors_from_contracts():
    contracts = pd.DataFrame(
        {
            "start_date": ["2020-01-15", "2020-03-01", "2020-06-30", "2021-02-01", "2021-05-01"],
            "cancel_date": ["2020-12-01", None, "2022-07-01", "2021-03-01", None],
        }
    )
    counts = survivors_from_contracts(contracts, period="Y", observation_end="2023-06-01")
    # 2020 cohort: 3 contracts. Year 1 (anniversaries 2021-01-15, 2021-03-01, 2021-06-30): the first
    # was cancelled on 2020-12-01 -> 2 left. Year 2 (to 2022-06-30): the third is cancelled on
    # 2022-07-01, after its second anniversary -> 2. Year 3 ends 2023-06-30 for the last contract,
    # after the observation end: not counted.
    assert counts.loc["2020"].dropna().tolist() == [3, 2, 2]
    # 2021 cohort: the 2021-02-01 contract is cancelled within its first year; years 1-2 observed.
    assert counts.loc["2021"].dropna().tolist() == [2, 1, 1]
    with pytest.raises(DataValidationError, match="1 contracts are cancelled before they start"):
        survivors_from_contracts(contracts.assign(cancel_date=["2019-01-01", None, None, None, None]))
    with pytest.raises(ParamsError, match="column 'end' not found"):
        survivors_from_contracts(contracts, cancel_col="end")


def test_cohort_models_projection_and_value(tmp_path):
    from crm_lib.retention import fit_cohort_models, load_survivors, project_cohorts, value_by_cohort

    models = fit_cohort_models({"high end": HIGH_END, "regular": REGULAR})
    assert list(models) == ["high end", "regular"]
    projection = project_cohorts(models, 12)
    assert projection.groupby("cohort").size().tolist() == [13, 13]
    values = value_by_cohort(models, margin_per_period=100.0, discount_rate=0.1, horizon=8)
    assert values.loc["regular", "clv"] == pytest.approx(100 * models["regular"].discounted_expected_lifetime(0.1))
    assert values.loc["high end", "retention_first_period"] == pytest.approx(3.806 / 4.474, abs=1e-3)
    # With only 8 years, the expected years within the horizon are below the infinite mean (alpha < 1).
    assert values["expected_lifetime"].tolist() == [float("inf")] * 2
    assert (values["expected_periods_within_horizon"] < 8).all()
    # High-end customers are worth more: they churn less.
    assert values.loc["high end", "clv"] > values.loc["regular", "clv"]

    path = tmp_path / "contracts.csv"
    path.write_text("start_date,cancel_date\n2020-01-01,2020-06-01\n2020-02-01,\n2020-03-01,2021-05-01\n")
    counts = load_survivors(contracts_path=str(path), observation_end="2022-12-31")
    assert counts.loc["2020"].dropna().tolist() == [3, 2, 1]
    with pytest.raises(ParamsError, match="give either survivors .* not both"):
        load_survivors({"a": [10, 5]}, contracts_path=str(path))
    with pytest.raises(ParamsError, match="contracts_path: file not found"):
        load_survivors(contracts_path=str(tmp_path / "missing.csv"))
