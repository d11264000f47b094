"""Bad input gets a specific exception whose message says what is wrong and what to do
(issue 16; STYLE.md "Errors a user can act on"). Each message is compared whole or by its
actionable part: a mutation that drops the value, the knob or the advice fails here.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crm_lib import clv, loyalty
from crm_lib.exceptions import DataValidationError, ModelFitError, ParamsError
from crm_lib.models import BetaGeoBetaBinomFit, GammaGammaFit


def _bg() -> clv.BetaGeoFit:
    model = clv.BetaGeoFit()
    model.params_ = pd.Series({"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426})
    return model


def _gg() -> GammaGammaFit:
    model = GammaGammaFit()
    model.params_ = pd.Series({"p": 6.25, "q": 3.74, "v": 15.44})
    return model


def test_model_refusals():
    with pytest.raises(DataValidationError, match=r"^BG/BB: n_periods must be whole numbers of purchase opportunities\.$"):
        BetaGeoBetaBinomFit().fit([1.0], [1.0], [5.5])
    with pytest.raises(ModelFitError) as error:
        BetaGeoBetaBinomFit().fit([0.0, 1.0], [0.0, 3.0], [6.0, 6.0], weights=[30, 5])
    assert str(error.value) == ("BG/BB: only 5 of 35 customers bought in any period; at least 20 are needed. Use more "
                                "periods or more customers.")
    with pytest.raises(ModelFitError) as error:
        GammaGammaFit().fit([1.0, 2.0, 0.0], [10.0, 12.0, 0.0])
    assert str(error.value) == ("Gamma-Gamma: only 2 repeat buyers; at least 20 are needed to fit the spend model. Use "
                                "a longer period or more customers.")
    with pytest.raises(ModelFitError, match=r"^spend/frequency check: only 2 repeat buyers; need at least 3\.$"):
        clv.spend_frequency_correlation(pd.DataFrame({"frequency": [1.0, 2.0, 0.0], "monetary_value": [5.0, 6.0, 0.0]}))


def test_clv_refusals():
    summary = pd.DataFrame({"frequency": [2.0], "recency": [30.0], "T": [38.0], "monetary_value": [40.0]})
    with pytest.raises(ParamsError, match=r"^discount_rate_annual must be > -1 \(e\.g\. 0\.10 for 10%\); got -1\.5\.$"):
        clv.monthly_discount_rate(-1.5)
    with pytest.raises(ParamsError, match=r"^n_draws must be at least 2; got 1\.$"):
        clv.customer_equity(_bg(), _gg(), summary, n_draws=1)
    bgbb = BetaGeoBetaBinomFit()
    bgbb.params_ = pd.Series({"alpha": 1.2, "beta": 0.75, "gamma": 0.66, "delta": 2.78})
    with pytest.raises(ParamsError) as error:
        clv.customer_equity(bgbb, _gg(), summary, n_draws=5)
    assert str(error.value).startswith("customer equity: no predictive simulation for BG/BB (a discrete-time model has "
                                       "no monthly CLV here); use one of ")
    assert "BG/NBD" in str(error.value) and "Pareto/NBD" in str(error.value)
    with pytest.raises(ModelFitError, match=r"^BG/NBD is not fitted yet; call fit\(\) first\.$"):
        clv.customer_equity(clv.BetaGeoFit(), _gg(), summary, n_draws=5)


def test_loyalty_refusals():
    from crm_lib.loyalty.calibration import null_bases
    from crm_lib.loyalty.null import null_base, observed_base

    tx, _ = loyalty.simulate_loyalty_log(20, seed=1, observation_days=150)
    base = observed_base(tx)
    pnbd = type("Fit", (), {})()
    pnbd.params_ = pd.Series({"r": 0.8, "alpha": 25.0, "s": 0.6, "beta": 120.0})
    with pytest.raises(ParamsError, match=r"^BetaGeoFit: the calibrated loyalty tests simulate the null from a fitted "
                                          r"Pareto/NBD \(params r, alpha, s, beta\); set lifetime_model: pareto_nbd"):
        null_bases(base, _bg(), _gg())
    with pytest.raises(ParamsError, match=r"^null_draws=0 must be at least 1 \(249 or more for a verdict\); fix it"):
        null_bases(base, pnbd, _gg(), n_draws=0)
    with pytest.raises(ParamsError, match=r"^BetaGeoFit: pass a fitted Gamma-Gamma spend model \(crm_lib\.clv\.fit_spend_model\)\.$"):
        null_bases(base, pnbd, _bg())
    with pytest.raises(ParamsError, match=r"^null_draws=0 must be at least 1 \(99 or more for a p-value\); fix it in params\.$"):
        null_base(base, (0.8, 25.0, 0.6, 120.0), (6.0, 4.0, 15.0), n_draws=0)
    with pytest.raises(ParamsError, match=r"^time_unit='h': the calibrated loyalty tests simulate whole days, so the "
                                          r"lifetime model must be fitted in days \('D'\) or weeks \('W'\)"):
        null_base(base, (0.8, 25.0, 0.6, 120.0), (6.0, 4.0, 15.0), time_unit="h")
    with pytest.raises(ParamsError, match=r"^significance_level=1\.5 must be in \(0, 1\) and practical_effect=0\.05 >= 0\.$"):
        loyalty.calibrated_from_bases(base, [], pnbd, alpha=1.5)
    with pytest.raises(DataValidationError, match=r"^transactions: no rows; the analysis needs at least one customer\.$"):
        loyalty.lifetime_durations(tx.iloc[:0], pnbd)
    with pytest.raises(ParamsError, match=r"^robustness_table needs at least one fitted model, e\.g\. \{'Pareto/NBD': model\}\.$"):
        loyalty.robustness_table(tx, {})
    panel = pd.DataFrame({"customer_id": ["a", "b"], "tenure_period": [1, 1], "profit": [1.0, 2.0]})
    with pytest.raises(DataValidationError, match=r"^panel: no customer has more than one tenure period"):
        loyalty.fixed_effects_slope(panel)


def test_survival_refusals():
    from crm_lib.survival import cox_proportional_hazards, kaplan_meier

    churn = pd.DataFrame({"duration_days": [1.0, 2.0, 3.0], "churned": [True, False, True], "x": [1.0, 2.0, 3.0]})
    with pytest.raises(ParamsError, match=r"^errors='ignore' is not supported; use 'raise' or 'report'\.$"):
        kaplan_meier(churn, errors="ignore")
    with pytest.raises(ParamsError, match=r"^cox_covariates is empty; name at least one column known at acquisition\.$"):
        cox_proportional_hazards(churn, covariates=[])


def test_retention_refusals():
    from crm_lib.retention import lifetime_identification, load_survivors, survivors_from_params

    with pytest.raises(ParamsError, match=r"^alpha=0\.0 and beta=2\.0 must be positive sBG parameters\.$"):
        lifetime_identification(0.0, 2.0, alpha_se=0.1)
    with pytest.raises(ParamsError, match=r"^give either survivors \(counts per cohort\) or contracts_path \(a CSV of "
                                          r"contracts\) in params, not neither\.$"):
        load_survivors()
    with pytest.raises(ParamsError, match=r"in params, not both\.$"):
        load_survivors(survivors={"a": [10, 5]}, contracts_path="contracts.csv")
    with pytest.raises(ParamsError, match=r"^survivors\['high end'\] must be a list of counts starting with the cohort "
                                          r"size, e\.g\. \[1000, 869, 743\]; got '1000'\.$"):
        survivors_from_params({"high end": "1000"})
    with pytest.raises(ParamsError, match=r"^survivors must map each cohort name to its survivor counts"):
        survivors_from_params([1000, 869])
    assert survivors_from_params({"high end": [1000, 869, 743]}).loc["high end"].tolist() == [1000.0, 869.0, 743.0]


def test_loyalty_column_checks_name_the_table_and_how_to_build_it():
    tx = pd.DataFrame({"customer_id": ["a"], "amount": [1.0]})
    with pytest.raises(DataValidationError) as error:
        loyalty.p_alive_path(tx, object(), ["a"])
    assert str(error.value) == ("transactions: column(s) ['date'] not found; the frame has ['customer_id', 'amount']. "
                                "Pass TransactionLog.transactions (canonical columns customer_id, date, amount).")
    with pytest.raises(DataValidationError) as error:
        loyalty.loyalty_profit_matrix(pd.DataFrame({"duration": [1.0], "profit": [2.0]}))
    assert str(error.value) == ("customers: column(s) ['revenue'] not found; the frame has ['duration', 'profit']. "
                                "Build it with crm_lib.loyalty.lifetime_durations and lifetime_profit.")


def test_contracts_are_followed_to_the_last_date_they_show():
    from crm_lib.retention import survivors_from_contracts

    # No observation end: the latest start or cancellation, 2020-03-20, so two monthly anniversaries
    # of the January cohort are observed (02-01 and 03-01 for the first contract).
    contracts = pd.DataFrame({"start_date": ["2020-01-01", "2020-01-02"], "cancel_date": ["2020-03-20", ""]})
    survivors = survivors_from_contracts(contracts, period="M")
    assert survivors.loc["2020-01"].dropna().tolist() == [2.0, 2.0, 2.0]


def test_more_column_checks_name_their_table():
    from crm_lib.models.shifted_beta_geo import ShiftedBetaGeometricFitter

    with pytest.raises(DataValidationError, match=r"^repeat purchase counts: "):
        clv.repeat_purchase_counts(pd.DataFrame({"frequency": [1.0]}), clv.BetaGeoFit())
    with pytest.raises(DataValidationError, match=r"^customers: column\(s\) \['orders'\] not found"):
        loyalty.segment_examples(pd.DataFrame({"segment": ["strangers"], "duration": [1.0], "profit": [1.0]}))
    with pytest.raises(DataValidationError, match=r"^cohort 'a' has a gap in its survivor counts \[100\.0, nan, 80\.0\]; "
                                                  r"counts must be consecutive periods from period 0\.$"):
        ShiftedBetaGeometricFitter().fit({"a": [100.0, np.nan, 80.0], "b": [100.0, 90.0, 85.0]})


def test_fit_model_passes_its_minimum_of_repeat_buyers():
    summary = pd.DataFrame({"frequency": np.r_[np.zeros(30), np.ones(9)], "recency": np.r_[np.zeros(30), np.full(9, 10.0)],
                            "T": 30.0})
    with pytest.raises(ModelFitError, match=r"only 9 of 39 customers made a repeat purchase; at least 12 are needed"):
        clv.fit_model(summary, "bg_nbd", min_repeat_buyers=12)
