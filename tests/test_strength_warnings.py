"""No numerical warning reaches the reader from the model, CLV and loyalty code (issue 16).

crm_lib silences the floating-point warnings it expects (log 0 at the end of a curve, empty groups
of a null draw, overflowing 2F1) with ``np.errstate`` around the line that meets them, and handles
the result; a warning that escapes would land in the report as noise. These runs turn every
RuntimeWarning into an error, on inputs that meet those cases: a mutation that switches one of
the guards back on fails here.
"""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from lifetimes.datasets import load_cdnow_summary_data_with_monetary_value

from crm_lib import clv, loyalty
from tests.test_strength_loyalty_outputs import SPEND, _Fixed, _pnbd


@pytest.fixture
def strict():
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        yield


def test_calibrated_loyalty_analysis_of_a_small_log(strict):
    # 60 customers: some null draws have fewer than 2 long- or short-lived customers with a
    # price, cost or profit, which the null statistics turn into NaN without a warning.
    tx, _ = loyalty.simulate_loyalty_log(60, seed=3, observation_days=240)
    analysis = loyalty.loyalty_analysis(tx, _pnbd(), spend_model=_Fixed(["p", "q", "v"], SPEND), null_draws=25,
                                        n_bootstrap=20, gross_margin=0.3, cost_per_order=1.5, seed=4)
    assert len(analysis.calibration.null) == 25


def test_transaction_models_fit_and_predict_at_the_edges(strict):
    data = load_cdnow_summary_data_with_monetary_value().iloc[:600]
    # MBG/NBD has no overflow fallback for 2F1 (its expectation is NaN from about 300 repeat
    # purchases over a 520-week horizon; reported in issue 16's closing note), so its edge is 200.
    for name, most in (("bg_nbd", 3000.0), ("mbg_nbd", 200.0), ("pareto_nbd", 3000.0)):
        fit = clv.fit_model(data, name)
        x = np.array([0.0, 1.0, 50.0, most])
        tx = np.array([0.0, 0.5, 30.0, 38.0])
        out = fit.conditional_expected_number_of_purchases_up_to_time(np.array([0.0, 1.0, 39.0, 520.0]), x, tx, 39.0)
        alive = fit.conditional_probability_alive(x, tx, 39.0)
        assert np.all(np.isfinite(out)) and np.all((alive >= 0) & (alive <= 1)), name
    spend = clv.fit_spend_model(data)
    equity = clv.customer_equity(clv.fit_model(data, "pareto_nbd"), spend, data, n_draws=5, seed=1)
    assert np.isfinite(equity.predictive_lower)
