"""crm_lib.format: the one module that formats numbers for people."""
from __future__ import annotations

import doctest
import re

import numpy as np
import pandas as pd
import pytest

from crm_lib import format as fmt


def test_doctests_pass():
    assert doctest.testmod(fmt).failed == 0


@pytest.mark.parametrize(
    ("value", "decimals", "signed", "text"),
    [(1234567.891, 0, False, "1,234,568"), (0.5, 0, False, "0"), (1.5, 0, False, "2"), (-1234.5, 2, False, "-1,234.50"),
     (3.0, 1, True, "+3.0"), (-3.0, 1, True, "-3.0"), (np.int64(7), 0, False, "7"), (float("inf"), 0, False, "∞")],
)
def test_number(value, decimals, signed, text):
    assert fmt.number(value, decimals, signed=signed) == text


@pytest.mark.parametrize("missing", [None, float("nan"), np.nan, pd.NA, pd.NaT])
def test_missing_values_are_empty_not_nan(missing):
    assert fmt.number(missing) == "" and fmt.percent(missing) == "" and fmt.currency(missing) == ""
    assert fmt.p_value(missing) == "n/a" and fmt.days(missing) == "not reached" and fmt.yes_no(missing) == ""


def test_percent_and_currency():
    assert fmt.percent(0.469) == "46.9%" and fmt.percent(1) == "100.0%" and fmt.percent(0.0021, 2) == "0.21%"
    assert fmt.percent(0.002, signed=True) == "+0.2%"
    assert fmt.currency(241047.4) == "241,047 USD" and fmt.currency(54934.456, "EUR", 2) == "54,934.46 EUR"


@pytest.mark.parametrize(
    ("p", "table", "sentence"),
    [(0.0, "< 0.001", "p < 0.001"), (0.000999, "< 0.001", "p < 0.001"), (0.001, "0.001", "p = 0.001"),
     (0.04949, "0.049", "p = 0.049"), (1.0, "1.000", "p = 1.000"), (float("nan"), "n/a", "p = n/a")],
)
def test_p_values_in_tables_and_sentences(p, table, sentence):
    assert fmt.p_value(p) == table and fmt.p_text(p) == sentence


def test_days_as_survival_format_days():
    assert fmt.days(365.0) == "365 days" and fmt.days(1e4) == "10,000 days"
    assert fmt.days(float("inf")) == "beyond the data" and fmt.days(np.nan, missing="n/a") == "n/a"


@pytest.mark.parametrize(
    ("n", "text"),
    [(0, "0 repeat buyers"), (1, "1 repeat buyer"), (1.0, "1 repeat buyer"), (2, "2 repeat buyers"),
     (1946, "1,946 repeat buyers")],
)
def test_count_is_plural_aware(n, text):
    assert fmt.count(n, "repeat buyer") == text


def test_irregular_plural():
    assert fmt.count(1, "child", "children") == "1 child" and fmt.count(3, "child", "children") == "3 children"


def test_table_for_people():
    table = pd.DataFrame(
        {"customers": [1200, 0], "share_of_customers": [0.25, np.nan],
         "revenue": [1234.5, np.nan], "mean_days": [3.14159, 2.0], "action": ["retain", "let go"]},
        index=pd.Index(["a", "b"], name="portfolio_cell"),
    )
    out = fmt.table_for_people(table, "EUR", money_columns=["revenue"])
    assert list(out.columns) == ["customers", "share of customers", "revenue (EUR)", "mean (days)", "action"]
    assert out.index.name == "portfolio cell"
    assert out.loc["a"].tolist() == ["1,200", "25.0%", "1,234.50", "3", "retain"]
    assert out.loc["b"].tolist() == ["0", "", "", "2", "let go"]


@pytest.mark.parametrize(
    ("name", "label"),
    [("mean_p_alive", "mean P(alive)"), ("expected_churned_by_model", "expected to have left (model)"),
     ("standard_error", "standard error"), ("lower_95", "lower 95% bound"), ("alpha_se", "α standard error"),
     ("derl_after_first_renewal", "DERL after the first renewal (payments)"), ("cohort[1997-01]", "cohort 1997-01"),
     ("cohort[T.1997-02]", "cohort 1997-02"), ("GLOBAL", "all covariates (global test)"),
     ("first_order_band", "first-day spend band"), ("median_days", "median (days)"),
     ("days_since_last_purchase", "days since last purchase")],
)
def test_column_labels_are_words_not_code_names(name, label):
    assert fmt.column_label(name) == label and "_" not in label


def test_table_html_aligns_words_left_numbers_right_and_escapes():
    table = pd.DataFrame({"segment": ["a <b>", "c"], "customers": [1234, 5], "share_of_customers": [0.5, 0.25],
                          "p": ["< 0.001", "0.042"]}).set_index("segment")
    page = fmt.table_html(fmt.table_for_people(table))
    assert "a &lt;b&gt;" in page and "<b>" not in page
    right = re.findall(r'<t[dh] class="n">([^<]*)<', page)
    left = re.findall(r'<td>([^<]*)<', page)
    assert set(right) >= {"1,234", "5", "50.0%", "25.0%", "&lt; 0.001", "0.042"} and left == []
    assert page == fmt.table_html(fmt.table_for_people(table))


def test_whole_floats_lose_decimals_and_bools_read_yes_no():
    out = fmt.table_for_people(pd.DataFrame({"customers": [2.0, 3.0], "censored": [True, False]}))
    assert out["customers"].tolist() == ["2", "3"] and out["censored"].tolist() == ["yes", "no"]


def test_show_table_ignores_frame_metadata(capsys):
    # A results table may carry a frame in attrs (the robustness table's p-values); pandas compares attrs when it
    # concatenates columns, which raised "truth value of a DataFrame is ambiguous" in report 05.
    table = pd.DataFrame({"verdict": ["supported", "no evidence either way"], "p": ["0.040", "<0.001"]})
    table.attrs["p_values"] = pd.DataFrame({"H1": [0.04, 0.5]})
    fmt.show_table(table, formatted=True)
    assert "p_values" in table.attrs  # the caller's table is left as it was
