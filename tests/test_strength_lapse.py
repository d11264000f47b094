"""The lapse rule on a five-customer log, every column by hand, under each event-time and censoring
rule (issue 16: the lapse file kept 2 of 8 mutants of sample seed 17 alive).

Log (lapse 30 days, observation end 2020-03-31, a leap year):

- a buys 01-01, 01-11, 03-20: the 69-day gap ends the first spell at 01-11 (churned after 10
  days); the purchase of 03-20 is a return (reactivated), 11 days before the end.
- b buys once, 01-05: silent 86 days at the end, churned at 0 days.
- c buys 02-10, 03-01, 03-25: gaps of 20 and 24 days, 6 days silent at the end: not churned.
- d buys once, 03-10: 21 days silent at the end, not churned; acquired after the last day whose
  churn could show (03-31 - 30 - 1 = 02-29), so under the default censoring it has no follow-up.
- e buys 01-01 and 01-31 (a gap of exactly 30 days is not a lapse: "more than lapse_days") and
  04-05, after the observation end (ignored): churned after 30 days, 60 days silent.

Censoring times by hand: "recognisable" censors c at 02-29 - 02-10 = 19 days; "last_purchase"
at its last purchase, 03-25 - 02-10 = 44 days (d at 0). With event_time="lapse_recognised" every
time moves 30 days later (the day the lapse shows), and the "last_purchase" censoring becomes the
observation end: c 03-31 - 02-10 = 50, d 21.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crm_lib.exceptions import ParamsError
from crm_lib.survival import time_to_churn

TX = pd.DataFrame({
    "customer_id": ["a", "a", "a", "b", "c", "c", "c", "d", "e", "e", "e"],
    "date": pd.to_datetime(["2020-01-01", "2020-01-11", "2020-03-20", "2020-01-05", "2020-02-10", "2020-03-01",
                            "2020-03-25", "2020-03-10", "2020-01-01", "2020-01-31", "2020-04-05"]),
    "amount": [10.0, 5.0, 7.0, 80.0, 20.0, 1.0, 1.0, 40.0, 30.0, 3.0, 3.0],
    "quantity": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
    "channel": ["web", "store", "web", "store", "web", "web", "web", "app", "store", "web", "web"]})
NAN = float("nan")


def test_every_column_of_the_default_rule_by_hand():
    out = time_to_churn(TX, lapse_days=30, observation_end="2020-03-31", value_bands=2)
    assert out.index.name == "customer_id" and list(out.index) == ["a", "b", "c", "d", "e"]
    assert out["first_purchase"].dt.strftime("%m-%d").tolist() == ["01-01", "01-05", "02-10", "03-10", "01-01"]
    assert out["last_purchase"].dt.strftime("%m-%d").tolist() == ["01-11", "01-05", "03-25", "03-10", "01-31"]
    assert out["purchases"].tolist() == [2, 1, 3, 1, 2]
    np.testing.assert_array_equal(out["duration_days"], [10.0, 0.0, 19.0, NAN, 30.0])
    assert out["churned"].tolist() == [True, True, False, False, True]
    assert out["reactivated"].tolist() == [True, False, False, False, False]
    assert out["days_since_last_purchase"].tolist() == [11.0, 86.0, 6.0, 21.0, 60.0]
    assert out["cohort"].tolist() == ["2020-01", "2020-01", "2020-02", "2020-03", "2020-01"]
    assert out["first_order_amount"].tolist() == [10.0, 80.0, 20.0, 40.0, 30.0]
    assert out["first_order_quantity"].tolist() == [1.0, 4.0, 5.0, 8.0, 9.0]
    assert out["channel"].tolist() == ["web", "store", "web", "app", "store"]
    # two equal-count bands of the first-order amounts 10, 20, 30 | 40, 80, named with their ranges
    assert out["first_order_band"].astype(str).tolist() == ["1 (10-30)", "2 (40-80)", "1 (10-30)", "2 (40-80)",
                                                            "1 (10-30)"]
    assert out.attrs == {"lapse_days": 30, "observation_end": pd.Timestamp("2020-03-31"),
                         "event_time": "last_purchase", "censoring": "recognisable"}


@pytest.mark.parametrize("event_time, censoring, durations", [
    ("last_purchase", "recognisable", [10.0, 0.0, 19.0, NAN, 30.0]),
    ("last_purchase", "last_purchase", [10.0, 0.0, 44.0, 0.0, 30.0]),
    ("lapse_recognised", "recognisable", [40.0, 30.0, 49.0, NAN, 60.0]),
    ("lapse_recognised", "last_purchase", [40.0, 30.0, 50.0, 21.0, 60.0]),
])
def test_durations_under_each_event_time_and_censoring_rule(event_time, censoring, durations):
    out = time_to_churn(TX, lapse_days=30, observation_end="2020-03-31", event_time=event_time, censoring=censoring)
    np.testing.assert_array_equal(out["duration_days"], durations)
    assert out["churned"].tolist() == [True, True, False, False, True]
    assert (out.attrs["event_time"], out.attrs["censoring"]) == (event_time, censoring)


def test_default_observation_end_is_the_last_purchase_and_the_default_lapse_is_180_days():
    # Without the April purchase of e the last purchase is 03-25; with 180 days nobody has lapsed.
    out = time_to_churn(TX[TX["date"] <= "2020-03-31"])
    assert out.attrs["observation_end"] == pd.Timestamp("2020-03-25") and out.attrs["lapse_days"] == 180
    assert not out["churned"].any()
    assert out["days_since_last_purchase"].tolist() == [5.0, 80.0, 0.0, 15.0, 54.0]


@pytest.mark.parametrize("kwargs, message", [
    ({"lapse_days": 0}, r"lapse_days"),
    ({"event_time": "first_purchase"}, r"event_time"),
    ({"censoring": "none"}, r"censoring"),
])
def test_bad_rule_names_the_knob(kwargs, message):
    with pytest.raises(ParamsError, match=message):
        time_to_churn(TX, **kwargs)


def test_cohort_retention_rates_by_hand():
    from crm_lib.exceptions import DataValidationError
    from crm_lib.survival import retention_rates_by_cohort

    # January cohort (a, b, c) and February cohort (d, e); monthly rates.
    # January: active Jan a b c; Feb a b (2 of 3 retained); Mar b (1 of 2).
    # February: active Feb d e; Mar d (1 of 2); Apr none active (0 of 1).
    tx = pd.DataFrame({
        "customer_id": ["a", "b", "c", "a", "b", "b", "d", "e", "d", "x"],
        "date": pd.to_datetime(["2020-01-05", "2020-01-10", "2020-01-20", "2020-02-03", "2020-02-25", "2020-03-02",
                                "2020-02-07", "2020-02-09", "2020-03-15", "2020-04-30"]),
        "amount": 1.0})
    out = retention_rates_by_cohort(tx, period="M", cohort_period="M", min_cohort_size=2)
    assert list(out.columns) == ["cohort", "period", "cohort_customers", "active_customers", "retained_customers",
                                 "retention_rate", "attrition_rate"]
    rows = {(r.cohort, r.period): r for r in out.itertuples()}
    assert set(rows) >= {("2020-01", "2020-02"), ("2020-01", "2020-03"), ("2020-02", "2020-03")}
    assert "2020-04" not in set(out["cohort"])  # the April cohort of one customer (x) is too small
    jan_feb, jan_mar, feb_mar = rows[("2020-01", "2020-02")], rows[("2020-01", "2020-03")], rows[("2020-02", "2020-03")]
    assert (jan_feb.cohort_customers, jan_feb.active_customers, jan_feb.retained_customers) == (3, 2, 2)
    assert (jan_feb.retention_rate, jan_feb.attrition_rate) == pytest.approx((2 / 3, 1 / 3))
    assert (jan_mar.retained_customers, jan_mar.retention_rate) == (1, pytest.approx(0.5))
    assert (feb_mar.cohort_customers, feb_mar.retained_customers, feb_mar.retention_rate) == (2, 1, pytest.approx(0.5))
    with pytest.raises(DataValidationError, match=r"^no acquisition cohort \(M\) has 4 customers and two M periods; "
                                                  r"use a coarser cohort_period or lower min_group_size\.$"):
        retention_rates_by_cohort(tx, period="M", cohort_period="M", min_cohort_size=4)
