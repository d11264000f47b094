"""Contractual retention (sBG) against formulas written out here, and error messages
(issue 16: kills the mutants of crm_lib/retention.py that survived the first mutation run).

Public names only (``crm_lib.retention``), so the tests survive the fitter's move onto the
MLE base. The references are Fader & Hardie (2007, "How to project customer retention",
eq. 5-8) and brute-force sums of the survival curve (instead of 2F1) for Fader & Hardie
(2010, "Customer-base valuation in a contractual setting", eq. 4 and 6).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import betaln
from statsmodels.tools.numdiff import approx_hess

from crm_lib.exceptions import DataValidationError, ModelFitError, ParamsError
from crm_lib.retention import (
    ShiftedBetaGeometricFitter,
    fit_cohorts,
    survivors_from_contracts,
)

HIGH_END = [1000, 869, 743, 653, 593, 551, 517, 491]
REGULAR = [1000, 631, 468, 382, 326, 289, 262, 241]


def survival(t, alpha, beta):
    """S(t) = B(alpha, beta + t) / B(alpha, beta), Fader & Hardie (2007), eq. 7."""
    return np.exp(betaln(alpha, beta + np.asarray(t, dtype=float)) - betaln(alpha, beta))


def log_likelihood(alpha, beta, survivors):
    n = np.asarray(survivors, dtype=float)
    t = np.arange(1, len(n))
    lost = n[:-1] - n[1:]
    return float(np.sum(lost * (betaln(alpha + 1, beta + t - 1) - betaln(alpha, beta)))
                 + n[-1] * (betaln(alpha, beta + t[-1]) - betaln(alpha, beta)))


@pytest.fixture(scope="module")
def high_end() -> ShiftedBetaGeometricFitter:
    return ShiftedBetaGeometricFitter().fit(HIGH_END)


def test_fit_attributes_equal_independent_likelihood_and_hessian(high_end):
    alpha, beta = high_end.params_["alpha"], high_end.params_["beta"]
    assert high_end.log_likelihood_ == pytest.approx(log_likelihood(alpha, beta, HIGH_END), rel=1e-10)
    assert high_end.log_likelihood_ < 0
    hessian = approx_hess(np.array([alpha, beta]), lambda p: log_likelihood(p[0], p[1], HIGH_END))
    covariance = np.linalg.inv(-hessian)
    assert list(high_end.covariance_.index) == ["alpha", "beta"] == list(high_end.covariance_.columns)
    np.testing.assert_allclose(high_end.covariance_.to_numpy(dtype=float), covariance, rtol=0.01)
    frame = high_end.to_frame()
    assert list(frame.columns) == ["estimate", "standard_error", "lower_95", "upper_95"]
    assert list(frame.index) == ["alpha", "beta"]
    # 95% Wald intervals: estimate -/+ 1.96 standard errors (the rounded 97.5% normal quantile).
    np.testing.assert_allclose(frame["lower_95"], frame["estimate"] - 1.96 * frame["standard_error"], rtol=1e-6)
    np.testing.assert_allclose(frame["upper_95"], frame["estimate"] + 1.96 * frame["standard_error"], rtol=1e-6)
    np.testing.assert_allclose(frame["standard_error"], np.sqrt(np.diag(covariance)), rtol=0.01)
    np.testing.assert_allclose(frame["estimate"], [0.668, 3.806], atol=6e-4)  # published, F&H (2007)


def test_curves_equal_the_closed_forms(high_end):
    alpha, beta = high_end.params_["alpha"], high_end.params_["beta"]
    s = high_end.survival_function(10)
    assert list(s.index) == list(range(11)) and s.index.name == "period"
    np.testing.assert_allclose(s, survival(np.arange(11), alpha, beta), rtol=1e-12)
    r = high_end.retention_rates(10)
    assert list(r.index) == list(range(1, 11))
    # eq. 8: r_t = (beta + t - 1) / (alpha + beta + t - 1).
    t = np.arange(1, 11)
    np.testing.assert_allclose(r, (beta + t - 1) / (alpha + beta + t - 1), rtol=1e-12)
    projection = high_end.projection(10)
    np.testing.assert_allclose(projection["survivors_expected"], 1000 * survival(np.arange(11), alpha, beta))
    observed = projection.loc[projection["observed"], "retention_observed"].to_numpy()[1:]
    np.testing.assert_allclose(observed, np.array(HIGH_END[1:]) / np.array(HIGH_END[:-1]))


def test_lifetimes_and_values_equal_brute_force_sums(high_end):
    alpha, beta = high_end.params_["alpha"], high_end.params_["beta"]
    d = 0.10
    t = np.arange(0, 20_000)
    s = survival(t, alpha, beta)
    # DEL = sum_t S(t) / (1 + d)^t (F&H 2010, eq. 4); DERL after n - 1 renewals =
    # sum_{t >= n} S(t) / S(n - 1) / (1 + d)^(t - n) (eq. 6, next payment undiscounted).
    del_ = float(np.sum(s / (1 + d) ** t))
    assert high_end.discounted_expected_lifetime(d) == pytest.approx(del_, rel=1e-8)
    assert high_end.customer_lifetime_value(50.0, d) == pytest.approx(50.0 * del_, rel=1e-8)
    table = high_end.value_table(50.0, d, renewals=(0, 1, 4))
    for k in (0, 1, 4):
        n = k + 1
        derl = float(np.sum(s[n:] / s[n - 1] / (1 + d) ** (t[n:] - n)))
        assert high_end.discounted_expected_residual_lifetime(d, renewals=k) == pytest.approx(derl, rel=1e-8)
        row = table.loc[f"after {k} renewal{'s' if k != 1 else ''}"]
        assert row["renewals"] == k
        assert row["discounted_expected_lifetime"] == pytest.approx(derl, rel=1e-8)
        assert row["expected_value"] == pytest.approx(50.0 * derl, rel=1e-8)
        assert row["retention_next_period"] == pytest.approx((beta + n - 1) / (alpha + beta + n - 1))
    new = table.loc["new (before the first payment)"]
    assert new["discounted_expected_lifetime"] == pytest.approx(del_, rel=1e-8)
    assert new["retention_next_period"] == pytest.approx(beta / (alpha + beta))
    assert list(table.columns) == ["renewals", "discounted_expected_lifetime", "retention_next_period",
                                   "expected_value"]
    # Expected lifetime: alpha < 1 here, so infinite without a horizon; with one, sum of S(t).
    assert high_end.expected_lifetime() == np.inf
    assert high_end.expected_lifetime(12) == pytest.approx(float(np.sum(survival(np.arange(12), alpha, beta))))
    with pytest.raises(ParamsError, match=r"discount_rate=0 must be positive"):
        high_end.discounted_expected_residual_lifetime(0)


def test_expected_lifetime_closed_form_for_alpha_above_one():
    fitter = ShiftedBetaGeometricFitter().fit([1000, 500, 260, 140, 80, 47, 28])
    alpha, beta = fitter.params_["alpha"], fitter.params_["beta"]
    assert alpha > 1
    expected = float(np.sum(survival(np.arange(200_000), alpha, beta)))
    assert fitter.expected_lifetime() == pytest.approx((alpha + beta - 1) / (alpha - 1))
    assert fitter.expected_lifetime() == pytest.approx(expected, rel=1e-3)


def test_summary_states_the_fitted_figures(high_end):
    alpha, beta = high_end.params_["alpha"], high_end.params_["beta"]
    text = high_end.summary()
    assert text.startswith("sBG fitted on 1,000 customers (converged)")
    assert "Shifted-beta-geometric model (Fader & Hardie 2007) on 1 cohort:" in text
    assert f"{alpha:.4f}" in text and f"{high_end.standard_errors_['alpha']:.4f}" in text
    assert f"{beta:.4f}" in text and f"{high_end.standard_errors_['beta']:.4f}" in text
    assert f"log-likelihood {high_end.log_likelihood_:,.2f}" in text
    assert f"first-period retention {beta / (alpha + beta):.1%}" in text
    assert f"rising to {(beta + 9) / (alpha + beta + 9):.1%} by period 10" in text


def test_unfitted_and_unidentified_models_say_what_to_do():
    with pytest.raises(ModelFitError, match=r"not fitted yet; call fit\(\) first"):
        ShiftedBetaGeometricFitter().survival_function(3)
    with pytest.raises(ModelFitError, match=r"no customer cancelled in any cohort \(a, b\)"):
        ShiftedBetaGeometricFitter().fit({"a": [100, 100, 100], "b": [50, 50]})
    with pytest.raises(DataValidationError, match=r"cohort 'a' has 1 survivor count\(s\)"):
        ShiftedBetaGeometricFitter().fit({"a": [100]})
    with pytest.raises(DataValidationError, match=r"cohort 'a': survivor counts must be whole numbers >= 0"):
        ShiftedBetaGeometricFitter().fit({"a": [100, 90.5, 80]})
    with pytest.raises(DataValidationError, match=r"cohort 'a' starts with 0 customers; drop it"):
        ShiftedBetaGeometricFitter().fit({"a": [0, 0, 0]})


def test_fit_cohorts_table_equals_one_fit_per_cohort():
    table = fit_cohorts({"high end": HIGH_END, "regular": REGULAR[:5]})
    assert table.index.name == "cohort" and list(table.index) == ["high end", "regular"]
    for name, counts in (("high end", HIGH_END), ("regular", REGULAR[:5])):
        single = ShiftedBetaGeometricFitter().fit(counts)
        row = table.loc[name]
        assert row["alpha"] == pytest.approx(single.params_["alpha"], rel=1e-6)
        assert row["beta_se"] == pytest.approx(single.standard_errors_["beta"], rel=1e-6)
        assert row["log_likelihood"] == pytest.approx(log_likelihood(row["alpha"], row["beta"], counts), rel=1e-8)
        assert row["periods_observed"] == len(counts) - 1 and row["cohort_size"] == 1000


def test_survivors_from_contracts_counts_anniversaries_by_hand():
    contracts = pd.DataFrame({
        "start_date": ["2020-01-10", "2020-03-01", "2020-06-30", "2020-12-31", "2021-02-01", "2021-05-05"],
        "cancel_date": [None, "2021-02-28", "2021-06-30", "2022-01-15", None, "2021-08-04"],
    })
    counts = survivors_from_contracts(contracts, observation_end="2023-01-01")
    # 2020 cohort (4 contracts): 1st anniversaries 2021-01-10, 03-01, 06-30, 12-31: the one
    # cancelled 2021-02-28 is gone by its 03-01 anniversary, the one cancelled on its 06-30
    # anniversary still counts; 2nd anniversaries (2022): the 2022-01-15 cancellation is
    # before its 2022-12-31 anniversary. All reached the 2nd anniversary by 2023-01-01, not the 3rd.
    assert counts.loc["2020"].dropna().tolist() == [4, 3, 1]
    # 2021 cohort: 1st anniversaries 2022-02-01 and 2022-05-05; the second contract was
    # cancelled on 2021-08-04, before it. The 2nd anniversary (2023-05-05) is after the end.
    assert counts.loc["2021"].dropna().tolist() == [2, 1]
    with pytest.raises(DataValidationError, match=r"1 contracts are cancelled before they start \(e\.g\. row 0\)"):
        survivors_from_contracts(contracts.assign(cancel_date=["2019-01-01", None, None, None, None, None]))
    with pytest.raises(ParamsError, match=r"period='W' is not supported"):
        survivors_from_contracts(contracts, period="W")
    with pytest.raises(ParamsError, match=r"column 'end' not found"):
        survivors_from_contracts(contracts, cancel_col="end")
    with pytest.raises(DataValidationError, match=r"column 'start_date' has 1 of 6 values that are not dates"):
        survivors_from_contracts(contracts.assign(start_date=["x"] + contracts["start_date"].tolist()[1:]))


def test_value_by_cohort_rows_equal_each_model(high_end):
    from crm_lib.retention import fit_cohort_models, project_cohorts, value_by_cohort

    models = fit_cohort_models({"high end": HIGH_END, "regular": REGULAR})
    table = value_by_cohort(models, margin_per_period=50.0, discount_rate=0.1, horizon=6)
    assert table.index.name == "cohort" and list(table.index) == ["high end", "regular"]
    row = table.loc["high end"]
    alpha, beta = high_end.params_["alpha"], high_end.params_["beta"]
    assert (row["alpha"], row["beta"]) == pytest.approx((alpha, beta), rel=1e-6)
    assert row["retention_first_period"] == pytest.approx(beta / (alpha + beta), rel=1e-6)
    assert row["expected_lifetime"] == np.inf
    assert row["expected_periods_within_horizon"] == pytest.approx(float(np.sum(survival(np.arange(6), alpha, beta))))
    assert row["discounted_expected_lifetime"] == pytest.approx(high_end.discounted_expected_lifetime(0.1), rel=1e-6)
    assert row["clv"] == pytest.approx(50.0 * row["discounted_expected_lifetime"])
    assert row["derl_after_first_renewal"] == pytest.approx(
        high_end.discounted_expected_residual_lifetime(0.1, renewals=1), rel=1e-6)
    stacked = project_cohorts(models, 9)
    assert stacked["cohort"].tolist() == ["high end"] * 10 + ["regular"] * 10
    assert stacked.loc[stacked["cohort"] == "regular", "survivors_observed"].dropna().tolist() == REGULAR


def test_survivor_inputs_in_every_form_give_the_same_fit():
    reference = ShiftedBetaGeometricFitter().fit(HIGH_END).params_
    for form in (HIGH_END, np.array(HIGH_END), pd.Series(HIGH_END, name="x"), {"x": HIGH_END},
                 pd.DataFrame([HIGH_END], index=["x"])):
        np.testing.assert_allclose(ShiftedBetaGeometricFitter().fit(form).params_, reference, rtol=1e-8)
    fitted = ShiftedBetaGeometricFitter().fit(pd.Series(HIGH_END, name="x"))
    assert list(fitted.survivors_.index) == ["x"] and list(fitted.survivors_.columns) == list(range(8))
    assert list(ShiftedBetaGeometricFitter().fit(pd.Series(HIGH_END)).survivors_.index) == ["cohort"]
    # Cohorts of different lengths: the shorter one is NaN after its last period.
    both = ShiftedBetaGeometricFitter().fit({"long": HIGH_END, "short": REGULAR[:4]})
    assert both.survivors_.loc["short"].isna().tolist() == [False] * 4 + [True] * 4


def test_survivor_count_errors_name_the_cohort_and_the_fix():
    with pytest.raises(DataValidationError, match=r"cohort 'a': survivors rise from 90 in period 1 to 95 in period 2"):
        ShiftedBetaGeometricFitter().fit({"a": [100, 90, 95]})
    with pytest.raises(DataValidationError, match=r"cohort 'a' has a gap in its survivor counts"):
        ShiftedBetaGeometricFitter().fit(pd.DataFrame([[100, np.nan, 80]], index=["a"]))
    with pytest.raises(DataValidationError, match=r"cohort 'a': survivor counts must be whole numbers >= 0"):
        ShiftedBetaGeometricFitter().fit({"a": [100, -1]})


def test_load_survivors_from_params_or_a_contracts_file(tmp_path):
    from crm_lib.retention import load_survivors

    counts = load_survivors({"high end": HIGH_END})
    assert counts.loc["high end"].tolist() == [float(n) for n in HIGH_END]
    path = tmp_path / "contracts.csv"
    path.write_text("begin,end\n2020-01-10,\n2020-03-01,2021-02-28\n2021-02-01,\n")
    from_file = load_survivors(contracts_path=str(path), start_col="begin", cancel_col="end",
                               observation_end="2022-06-01")
    assert from_file.loc["2020"].dropna().tolist() == [2, 1, 1] and from_file.loc["2021"].dropna().tolist() == [1, 1]
    monthly = load_survivors(contracts_path=str(path), start_col="begin", cancel_col="end", contract_period="M",
                             observation_end="2020-04-15")
    assert monthly.loc["2020-01"].dropna().tolist() == [1, 1, 1, 1]  # anniversaries 02-10, 03-10, 04-10
    with pytest.raises(ParamsError, match=r"not both"):
        load_survivors({"a": HIGH_END}, contracts_path=str(path))
    with pytest.raises(ParamsError, match=r"not neither"):
        load_survivors()
    with pytest.raises(ParamsError, match=r"contracts_path: file not found"):
        load_survivors(contracts_path=str(tmp_path / "missing.csv"))
    with pytest.raises(ParamsError, match=r"survivors\['a'\] must be a list of counts"):
        load_survivors({"a": "1000, 900"})
    with pytest.raises(ParamsError, match=r"survivors must map each cohort name to its survivor counts"):
        load_survivors([1000, 900])
