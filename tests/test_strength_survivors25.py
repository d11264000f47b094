"""Checks written against the survivors of the seed-25 mutation sample (issue 16).

Each expected value comes from a hand computation, lifetimes (an independent
implementation) or pandas applied to the input directly, never from the function under test.
"""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from crm_lib import clv, loyalty


def test_p_alive_history_counts_weeks_by_default():
    model = clv.BetaGeoFit()
    model.params_ = pd.Series({"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426})
    tx = pd.DataFrame({"customer_id": ["a", "a", "b"],
                       "date": pd.to_datetime(["2020-01-01", "2020-01-15", "2020-01-20"]), "amount": 1.0})
    history = clv.p_alive_history(model, tx, "a")
    # weeks start on Monday: 2019-12-30 (holding Wed 01-01) to 2020-01-20 (the log's last date)
    assert list(history.index) == list(pd.date_range("2019-12-30", "2020-01-20", freq="7D"))
    assert history["age"].tolist() == [0.0, 1.0, 2.0, 3.0]
    assert history.attrs["time_unit"] == "W"


def test_holdout_validation_logs_each_models_failure(caplog):
    from crm_lib.exceptions import ModelFitError

    cal = pd.DataFrame({"frequency_cal": [0.0] * 9 + [1.0], "recency_cal": [0.0] * 9 + [1.0], "T_cal": 5.0,
                        "frequency_holdout": 0.0, "duration_holdout": 5.0})
    with caplog.at_level(logging.WARNING, logger="crm_lib.clv.validation"), \
            pytest.raises(ModelFitError) as raised:
        clv.holdout_validation(cal, ("bg_nbd", "pareto_nbd"))
    logged = [m for m in caplog.messages if m.startswith("holdout validation: ")]
    assert len(logged) == 2
    for message in logged:  # each warning carries that model's reason, which the final error repeats
        reason = message.removeprefix("holdout validation: ")
        assert len(reason) > 20 and reason in str(raised.value)


def test_calibrated_rows_simulate_the_null_in_the_runs_time_unit():
    from tests.test_strength_loyalty_choices import KNOBS, ONE_ROW, SPEND
    from tests.test_strength_loyalty_outputs import _pnbd

    tx, _ = loyalty.simulate_loyalty_log(150, seed=5, observation_days=300, price_lift_per_year=0.5)
    weekly = _pnbd()
    weekly.params_ = weekly.params_ / pd.Series({"r": 1.0, "alpha": 7.0, "s": 1.0, "beta": 7.0})  # rates per week
    analysis = loyalty.loyalty_analysis(tx, weekly, spend_model=SPEND, null_draws=3, n_bootstrap=0, time_unit="W",
                                        **KNOBS)
    table = loyalty.robustness_table(tx, {"Pareto/NBD": weekly}, spend_model=SPEND, null_draws=3, time_unit="W",
                                     **ONE_ROW, **KNOBS)
    null = analysis.calibration.null
    assert len(null) == 3
    assert table.loc["baseline", "H1 rho, null"] == pytest.approx(null["rho"].mean())
    assert table.loc["baseline", "phi, null"] == pytest.approx(null["phi"].mean())


def test_pareto_nbd_one_time_buyers_pass_the_lifetime_check_at_age_one():
    import lifetimes

    from crm_lib.loyalty.lifetime import check_lifetime_model
    from tests.test_strength_loyalty_outputs import _pnbd

    theirs = lifetimes.ParetoNBDFitter()
    theirs.params_ = _pnbd().params_
    # lifetimes: a one-time buyer (x = 0, t_x = 0) is alive at age 1 with probability below 1
    assert float(theirs.conditional_probability_alive(0, 0, 1)) < 1 - 1e-9
    check_lifetime_model(_pnbd(), horizon=1)  # so the check lets the Pareto/NBD through
    check_lifetime_model(_pnbd(), horizon=0.5)


def test_bg_bb_p_alive_keeps_the_index_of_a_series_of_opportunities():
    import lifetimes

    from crm_lib.models import BetaGeoBetaBinomFit

    params = pd.Series({"alpha": 1.204, "beta": 0.750, "gamma": 0.657, "delta": 2.783})  # FHS (2010), table 2
    ours, theirs = BetaGeoBetaBinomFit(), lifetimes.BetaGeoBetaBinomFitter()
    ours.params_, theirs.params_ = params, params
    n = pd.Series([6.0, 6.0, 6.0], index=["p", "q", "r"])
    x, tx = np.array([0.0, 3.0, 6.0]), np.array([0.0, 5.0, 6.0])
    out = ours.conditional_probability_alive(x, tx, n)
    assert isinstance(out, pd.Series) and list(out.index) == ["p", "q", "r"]
    # lifetimes counts the next opportunity as m = 1
    expected = [float(theirs.conditional_probability_alive(1, a, b, c)) for a, b, c in zip(x, tx, n)]
    np.testing.assert_allclose(out.to_numpy(), expected, rtol=1e-9)


def test_sbg_on_cohorts_seen_one_period_says_the_model_is_not_identified():
    from crm_lib.exceptions import ModelFitError
    from crm_lib.models import ShiftedBetaGeometricFitter

    # 300 and 100 customers cancelled in the only period observed: the data are not "no cancellation",
    # but one period identifies only the mean churn rate, not the Beta's two parameters
    with pytest.raises(ModelFitError, match="did not converge") as raised:
        ShiftedBetaGeometricFitter().fit(pd.DataFrame([[1000, 700], [500, 400]]))
    assert "no customer cancelled" not in str(raised.value)
    # and it says what helps (more renewal periods), not the penalty that helps the BTYD models
    assert "give cohorts at least two renewal periods" in str(raised.value)
    assert "penalizer_coef" not in str(raised.value)


def test_contracts_without_a_date_column_say_which_columns_to_name():
    from crm_lib.exceptions import ParamsError
    from crm_lib.retention import survivors_from_contracts

    contracts = pd.DataFrame({"begin": pd.to_datetime(["2020-01-01"]), "cancel_date": [pd.NaT]})
    with pytest.raises(ParamsError, match=r"^contracts: column 'start_date' not found; the table has "
                                          r"\['begin', 'cancel_date'\]\. Name the start and cancellation columns\.$"):
        survivors_from_contracts(contracts)
