"""KPIs: exact values on a hand-made log, and the CDNOW headline figures."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crm_lib.exceptions import DataValidationError

from crm_lib.kpi import activity_by_period, cohort_retention, cohort_sizes, format_activity, headline_kpis


def test_headline_kpis_exact(small_tx):
    k = headline_kpis(small_tx)
    assert (k.customers, k.transactions) == (3, 7)
    assert k.revenue == pytest.approx(85.0)
    # a bought on 3 days, b on 1, c on 2 -> 2 of 3 customers repeat
    assert k.repeat_customers == 2
    assert k.repeat_purchase_rate == pytest.approx(2 / 3)
    assert k.average_order_value == pytest.approx(85 / 7)
    assert k.to_frame().loc["Customers", "value"] == "3"


def test_activity_and_retention_exact(small_tx):
    act = activity_by_period(small_tx, "M")
    # Jan: a, b active (both new); Feb: a (returning), c (new)
    assert act["active_customers"].tolist() == [2, 2]
    assert act["new_customers"].tolist() == [2, 1]
    assert act["returning_customers"].tolist() == [0, 1]
    assert act["transactions"].tolist() == [4, 3]
    assert act["revenue"].tolist() == [43.0, 42.0]
    # Feb retention: of Jan's 2 active customers, a is active again -> 50%
    assert np.isnan(act["retention_rate"].iloc[0])
    assert act["retention_rate"].iloc[1] == pytest.approx(0.5)
    assert act["attrition_rate"].iloc[1] == pytest.approx(0.5)
    shown = format_activity(act)
    assert shown["retention rate"].tolist() == ["", "50.0%"]


def test_empty_periods_are_zero_not_missing():
    tx = pd.DataFrame(
        {"customer_id": ["a", "a"], "date": pd.to_datetime(["2020-01-05", "2020-03-05"]), "amount": [1.0, 2.0]}
    )
    act = activity_by_period(tx, "M")
    assert [str(p) for p in act.index] == ["2020-01", "2020-02", "2020-03"]
    assert act["active_customers"].tolist() == [1, 0, 1]
    # retention after an empty month is undefined, not 0
    assert act["retention_rate"].iloc[1] == 0.0 and np.isnan(act["retention_rate"].iloc[2])


def test_cohorts_exact(small_tx):
    sizes = cohort_sizes(small_tx, "M")
    assert sizes["new_customers"].tolist() == [2, 1]
    assert sizes["share_of_customers"].tolist() == pytest.approx([2 / 3, 1 / 3])
    with pytest.raises(DataValidationError, match="no observation window"):
        cohort_retention(small_tx, "M")
    ret = cohort_retention(small_tx, "M", observation_end=small_tx["date"].max())
    # Jan cohort (a, b): month 0 100%, month 1 only a -> 50%; Feb cohort: month 0 100%, month 1 not observed
    assert ret.loc[pd.Period("2020-01", "M")].tolist() == [1.0, 0.5]
    assert ret.loc[pd.Period("2020-02", "M"), 0] == 1.0
    assert np.isnan(ret.loc[pd.Period("2020-02", "M"), 1])


def test_cdnow_headline(cdnow_log):
    k = headline_kpis(cdnow_log.transactions)
    assert k.customers == 23_570 and k.transactions == 69_659
    assert k.average_order_value == pytest.approx(2_500_315.63 / 69_659)
    # every CDNOW customer was acquired in 1997 Q1 (the data set is that cohort)
    sizes = cohort_sizes(cdnow_log.transactions, "Q")
    assert sizes["new_customers"].tolist() == [23_570]
    act = activity_by_period(cdnow_log.transactions, "M")
    assert act["new_customers"].sum() == 23_570
    assert act["transactions"].sum() == 69_659


def test_unknown_period(small_tx):
    with pytest.raises(ValueError, match="period='D' is not supported"):
        activity_by_period(small_tx, "D")


def test_activity_runs_to_the_window_end_of_the_log(small_tx):
    from crm_lib.data import TransactionLog

    # The window ends two months after the last purchase: those months exist, with no activity.
    log = TransactionLog.from_frame(small_tx, observation_end="2020-05-15")
    act = activity_by_period(log, "M")
    assert act.index[-1] == pd.Period("2020-05", "M")
    assert act.loc[pd.Period("2020-04", "M"):, "active_customers"].tolist() == [0, 0]
    # the cohort table leaves no unobserved cell: the Jan cohort is observed to k = 4
    ret = cohort_retention(log, "M")
    assert ret.loc[pd.Period("2020-01", "M"), 4] == 0.0
    with pytest.raises(DataValidationError, match="differs from the log's window end"):
        cohort_retention(log, "M", observation_end="2020-03-01")
