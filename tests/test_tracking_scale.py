"""The FHL tracking counts by sorted integer keys (issue 17) equal the earlier pandas grouping."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crm_lib import clv
from crm_lib.summary import period_numbers


class _Curve:
    """E[X(t)] = 0.3 t: any increasing curve; the counts under test do not depend on it."""

    def expected_number_of_purchases_up_to_time(self, t):
        return 0.3 * np.asarray(t, dtype=float)


def _counts_by_pandas(tx, calibration_end, observation_end, time_unit):
    """The earlier implementation (groupby, isin, map, drop_duplicates), kept as the reference."""
    dates = pd.to_datetime(tx["date"])
    periods = period_numbers(dates, time_unit)
    codes, _ = pd.factorize(tx["customer_id"].to_numpy())
    frame = pd.DataFrame({"c": codes, "p": periods, "d": dates.to_numpy()})
    frame = frame[frame["d"] <= observation_end]
    first_date = frame.groupby("c")["d"].min()
    cohort_codes = first_date.index[first_date <= pd.Timestamp(calibration_end)]
    frame = frame[frame["c"].isin(cohort_codes)][["c", "p"]].drop_duplicates()
    cohort = frame.groupby("c")["p"].min()
    end_period = int(period_numbers(pd.Series([observation_end]), time_unit)[0])
    all_periods = np.arange(int(cohort.min()), end_period + 1)
    repeat = frame[frame["p"] > frame["c"].map(cohort)]
    actual = repeat.groupby("p").size().reindex(all_periods, fill_value=0).to_numpy(dtype=float)
    n_first = cohort.value_counts().reindex(all_periods, fill_value=0).to_numpy(dtype=float)
    return actual, n_first, len(cohort)


@pytest.mark.parametrize("ids", ["int", "text", "loaded"])
@pytest.mark.parametrize("time_unit", ["W", "D"])
def test_tracking_counts_equal_the_pandas_grouping(ids, time_unit):
    rng = np.random.default_rng(11)
    n = 6000
    customer = rng.integers(0, 1500, n)
    days = rng.integers(0, 400, n) + (customer % 5) * 30  # late starters: some first seen after the cut
    tx = pd.DataFrame({"customer_id": customer,
                       "date": pd.Timestamp("2021-01-04") + pd.to_timedelta(days, unit="D")
                       + pd.to_timedelta(rng.integers(0, 86_400, n), unit="s")})
    if ids != "int":
        tx["customer_id"] = tx["customer_id"].map("id-{}".format).astype("str")
    if ids == "loaded":  # as load_transactions hands it over: sorted by id and date (the run-numbering path)
        tx = tx.sort_values(["customer_id", "date"], kind="stable").reset_index(drop=True)
    calibration_end, observation_end = pd.Timestamp("2021-06-30"), pd.Timestamp("2021-12-31")
    out = clv.repeat_transactions_tracking(tx, _Curve(), calibration_end=calibration_end,
                                           observation_end=observation_end, time_unit=time_unit)
    actual, n_first, n_customers = _counts_by_pandas(tx, calibration_end, observation_end, time_unit)
    np.testing.assert_array_equal(out["actual"].to_numpy(), actual)
    assert out.attrs["n_customers"] == n_customers
    # The model side depends on the cohort sizes by first period: the convolution with 0.3 t.
    ages = np.arange(len(actual), dtype=float)
    curve = 0.3 * ages
    np.testing.assert_allclose(out["expected_cumulative"].to_numpy(), np.convolve(n_first, curve)[: len(actual)],
                               rtol=1e-12, atol=0)
    assert out["actual_cumulative"].iloc[-1] == actual.sum() > 0
