"""The words and units a reviewer reads next to a number (issue 16, survivors of mutation sample seed 17).

A table whose column says "churned" or a sentence that says "12 months" is part of the answer: a
mutant that renames the column, drops the unit or prints ``None`` instead of a figure survived the
fast tests because they compared numbers only. Expected texts are written out here by hand from
numbers chosen here (or from a paper's estimates), never read back from the function under test.
Public names only.
"""
from __future__ import annotations

import types

import numpy as np
import pandas as pd
import pytest

from crm_lib import clv, loyalty
from crm_lib.exceptions import ModelFitError
from crm_lib.models.shifted_beta_geo import ShiftedBetaGeometricFitter
from crm_lib.survival import cox_proportional_hazards, format_lapse_sensitivity

# --- survival: the lapse-sensitivity table -------------------------------------------------------


def test_lapse_sensitivity_table_shows_each_share_under_its_column_and_says_when_retention_is_unidentified():
    sensitivity = pd.DataFrame(
        {"customers": [1234, 1234], "churned_share": [0.25, 0.125], "reactivated_share": [0.0625, np.nan],
         "median_days": [200.0, np.nan], "retention_at_horizon": [0.5, np.nan],
         "identified_until_days": [400.0, 300.0], "retention_lower": [0.45, np.nan],
         "retention_upper": [0.55, np.nan]},
        index=pd.Index([90, 180], name="lapse_days"),
    )
    table = format_lapse_sensitivity(sensitivity, horizon_days=365)
    assert table.index.name == "lapse (days)"
    assert list(table.columns) == ["customers", "churned", "came back after a lapse", "median lifetime",
                                   "retention at 365 days", "interval"]
    assert table["customers"].tolist() == ["1,234", "1,234"]
    assert table["churned"].tolist() == ["25.0%", "12.5%"]
    assert table["came back after a lapse"].tolist() == ["6.2%", "n/a"]
    # 90 days: identified (curve runs to 400 > 365 days); 180 days: the curve ends at 300 days,
    # before the 365-day horizon, so the retention there is not identified and the page says why.
    assert table["retention at 365 days"].tolist() == ["50.0%", "not identified (curve ends at 300 days)"]
    assert table["interval"].tolist() == ["45.0% to 55.0%", "n/a to n/a"]


# --- survival: Cox ----------------------------------------------------------------------------------


def _churn(n: int = 300, seed: int = 4) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    amount = rng.lognormal(3, 0.8, n)
    time = rng.exponential(100 * np.exp(0.3 * np.log2(1 + amount)))
    censor = rng.uniform(0, 400, n)
    return pd.DataFrame({"duration_days": np.round(np.minimum(time, censor), 3), "churned": time <= censor,
                         "first_order_amount": amount})


def test_cox_proportional_hazards_column_reads_doubtful_or_no_evidence_against_at_alpha():
    cox = cox_proportional_hazards(_churn(), covariates=["first_order_amount"])
    shown = cox.ph_table()
    assert list(shown.columns) == ["correlation with time (ρ)", "χ²", "df", "p-value", "proportional hazards"]
    expected = ["doubtful" if p < 0.05 else "no evidence against" for p in cox.ph_test["p_value"]]
    assert shown["proportional hazards"].tolist() == expected


def test_cox_that_runs_out_of_iterations_says_no_convergence():
    with pytest.raises(ModelFitError, match=r"did not converge after 1 iterations \(no convergence\); check for a "
                                            r"covariate that separates"):
        cox_proportional_hazards(_churn(), covariates=["first_order_amount"], max_iterations=1)


# --- models: summaries ------------------------------------------------------------------------------


def test_shifted_beta_geometric_summary_states_mean_churn_and_retention_from_the_paper_estimates():
    # Fader & Hardie (2007), "How to project customer retention", high-end segment: alpha = 0.668,
    # beta = 3.806. Mean churn probability alpha / (alpha + beta) = 14.9%, first-period retention
    # 85.1%, retention rate in period 10 (beta + 9) / (alpha + beta + 9) = 95.0% (eq. 8).
    fit = ShiftedBetaGeometricFitter().fit([1000, 869, 743, 653, 593, 551, 517, 491])
    notes = fit.summary()
    assert ("Shifted-beta-geometric model (Fader & Hardie 2007) on 1 cohort: mean churn probability per period "
            "14.9%; first-period retention 85.1%, rising to 95.0% by period 10") in notes


def test_model_summary_flags_a_fit_that_did_not_converge():
    fit = ShiftedBetaGeometricFitter().fit([1000, 869, 743, 653, 593, 551, 517, 491])
    assert "(converged)" in fit.summary().splitlines()[0]
    fit.converged_ = False  # what the optimiser reports when it stops early
    assert "(NOT converged)" in fit.summary().splitlines()[0]


# --- CLV: the customer-equity sentence --------------------------------------------------------------


def _equity(horizon_months: int) -> clv.CustomerEquity:
    return clv.CustomerEquity(
        estimate=1234567.4, expected_lower=1000000.0, expected_upper=1500000.0, predictive_lower=900000.0,
        predictive_upper=1600000.0, level=0.95, n_customers=2357, n_draws=200, seed=7,
        horizon_months=horizon_months, expected_method="m1", predictive_method="m2",
        draws=np.array([90.0, 110.0]), predictive_draws=np.array([100.0, 100.0]))


def test_customer_equity_summary_names_the_horizon_in_months_and_both_intervals():
    # Standard deviations by hand: draws 90, 110 -> sqrt(200) = 14.1; realised minus expected
    # 10, -10 -> 14.1.
    assert _equity(12).summary() == (
        "Expected customer equity over 12 months: 1,234,567 (2,357 customers). 95% parameter-uncertainty "
        "interval of the expected equity: 1,000,000 to 1,500,000 (normal approximation to the maximum-likelihood "
        "estimates of both models, 200 draws). 95% predictive interval of the equity the base will realise: "
        "900,000 to 1,600,000 (the same draws plus each customer's purchases and spend simulated from the fitted "
        "models). Standard deviations: 14 from the parameters, 14 from customer-level noise; seed 7.")
    assert _equity(1).summary().startswith("Expected customer equity over 1 month: 1,234,567 ")


# --- loyalty: the calibrated table and the conclusion -----------------------------------------------


def _calibrated_test(**changes) -> loyalty.CalibratedTest:
    values = dict(hypothesis="H1", claim="long-lived customers are more profitable", statistic_name="rho",
                  observed=0.3125, null_mean=0.0625, null_low=-0.125, null_high=0.25, null_draws=99,
                  p_value=0.02, p_holm=0.0625, effect=0.25, effect_name="excess rho", expected_sign=1,
                  verdict="no evidence either way", explanation="", n=1500, censored_share=0.1)
    return loyalty.CalibratedTest(**{**values, **changes})


def test_format_calibration_shows_null_mean_range_and_both_p_values():
    tests = loyalty.CalibratedTests((_calibrated_test(), _calibrated_test(hypothesis="H2", p_value=0.0004,
                                                                          p_holm=0.0008, null_mean=1234.5)),
                                    pd.Series(dtype=float), pd.DataFrame(), 0.05, 0.05)
    table = loyalty.format_calibration(tests)
    # three significant figures below 1,000, whole numbers above
    assert table.loc["H1", "observed"] == "0.312"
    assert table.loc["H1", "no loyalty effect"] == "0.0625"
    assert table.loc["H2", "no loyalty effect"] == "1,234"
    assert table.loc["H1", "95% range without effect"] == "-0.125 to 0.25"
    assert table.loc["H1", "calibrated p"] == "0.020" and table.loc["H1", "Holm p"] == "0.062"
    assert table.loc["H2", "calibrated p"] == "< 0.001" and table.loc["H2", "Holm p"] == "< 0.001"
    assert table.loc["H1", "n"] == "1,500"


def _analysis() -> types.SimpleNamespace:
    verdicts = pd.DataFrame({"verdict": ["supported", "no evidence either way", "contradicted", "not testable"]},
                            index=pd.Index(["H1", "H2", "H3", "H4"], name="hypothesis"))
    matrix = types.SimpleNamespace(share_long_low_profit=0.4, share_high_profit_short=0.25)
    return types.SimpleNamespace(verdicts=lambda: verdicts, matrix=matrix, calibration=None)


def test_conclusion_says_whether_any_verdict_changes_with_the_analysis_choices():
    base = ("On this log, on classical tests that ignore the mechanical ties of P(alive) lifetimes (no calibration "
            "was run), **1 of 3 testable statements are supported** (H1); **contradicted**: H3; **no evidence "
            "either way**: H2. H4 could not be tested. Not all loyal customers are profitable: **40%** of the "
            "long-lived customers are in the low-profit group; and not all profitable customers are loyal: "
            "**25%** of the high-profit customers are short-lived.")
    assert loyalty.conclusion(_analysis()) == base
    stable = pd.DataFrame({"differs under": ["none", "none"]}, index=["H1", "H2"])
    assert loyalty.conclusion(_analysis(), stable) == (
        base + " No verdict changes with the analysis choices of the robustness table.")
    fragile = pd.DataFrame({"differs under": ["none", "profit split"]}, index=["H1", "H2"])
    assert loyalty.conclusion(_analysis(), fragile) == (
        base + " The verdicts of H2 change with at least one analysis choice (robustness table): read them with care.")


# --- messages and labels of seed-18 survivors ----------------------------------------------------------


def test_customer_equity_states_its_number_of_draws_and_refuses_negative_spend(cdnow_spend_fit):
    bg, gg, data = cdnow_spend_fit
    equity = clv.customer_equity(bg, gg, data.iloc[:200], n_draws=7, seed=1)
    assert equity.predictive_method.startswith("predictive interval: the same 7 parameter draws, each with every "
                                               "customer's purchases and spend over the horizon simulated")
    bad = data.iloc[:200].copy()
    bad.iloc[[3, 5], bad.columns.get_loc("monetary_value")] = [-4.5, np.nan]
    from crm_lib.exceptions import DataValidationError

    with pytest.raises(DataValidationError) as error:
        clv.customer_equity(bg, gg, bad, n_draws=2)
    assert str(error.value) == (
        "customer equity: column 'monetary_value' has 2 of 200 values that are missing or negative (e.g. -4.5); "
        "build the summary with crm_lib.summary.rfm_summary from a log without returns (negative_amounts='drop').")


@pytest.fixture(scope="module")
def cdnow_spend_fit():
    from lifetimes.datasets import load_cdnow_summary_data_with_monetary_value

    data = load_cdnow_summary_data_with_monetary_value()
    bg = clv.fit_model(data, "bg_nbd")
    return bg, clv.fit_spend_model(data), data


def test_survival_notes_and_p_values_in_words():
    from crm_lib.survival import format_p, kaplan_meier, value_band_labels
    from crm_lib.exceptions import ParamsError

    assert (format_p(float("nan")), format_p(0.0004), format_p(0.04213)) == ("n/a", "<0.001", "0.042")
    # a churn table without its lapse rule (no attrs): customers without follow-up are named
    churn = pd.DataFrame({"duration_days": [5.0, 8.0, np.nan, 3.0], "churned": [True, False, False, True]})
    km = kaplan_meier(churn, min_group_size=1)
    assert km.notes == ("1 of 4 customers left out: acquired within the end of the data, so no churn of theirs could "
                        "be recognised yet.",)
    churn.attrs["lapse_days"] = 90
    assert kaplan_meier(churn, min_group_size=1).notes[0].startswith("1 of 4 customers left out: acquired within the "
                                                                     "last 90 days")
    with pytest.raises(ParamsError, match=r"^value_bands=0 must be at least 1\.$"):
        value_band_labels(pd.Series([1.0, 2.0]), bands=0)


def test_loyalty_and_bg_bb_refusals_name_the_knob_and_the_model():
    from crm_lib.exceptions import DataValidationError, ParamsError
    from crm_lib.models import BetaGeoBetaBinomFit

    tx = pd.DataFrame({"customer_id": ["a", "a"], "date": pd.to_datetime(["2020-01-01", "2020-02-15"]),
                       "amount": [10.0, 12.0]})
    customers = pd.DataFrame({"duration": [60.0], "duration_days": [60.0], "censored": [False],
                              "first_purchase": pd.to_datetime(["2020-01-01"]),
                              "lifetime_end": pd.to_datetime(["2020-03-01"])}, index=pd.Index(["a"], name="customer_id"))
    with pytest.raises(ParamsError, match=r"^panel_end='end' is not known; use one of lifetime_end, last_purchase\.$"):
        loyalty.tenure_panel(tx, customers, panel_end="end")
    with pytest.raises(DataValidationError, match=r"^BG/BB: 1 of 2 customers have recency larger than T"):
        BetaGeoBetaBinomFit().fit([1.0, 2.0], [1.0, 7.0], [6.0, 6.0])


def test_contracts_with_a_blank_cancellation_are_active():
    from crm_lib.exceptions import DataValidationError
    from crm_lib.retention import survivors_from_contracts

    contracts = pd.DataFrame({"start_date": ["2020-01-01", "2020-01-15", "2020-01-20"],
                              "cancel_date": ["2020-02-10", "", "  "]})
    survivors = survivors_from_contracts(contracts, period="M", observation_end="2020-04-30")
    # one cohort (January) of 3, followed to three monthly anniversaries by 04-30: the first
    # contract renews on 02-01 and is cancelled (02-10) before 03-01; the two blank ones are active
    assert survivors.loc["2020-01"].tolist() == [3.0, 3.0, 2.0, 2.0]
    contracts.loc[2, "cancel_date"] = "soon"
    with pytest.raises(DataValidationError, match=r"column 'cancel_date' has 1 values that are not dates \(e\.g\. "
                                                  r"'soon'\); leave it empty for active contracts\."):
        survivors_from_contracts(contracts, period="M", observation_end="2020-04-30")


def test_robustness_rows_say_what_changed_and_a_model_row_uses_that_model():
    from tests.test_strength_loyalty_outputs import _pnbd
    from lifetimes import ParetoNBDFitter

    tx, _ = loyalty.simulate_loyalty_log(150, seed=5, observation_days=300, price_lift_per_year=0.5)
    other = ParetoNBDFitter()
    other.params_ = pd.Series({"r": 0.8, "alpha": 25.0, "s": 1.2, "beta": 60.0})  # twice the drop-out rate
    table = loyalty.robustness_table(tx, {"Pareto/NBD": _pnbd(), "faster drop-out": other}, thresholds=(0.3,),
                                     split_quantiles=(), crossings=(), panel_ends=(), gross_margin=0.3,
                                     cost_per_order=1.5, seed=2)
    assert table["changed"].to_dict() == {"baseline": "none", "P(alive) threshold 0.3": "threshold",
                                          "model faster drop-out": "model"}
    alone = loyalty.loyalty_analysis(tx, other, n_bootstrap=0, gross_margin=0.3, cost_per_order=1.5, seed=2)
    assert table.loc["model faster drop-out", "median duration"] == pytest.approx(alone.customers["duration"].median())
    assert table.loc["model faster drop-out", "median duration"] != table.loc["baseline", "median duration"]


def test_calibrated_verdicts_table_and_conclusion_words():
    tests = loyalty.CalibratedTests((_calibrated_test(note="H4 is not separate evidence"),), pd.Series(dtype=float),
                                    pd.DataFrame(), 0.05, 0.05)
    verdicts = tests.verdicts()
    assert list(verdicts.columns) == ["claim", "verdict", "explanation", "note"]
    assert verdicts.loc["H1", "note"] == "H4 is not separate evidence"
    analysis = _analysis()
    all_tested = pd.DataFrame({"verdict": ["supported", "contradicted"]}, index=pd.Index(["H1", "H2"], name="hypothesis"))
    analysis.verdicts = lambda: all_tested
    assert loyalty.conclusion(analysis).startswith(
        "On this log, on classical tests that ignore the mechanical ties of P(alive) lifetimes (no calibration was "
        "run), **1 of 2 testable statements are supported** (H1); **contradicted**: H2. Not all loyal customers")


def test_model_and_panel_column_checks_name_their_model_and_table():
    from crm_lib.exceptions import DataValidationError

    with pytest.raises(DataValidationError, match=r"Pareto/NBD"):
        clv.fit_model(pd.DataFrame({"frequency": [1.0], "recency": [1.0]}), "pareto_nbd")
    with pytest.raises(DataValidationError, match=r"^panel: column\(s\) \['profit'\] not found"):
        loyalty.test_profit_tenure(pd.DataFrame({"customer_id": [1], "tenure_period": [1]}))
