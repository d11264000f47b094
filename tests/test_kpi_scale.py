"""The KPI and cohort tables on integer codes (crm_lib.kpi) equal the DuckDB engine's SQL
(an independent implementation) for every period, on a random log, and the period
ordinals equal pandas' own ``to_period``."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crm_lib import kpi
from crm_lib.data import load_transactions
from crm_lib.engines import duckdb as engine

from tests.test_engines_duckdb import TOL, random_log


@pytest.mark.parametrize("period", ["W", "M", "Q", "Y"])
def test_period_ordinals_equal_pandas(period):
    dates = pd.Series(pd.Timestamp("1968-02-27") + pd.to_timedelta(np.arange(0, 40_000, 7), unit="h"))
    np.testing.assert_array_equal(kpi.period_ordinals(dates, period), dates.dt.to_period(period).array.asi8)


def test_kpis_and_cohorts_equal_duckdb_for_every_period(tmp_path):
    path = tmp_path / "log.parquet"
    random_log(5, n=6_000).to_parquet(path)
    log, duck = load_transactions(path), engine.open_log(path)
    ours, theirs = kpi.headline_kpis(log), engine.headline_kpis(duck)
    assert (ours.customers, ours.repeat_customers) == (theirs.customers, theirs.repeat_customers)
    for period in ("W", "M", "Q", "Y"):
        pd.testing.assert_frame_equal(kpi.activity_by_period(log, period), engine.activity_by_period(duck, period),
                                      **TOL)
        pd.testing.assert_frame_equal(kpi.cohort_sizes(log, period), engine.cohort_sizes(duck, period), **TOL)
        pd.testing.assert_frame_equal(kpi.cohort_retention(log, period), engine.cohort_retention(duck, period),
                                      **TOL)


def test_cohort_rates_name_cohorts_as_pandas_periods(tmp_path):
    # retention_rates_by_cohort groups by integer ordinals; the cohorts and their rates are
    # those of grouping by the Period strings, as before.
    from crm_lib.survival import retention_rates_by_cohort

    tx = load_transactions(_written(tmp_path)).transactions
    rates = retention_rates_by_cohort(tx, period="M", cohort_period="W", min_cohort_size=5)
    first = tx.groupby("customer_id")["date"].transform("min").dt.to_period("W").astype(str)
    for name, part in tx.groupby(first):
        if part["customer_id"].nunique() < 5:
            assert name not in set(rates["cohort"])
            continue
        expected = kpi.activity_by_period(part, "M")["retention_rate"].dropna()
        got = rates[rates["cohort"] == name]["retention_rate"].to_numpy()
        np.testing.assert_allclose(got, expected.to_numpy(), rtol=1e-12)


def _written(tmp_path):
    path = tmp_path / "log.parquet"
    random_log(9, n=4_000).to_parquet(path)
    return path
