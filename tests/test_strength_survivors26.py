"""Checks written against the survivors of the seed-26 mutation sample (issue 16).

Expected values: hand computations, pandas on the input, or the public function the analysis
documents it calls (same inputs, same seed), never the output under test itself.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from crm_lib import loyalty
from tests.test_strength_loyalty_choices import KNOBS, ONE_ROW, SPEND
from tests.test_strength_loyalty_outputs import _pnbd


@pytest.fixture(scope="module")
def log() -> pd.DataFrame:
    tx, _ = loyalty.simulate_loyalty_log(150, seed=5, observation_days=300, price_lift_per_year=0.5)
    return tx


def test_calibrated_rows_include_censored_lifetimes_when_asked(log):
    table = loyalty.robustness_table(log, {"Pareto/NBD": _pnbd()}, spend_model=SPEND, null_draws=1,
                                     censored_lifetimes="include", **ONE_ROW, **KNOBS)
    # every customer of the log is used, censored or not
    assert table.loc["baseline", "customers used"] == log["customer_id"].nunique() == 150


def test_loyalty_analysis_passes_currency_and_seed_to_the_hypotheses(log):
    knobs = {**KNOBS, "seed": 7}
    analysis = loyalty.loyalty_analysis(log, _pnbd(), n_bootstrap=40, currency="EUR", **knobs)
    assert analysis.tests["H3"].primary.estimate_name.endswith(", EUR")
    used = analysis.customers[~analysis.customers["censored"]]
    direct = loyalty.test_duration_profit(used, n_bootstrap=40, seed=7)  # the documented H1 call, seed 7
    ours = [(t.ci_low, t.ci_high) for t in analysis.tests["H1"].tests]
    assert ours == [(t.ci_low, t.ci_high) for t in direct.tests]
    # the summary names the model, or '?' when the settings do not say
    anonymous = dataclasses.replace(analysis, settings={k: v for k, v in analysis.settings.items() if k != "model"})
    assert anonymous.summary().startswith("Loyalty versus profit: 150 customers, model ?, P(alive) threshold 0.5")


def test_crossing_rule_rows_say_what_changed(log):
    table = loyalty.robustness_table(log, {"Pareto/NBD": _pnbd()}, **{**ONE_ROW, "crossings": ("first",)}, **KNOBS)
    assert table.loc["crossing rule 'first'", "changed"] == "crossing rule"


def test_hypothesis_summary_prints_both_ends_of_the_interval():
    rng = np.random.default_rng(5)
    customers = pd.DataFrame({"duration": np.r_[rng.uniform(10, 40, 20), rng.uniform(60, 100, 20)],
                              "price": np.r_[rng.normal(20, 2, 20), rng.normal(23, 2, 20)]})
    result = loyalty.test_price(customers)
    welch = result.primary
    line = next(s for s in result.summary().splitlines() if welch.method in s)
    assert f"[{welch.ci_low:,.3g}, {welch.ci_high:,.3g}]" in line  # _fmt: three significant digits
    assert welch.ci_low < welch.ci_high


def test_null_base_draws_99_bases_by_default():
    from crm_lib.loyalty.null import null_base, observed_base

    tx, _ = loyalty.simulate_loyalty_log(20, seed=2, observation_days=120)
    base = null_base(observed_base(tx), (0.8, 25.0, 0.6, 120.0), (6.0, 4.0, 15.0))
    assert base.n_draws == 99  # the documented default: with the observed one, 100 bases


def test_gamma_gamma_names_how_many_repeat_buyers_have_no_positive_spend():
    from crm_lib.exceptions import DataValidationError
    from crm_lib.models import GammaGammaFit

    with pytest.raises(DataValidationError, match=r"^Gamma-Gamma: 1 of 4 repeat buyers have a mean spend that is "
                                                  r"not positive \(e\.g\. 0\.0\)"):
        GammaGammaFit().fit(np.array([1.0, 2.0, 3.0, 1.0, 0.0]), np.array([10.0, 0.0, 12.0, 9.0, 0.0]))


def test_format_p_shows_one_in_a_thousand_as_a_number():
    from crm_lib.survival._common import format_p

    assert format_p(0.001) == "0.001"  # only below one in a thousand is "<0.001"
    assert format_p(0.000999) == "<0.001"


def test_cox_keeps_every_customer_when_there_are_exactly_max_customers():
    from crm_lib.survival.cox import _sample_customers

    churn = pd.DataFrame({"duration_days": np.arange(1000.0), "churned": True})
    kept, sampled_from, note = _sample_customers(churn, 1000, seed=0)
    assert kept is churn and sampled_from == 0 and note == ""


def test_backtest_sentence_when_no_horizon_is_identified():
    from crm_lib.survival import LapseBacktest

    index = pd.MultiIndex.from_tuples([(365, "recognisable")], names=["horizon_days", "censoring"])
    table = pd.DataFrame({"estimate": [np.nan], "lower": [np.nan], "upper": [np.nan], "truth": [0.5],
                          "difference": [np.nan], "covered": [np.nan]}, index=index)
    backtest = LapseBacktest(table=table, lapse_days=90, truncate_at=pd.Timestamp("2020-06-30"),
                             observation_end=pd.Timestamp("2020-12-31"), customers=12, alpha=0.05)
    assert backtest.sentence() == ("Estimated on the data up to 2020-06-30 (12 customers, lapse 90 days), no horizon "
                                   "is identified both there and in the full window.")
