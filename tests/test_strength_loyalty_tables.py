"""Every cell of the loyalty tables for people, on inputs made by hand (issue 16).

crm_lib.loyalty.report turns computed results into the tables and sentences of the loyalty page;
it was the weakest file of the mutation samples (3 of 6 mutants of seed 17 survived). Here each
formatter gets a small result built by hand and its whole output is compared with a table
written out in the test, so a renamed column, a changed rounding, a lost sign or a swapped
label fails. Public names of crm_lib.loyalty only.
"""
from __future__ import annotations

import math
import types

import numpy as np
import pandas as pd
import pytest

from crm_lib import loyalty
from crm_lib.loyalty import HypothesisResult, HypothesisTests, TestResult

NAN = float("nan")


def _tests() -> HypothesisTests:
    h1 = HypothesisResult(
        "H1", "long-lived customers are more profitable", +1,
        (TestResult("Spearman rank correlation", "rho", 0.25, "rho", 0.25, 0.125, 0.375, 0.0004, 1500, primary=True,
                    p_holm=0.0016),
         TestResult("OLS", "t", 2.5, "profit per day, USD", 1234.5, -0.5, 2500.0, 0.0123, 1500, p_holm=0.0369)),
        "supported", "")
    h4 = HypothesisResult("H4", "long-lived customers cost less to serve", -1, (), "not testable", "no cost data")
    return HypothesisTests((h1, h4))


def test_format_tests_shows_every_number_of_every_test():
    shown = loyalty.format_tests(_tests())
    expected = pd.DataFrame(
        {"hypothesis": ["H1", "H1", "H4"],
         "test": ["* Spearman rank correlation", "  OLS", "  not testable"],
         "estimate": ["rho = 0.25", "profit per day, USD = 1,234", ""],
         "95% CI": ["0.125 to 0.375", "-0.5 to 2,500", ""],
         "statistic": ["rho = 0.25", "t = 2.5", ""],
         "p": ["< 0.001", "0.012", ""],
         "Holm p": ["0.002", "0.037", ""],
         "n": ["1,500", "1,500", ""],
         "verdict": ["supported", "supported", "not testable"]}).set_index(["hypothesis", "test"])
    pd.testing.assert_frame_equal(shown, expected)


def test_verdict_stability_counts_agreeing_variants_and_names_the_others():
    robustness = pd.DataFrame(
        {"H1 verdict": ["supported", "supported", "no evidence either way"],
         "H2 verdict": ["contradicted", "contradicted", "contradicted"],
         "H1 rho": [0.3, 0.2, 0.1]},
        index=pd.Index(["baseline", "P(alive) threshold 0.3", "model MBG/NBD"], name="variant"))
    shown = loyalty.verdict_stability(robustness)
    expected = pd.DataFrame(
        {"hypothesis": ["H1", "H2"], "baseline verdict": ["supported", "contradicted"],
         "variants agreeing": ["1 of 2", "2 of 2"], "share agreeing": [0.5, 1.0],
         "differs under": ["model MBG/NBD: no evidence either way", "none"]}).set_index("hypothesis")
    pd.testing.assert_frame_equal(shown, expected)
    # only the baseline: nothing to agree with
    alone = loyalty.verdict_stability(robustness.iloc[:1])
    assert alone.loc["H1", "variants agreeing"] == "0 of 0" and math.isnan(alone.loc["H1", "share agreeing"])
    from crm_lib.exceptions import DataValidationError

    with pytest.raises(DataValidationError, match="expected robustness_table output with a 'baseline' row"):
        loyalty.verdict_stability(robustness.drop(index="baseline"))


def test_format_customers_in_weeks_and_euros():
    customers = pd.DataFrame(
        {"first_purchase": pd.to_datetime(["2020-01-06", "2020-02-03"]),
         "lifetime_end": pd.to_datetime(["2020-06-28", "2020-12-31"]),
         "duration": [25.4, 47.6], "censored": [False, True], "orders": [1234, 2],
         "revenue": [1234.567, 20.0], "cost": [10.0, NAN], "profit": [-5.555, 18.0], "price": [12.345, 10.0],
         "cost_share": [0.0812, NAN], "segment": ["true friends", None]},
        index=pd.Index(["a", "b"], name="customer_id"))
    shown = loyalty.format_customers(customers, currency="EUR", time_unit="W")
    expected = pd.DataFrame(
        {"first purchase": ["2020-01-06", "2020-02-03"], "lifetime end": ["2020-06-28", "2020-12-31"],
         "duration (weeks)": ["25", "48"], "censored": ["", "yes"], "orders": ["1,234", "2"],
         "revenue (EUR)": ["1,234.57", "20.00"], "cost (EUR)": ["10.00", ""], "profit (EUR)": ["-5.55", "18.00"],
         "price (EUR)": ["12.35", "10.00"], "cost share": ["8.1%", ""],
         "cell": ["true friends", "(lifetime running)"]},
        index=customers.index)
    pd.testing.assert_frame_equal(shown, expected, check_dtype=False)
    assert "duration (days)" in loyalty.format_customers(customers).columns
    assert "duration (hours)" in loyalty.format_customers(customers, time_unit="h").columns


def test_matrix_shares_and_their_table_against_quantiles_of_the_null_by_hand():
    cells = ["share strangers", "share butterflies", "share true friends", "share barnacles"]
    observed = pd.Series({**dict(zip(cells, [0.4, 0.1, 0.3, 0.2])), "share_long_low_profit": 0.4,
                          "share_high_profit_short": 0.25})
    # 41 null draws 0.00, 0.01, ..., 0.40 in every column (one NaN, dropped): mean 0.2,
    # 2.5% quantile 0.01, 97.5% quantile 0.39 (linear interpolation: position 0.025 * 40 = 1).
    draws = np.r_[np.arange(41) / 100, NAN]
    null = pd.DataFrame({c: draws for c in observed.index})
    calibration = loyalty.CalibratedTests((), observed, null, 0.05, 0.05)
    shares = calibration.matrix_shares()
    assert list(shares.index) == ["strangers", "butterflies", "true friends", "barnacles", "long-lived with low profit",
                                  "high-profit that are short-lived"]
    np.testing.assert_allclose(shares["observed"], [0.4, 0.1, 0.3, 0.2, 0.4, 0.25])
    np.testing.assert_allclose(shares["no loyalty effect (mean)"], 0.2)
    np.testing.assert_allclose(shares["null 2.5%"], 0.01)
    np.testing.assert_allclose(shares["null 97.5%"], 0.39)
    shown = loyalty.format_matrix_shares(calibration)
    assert list(shown.columns) == ["observed", "no loyalty effect", "95% range without effect"]
    assert shown.loc["butterflies"].tolist() == ["10.0%", "20.0%", "1.0% to 39.0%"]
    assert shown.loc["high-profit that are short-lived", "observed"] == "25.0%"


def test_format_matrix_shows_cells_with_units_and_treatments():
    table = pd.DataFrame(
        {"duration": ["short", "long"], "profit": ["low", "high"], "customers": [1234, 56],
         "share_of_customers": [0.95666, 0.04334], "revenue_share": [0.5, 0.5], "profit_share": [-0.125, 1.125],
         "mean_profit": [-1.234, 1234.5], "treatment": ["no investment", "cultivate"]},
        index=pd.Index(["strangers", "true friends"], name="segment"))
    shown = loyalty.format_matrix(types.SimpleNamespace(table=table), currency="GBP")
    expected = pd.DataFrame(
        {"lifetime": ["short", "long"], "profit": ["low", "high"], "customers": ["1,234", "56"],
         "share of customers": ["95.7%", "4.3%"], "share of revenue": ["50.0%", "50.0%"],
         "share of profit": ["-12.5%", "112.5%"], "mean profit (GBP)": ["-1.23", "1,234.50"],
         "recommended treatment": ["no investment", "cultivate"]}, index=table.index)
    pd.testing.assert_frame_equal(shown, expected)


def test_format_robustness_rounds_each_kind_of_column():
    robustness = pd.DataFrame(
        {"changed": ["none"], "H1 verdict": ["supported"], "long-lived with low profit": [0.126],
         "high-profit that are short-lived": [0.5], "censored lifetimes": [0.014], "H1 rho": [0.12345],
         "H1 rho, null": [-0.0004], "H2 slope": [1.5], "H3 price difference": [-2.0], "phi, null": [0.25],
         "Cramer's V": [0.456], "customers used": [12345], "median duration": [1234.5]},
        index=pd.Index(["baseline"], name="variant"))
    shown = loyalty.format_robustness(robustness).loc["baseline"]
    assert shown.to_dict() == {
        "changed": "none", "H1 verdict": "supported", "long-lived with low profit": "13%",
        "high-profit that are short-lived": "50%", "censored lifetimes": "1%", "H1 rho": "+0.123",
        "H1 rho, null": "-0.000", "H2 slope": "+1.500", "H3 price difference": "-2.000", "phi, null": "+0.250",
        "Cramer's V": "0.46", "customers used": "12,345", "median duration": "1,234"}
