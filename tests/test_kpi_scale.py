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
