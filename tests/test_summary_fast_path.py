"""The summary's fast path (integer ids as codes, packed stable sort, integer period numbers) equals lifetimes.

Reference: ``lifetimes.utils.summary_data_from_transaction_data`` (an independent
implementation with pandas groupby), on a random log whose rows are in random order, with
integer ids (their own codes, gaps included), the same ids as text (factorized) and a
log whose keys do not fit the packed sort (the plain stable argsort).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crm_lib import summary as summary_module
from crm_lib.summary import period_numbers, rfm_summary

lifetimes_utils = pytest.importorskip("lifetimes.utils")


def _random_log(seed: int, n: int = 10_000, customers: int = 1_500) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ids = rng.choice(rng.integers(10**6, 10**9, customers), n)  # sparse integer ids, random row order
    seconds = rng.integers(0, 400 * 86_400, n)
    return pd.DataFrame({
        "customer_id": ids,
        "date": (np.datetime64("2019-12-29") + seconds.astype("timedelta64[s]")).astype("datetime64[ms]"),
        "amount": np.round(rng.gamma(2.0, 20.0, n), 2),
    })


@pytest.mark.parametrize("time_unit", ["D", "W", "h"])
@pytest.mark.parametrize("ids", ["integer", "text"])
def test_equals_lifetimes_on_a_shuffled_random_log(time_unit, ids):
    tx = _random_log(3)
    if ids == "text":
        tx["customer_id"] = tx["customer_id"].astype(str)
    end = tx["date"].max()
    ours = rfm_summary(tx, observation_end=end, time_unit=time_unit)
    # The window includes its last day whole: lifetimes is given that day's last minute.
    theirs = lifetimes_utils.summary_data_from_transaction_data(
        tx, "customer_id", "date", "amount", freq=time_unit,
        observation_period_end=end.normalize() + pd.Timedelta(hours=23, minutes=59))
    assert len(ours) == tx["customer_id"].nunique()
    pd.testing.assert_frame_equal(ours, theirs, check_names=False, rtol=1e-12, atol=1e-12)


def test_row_order_and_sort_path_do_not_change_the_summary(monkeypatch):
    tx = _random_log(5)
    end = tx["date"].max()
    packed = rfm_summary(tx, observation_end=end, time_unit="D")
    by_customer = rfm_summary(tx.sort_values(["customer_id", "date"]), observation_end=end, time_unit="D")
    pd.testing.assert_frame_equal(packed, by_customer, rtol=1e-12, atol=1e-12)

    def argsort_only(key):  # the fallback for keys too wide to pack with the row number
        order = np.argsort(key, kind="stable")
        return order, key[order]

    monkeypatch.setattr(summary_module, "_stable_sort", argsort_only)
    pd.testing.assert_frame_equal(rfm_summary(tx, observation_end=end, time_unit="D"), packed, rtol=0, atol=0)


def test_stable_sort_matches_numpy_and_falls_back_for_wide_keys():
    rng = np.random.default_rng(0)
    for key in (rng.integers(0, 50, 10_000), rng.integers(0, 2**62, 1_000)):
        order, sorted_key = summary_module._stable_sort(key.astype(np.int64))
        np.testing.assert_array_equal(order, np.argsort(key, kind="stable"))
        np.testing.assert_array_equal(sorted_key, np.sort(key))


def test_period_numbers_by_integer_division_equal_numpy_casts():
    # Dates before 1970 (negative ticks) and in several stored units: floor, not truncation.
    rng = np.random.default_rng(1)
    ns = np.datetime64("1969-06-01") + rng.integers(-10**16, 10**17, 5_000).astype("timedelta64[ns]")
    for unit in ("s", "ms", "us", "ns"):
        dates = pd.Series(ns.astype(f"datetime64[{unit}]"))
        reference = dates.to_numpy().astype("datetime64[ns]")
        np.testing.assert_array_equal(period_numbers(dates, "D"), reference.astype("datetime64[D]").astype(np.int64))
        np.testing.assert_array_equal(period_numbers(dates, "h"), reference.astype("datetime64[h]").astype(np.int64))
        weeks = pd.PeriodIndex(pd.DatetimeIndex(reference), freq="W").asi8 - 1  # pandas counts from the week before
        np.testing.assert_array_equal(period_numbers(dates, "W"), weeks)
