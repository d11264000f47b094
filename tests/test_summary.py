"""Per-customer summary: equal to lifetimes on CDNOW, exact on a hand-made log, invariants."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm_lib.data import TransactionLog
from crm_lib.exceptions import DataValidationError
from crm_lib.summary import calibration_holdout_summary, rfm_summary

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from lifetimes.utils import calibration_and_holdout_data, summary_data_from_transaction_data


@pytest.mark.parametrize("time_unit", ["D", "W"])
def test_equals_lifetimes_summary_on_cdnow(cdnow_log, time_unit):
    tx = cdnow_log.transactions
    # lifetimes ends observation at the last transaction date by default; the log says the same day.
    assert cdnow_log.observation_end == tx["date"].max()
    ours = rfm_summary(cdnow_log.with_time_unit(time_unit))
    theirs = summary_data_from_transaction_data(tx, "customer_id", "date", "amount", freq=time_unit)
    assert len(ours) == 23_570
    pd.testing.assert_frame_equal(ours, theirs, check_names=False, rtol=1e-12)


def test_equals_lifetimes_with_hours_and_multiplier(cdnow_log):
    tx = cdnow_log.transactions
    ours = rfm_summary(tx, time_unit="h", unit_multiplier=24, amount_col=None, observation_end="1998-01-15")
    # The window rule: the end day is observed whole, so in hours T runs to its last hour.
    theirs = summary_data_from_transaction_data(
        tx, "customer_id", "date", freq="h", freq_multiplier=24, observation_period_end="1998-01-15 23:00"
    )
    pd.testing.assert_frame_equal(ours, theirs, check_names=False, rtol=1e-12)


@pytest.mark.parametrize("time_unit", ["D", "W"])
def test_equals_lifetimes_calibration_holdout_on_cdnow(cdnow_log, time_unit):
    tx = cdnow_log.transactions
    ours = calibration_holdout_summary(
        tx, calibration_end="1997-09-30", observation_end="1998-06-30", time_unit=time_unit
    )
    theirs = calibration_and_holdout_data(
        tx, "customer_id", "date", calibration_period_end="1997-09-30", observation_period_end="1998-06-30",
        freq=time_unit, monetary_value_col="amount",
    )
    assert list(ours.columns) == list(theirs.columns)
    pd.testing.assert_frame_equal(ours, theirs, check_names=False, check_dtype=False, rtol=1e-12)
    # CDNOW: weeks 1997-09-30 .. 1998-06-30 is a 39-week holdout.
    if time_unit == "W":
        assert ours["duration_holdout"].iloc[0] == 39


def test_exact_values_on_hand_made_log(small_tx):
    out = rfm_summary(small_tx, observation_end="2020-03-01")
    # a: purchases on Jan 1 (two, merged: 15), Jan 15 (20), Feb 10 (30) -> x = 2, t_x = 40, T = 60,
    #    mean repeat spend (20 + 30) / 2 = 25
    # b: one purchase on Jan 20 -> x = 0, t_x = 0, T = 41, spend 0
    # c: Feb 3 then Feb 28 (amount 0) -> x = 1, t_x = 25, T = 27, spend 0
    expected = pd.DataFrame(
        {"frequency": [2.0, 0.0, 1.0], "recency": [40.0, 0.0, 25.0], "T": [60.0, 41.0, 27.0],
         "monetary_value": [25.0, 0.0, 0.0]},
        index=pd.Index(["a", "b", "c"], name="customer_id"),
    )
    pd.testing.assert_frame_equal(out, expected)
    weekly = rfm_summary(small_tx, observation_end="2020-03-01", time_unit="W")
    # 2020-01-01 is a Wednesday (week of Dec 30); 2020-02-10 is a Monday six weeks later.
    assert weekly.loc["a", "recency"] == 6.0
    assert weekly.loc["a", "frequency"] == 2.0


def test_include_first_transaction(small_tx):
    out = rfm_summary(small_tx, observation_end="2020-03-01", include_first_transaction=True)
    assert out.loc["a", "frequency"] == 3.0
    assert out.loc["a", "monetary_value"] == pytest.approx(65 / 3)


def test_holdout_needs_purchases_on_both_sides(small_tx):
    from crm_lib.exceptions import DataValidationError

    with pytest.raises(DataValidationError, match="no purchase after calibration_end"):
        calibration_holdout_summary(small_tx, calibration_end="2020-02-28", observation_end="2020-03-30")
    with pytest.raises(DataValidationError, match="must be before observation_end"):
        calibration_holdout_summary(small_tx, calibration_end="2020-03-01", observation_end="2020-02-01")


logs = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=6),  # customer
        st.integers(min_value=0, max_value=120),  # day offset
        st.floats(min_value=0.0, max_value=500.0, allow_nan=False),
    ),
    min_size=1,
    max_size=40,
)


def _frame(rows):
    return pd.DataFrame(
        {
            "customer_id": [f"c{c}" for c, _, _ in rows],
            "date": pd.Timestamp("2021-03-01") + pd.to_timedelta([d for _, d, _ in rows], unit="D"),
            "amount": [a for _, _, a in rows],
        }
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(logs, st.sampled_from(["D", "W"]))
def test_invariants_and_agreement_with_lifetimes(rows, time_unit):
    tx = _frame(rows)
    # lifetimes' default end is the last transaction date: say so explicitly.
    out = rfm_summary(tx, time_unit=time_unit, observation_end=tx["date"].max())
    assert (out["frequency"] >= 0).all()
    assert (out["recency"] >= 0).all()
    assert (out["recency"] <= out["T"]).all()
    assert ((out["frequency"] == 0) == (out["recency"] == 0)).all()
    assert (out.loc[out["frequency"] == 0, "monetary_value"] == 0).all()
    theirs = summary_data_from_transaction_data(tx, "customer_id", "date", "amount", freq=time_unit)
    pd.testing.assert_frame_equal(out, theirs, check_names=False, rtol=1e-9, atol=1e-9)


def test_large_log_is_consistent():
    # 200,000 random transactions: totals add up (each customer's merged periods count once).
    rng = np.random.default_rng(7)
    n = 200_000
    tx = pd.DataFrame(
        {
            "customer_id": rng.integers(0, 20_000, n).astype(str),
            "date": pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 365, n), unit="D"),
            "amount": rng.gamma(2.0, 20.0, n),
        }
    )
    out = rfm_summary(tx, observation_end=tx["date"].max())
    distinct_days = tx.drop_duplicates(["customer_id", "date"]).groupby("customer_id").size()
    assert out["frequency"].sum() == (distinct_days - 1).sum()


def test_bare_frame_without_end_is_an_error(small_tx):
    # The window travels with the log: no silent default to the last purchase.
    with pytest.raises(DataValidationError, match="no observation window"):
        rfm_summary(small_tx)
    with pytest.raises(DataValidationError, match="no observation window"):
        calibration_holdout_summary(small_tx, calibration_end="2020-02-01")


def test_log_window_is_used_and_a_different_end_refused(small_tx):
    log = TransactionLog.from_frame(small_tx, observation_end="2020-03-01", time_unit="D")
    pd.testing.assert_frame_equal(rfm_summary(log), rfm_summary(small_tx, observation_end="2020-03-01"))
    # a timestamp on the end day is the same end (the last day is included whole)
    pd.testing.assert_frame_equal(rfm_summary(log, observation_end="2020-03-01 17:30"), rfm_summary(log))
    with pytest.raises(DataValidationError, match="differs from the log's window end"):
        rfm_summary(log, observation_end="2020-02-15")


def test_calibration_end_defaults_to_the_window_midpoint(cdnow_log):
    # CDNOW 1997-01-01 .. 1998-06-30: the midpoint rule gives the 39-week calibration of
    # Fader, Hardie & Lee (2005), i.e. their calibration_period_end 1997-09-30.
    assert cdnow_log.window.midpoint() == pd.Timestamp("1997-09-30")
    default = calibration_holdout_summary(cdnow_log.with_time_unit("W"))
    explicit = calibration_holdout_summary(cdnow_log, calibration_end="1997-09-30", time_unit="W")
    pd.testing.assert_frame_equal(default, explicit)
    assert default["duration_holdout"].iloc[0] == 39
