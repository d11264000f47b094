"""The DuckDB engine against the pandas path (crm_lib.summary, crm_lib.kpi, crm_lib.data).

The pandas path is itself tested against lifetimes (tests/test_summary.py), so equality
at 1e-12 here ties the out-of-core engine to lifetimes' definitions too.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crm_lib import kpi, summary
from crm_lib.clv import customer_value_table, fit_model, fit_spend_model
from crm_lib.data import load_transactions
from crm_lib.datasets import CDNOW_COLUMN_MAP, cdnow_master_path
from crm_lib.engines import duckdb as engine
from crm_lib.exceptions import DataValidationError

TOL = dict(rtol=1e-12, atol=1e-12)


@pytest.fixture(scope="module")
def cdnow_csv(tmp_path_factory):
    """CDNOW as a comma-separated file (DuckDB reads single-character separators)."""
    path = tmp_path_factory.mktemp("cdnow") / "cdnow.csv"
    pd.read_csv(cdnow_master_path(), sep=r"\s+", dtype=str).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def cdnow_duck(cdnow_csv):
    return engine.open_log(cdnow_csv, column_map=CDNOW_COLUMN_MAP, date_format="%Y%m%d")


def random_log(seed: int, n: int = 3000, native: bool = False) -> pd.DataFrame:
    """Purchases at random times of day, with duplicates, refunds and free orders.

    ``native``: integer ids and timestamps (as a warehouse extract or the benchmark has),
    else text ids and dates as text.
    """
    rng = np.random.default_rng(seed)
    customers = rng.integers(0, n // 4, n)
    seconds = rng.integers(0, 400 * 86400, n)
    dates = pd.Timestamp("2019-12-20") + pd.to_timedelta(seconds, unit="s")
    frame = pd.DataFrame({
        "customer_id": customers if native else np.char.add("c", customers.astype(str)),
        "date": dates if native else dates.strftime("%Y-%m-%d %H:%M:%S"),
        "amount": np.round(rng.gamma(2.0, 20.0, n) * rng.choice([1, 1, 1, 1, 1, 1, -1, 0], n), 2),
    })
    return pd.concat([frame, frame.sample(30, random_state=seed)], ignore_index=True)


def test_cdnow_summary_equals_pandas(cdnow_log, cdnow_duck):
    for time_unit in ("D", "W"):
        expected = summary.rfm_summary(cdnow_log, time_unit=time_unit)
        pd.testing.assert_frame_equal(engine.rfm_summary(cdnow_duck, time_unit=time_unit), expected, **TOL)
    expected = summary.calibration_holdout_summary(cdnow_log, calibration_end="1997-09-30", time_unit="W")
    got = engine.calibration_holdout_summary(cdnow_duck, calibration_end="1997-09-30", time_unit="W")
    pd.testing.assert_frame_equal(got, expected, **TOL)


def test_cdnow_quality_kpis_and_cohorts_equal_pandas(cdnow_log, cdnow_duck):
    # 255 duplicates and 80 free orders: the counts crm_lib.data finds in the file.
    columns = ["check", "rows", "share_of_rows", "rule"]
    pd.testing.assert_frame_equal(cdnow_duck.quality[columns], cdnow_log.quality[columns])
    expected, got = kpi.headline_kpis(cdnow_log), engine.headline_kpis(cdnow_duck)
    for name, value in vars(expected).items():
        assert getattr(got, name) == (pytest.approx(value, rel=1e-12) if isinstance(value, float) else value), name
    for period in ("M", "Q"):
        tx = cdnow_log  # the log: its window end bounds the tables, as in the engine
        pd.testing.assert_frame_equal(engine.activity_by_period(cdnow_duck, period), kpi.activity_by_period(tx, period), **TOL)
        pd.testing.assert_frame_equal(engine.cohort_sizes(cdnow_duck, period), kpi.cohort_sizes(tx, period), **TOL)
        pd.testing.assert_frame_equal(engine.cohort_retention(cdnow_duck, period), kpi.cohort_retention(tx, period), **TOL)


@pytest.mark.parametrize("seed,native", [(1, False), (2, True)])
@pytest.mark.parametrize("rules", [{}, {"duplicate_rows": "drop", "negative_amounts": "keep", "zero_amounts": "drop",
                                       "observation_end": "2020-10-15"}])
def test_random_logs_equal_pandas(tmp_path, seed, native, rules):
    path = tmp_path / "log.parquet"
    random_log(seed, native=native).to_parquet(path)
    log = load_transactions(path, **rules)
    duck = engine.open_log(path, **rules)
    columns = ["check", "rows", "share_of_rows", "rule"]
    pd.testing.assert_frame_equal(duck.quality[columns], log.quality[columns])
    tx = log  # the log carries the window; a bare frame has none
    for time_unit in ("D", "W", "h"):
        pd.testing.assert_frame_equal(engine.rfm_summary(duck, time_unit=time_unit),
                                      summary.rfm_summary(tx, time_unit=time_unit), **TOL)
    pd.testing.assert_frame_equal(
        engine.calibration_holdout_summary(duck, calibration_end="2020-06-30 12:00", time_unit="D"),
        summary.calibration_holdout_summary(tx, calibration_end="2020-06-30 12:00", time_unit="D"), **TOL)
    pd.testing.assert_frame_equal(engine.activity_by_period(duck, "W"), kpi.activity_by_period(tx, "W"), **TOL)
    pd.testing.assert_frame_equal(engine.cohort_sizes(duck, "W"), kpi.cohort_sizes(tx, "W"), **TOL)
    pd.testing.assert_frame_equal(engine.cohort_retention(duck, "M"), kpi.cohort_retention(tx, "M"), **TOL)


def test_collapsed_fit_and_scores_equal_per_customer_path(cdnow_log, cdnow_duck):
    per_customer = summary.rfm_summary(cdnow_log, time_unit="W")
    rows = engine.collapsed_histories(cdnow_duck, time_unit="W")
    assert rows["weight"].sum() == len(per_customer) == 23570
    assert len(rows) < len(per_customer) / 5
    fit = fit_model(rows, "bg_nbd", weights=rows["weight"])
    reference = fit_model(per_customer, "bg_nbd")
    np.testing.assert_allclose(fit.params_, reference.params_, rtol=1e-6)
    spend_rows = engine.collapsed_spend(cdnow_duck, time_unit="W")
    assert spend_rows["weight"].sum() == (per_customer["frequency"] > 0).sum()
    spend = fit_spend_model(per_customer, nonpositive_spend="exclude")
    expected = customer_value_table(per_customer, reference, spend, discount_rate_monthly=0.01)
    got = engine.score_customers(cdnow_duck, reference, spend, time_unit="W")
    pd.testing.assert_frame_equal(got, expected[got.columns], rtol=1e-10, atol=1e-12, check_like=False)


def test_bad_input_is_a_data_validation_error(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("customer_id,date,amount\na,2020-01-01,3\nb,2020-13-01,4\n")
    with pytest.raises(DataValidationError, match=r"bad.csv: column 'date' \(date\) has 1 of 2 values.*2020-13-01"):
        engine.open_log(bad)
    with pytest.raises(DataValidationError, match="column 'spend' \\(amount\\) not found"):
        engine.open_log(bad, column_map={"amount": "spend"})


@pytest.mark.parametrize("as_float", [False, True])
def test_decimal_ids_are_normalised_as_in_pandas(tmp_path, as_float):
    # "7" and "7.0" are one customer, "007" another (crm_lib.data.normalise_ids); a float
    # column (an integer id exported through a spreadsheet) has every whole value flagged.
    rng = np.random.default_rng(5)
    n = 400
    ids = rng.integers(1, 60, n)
    dates = pd.Timestamp("2021-01-01") + pd.to_timedelta(rng.integers(0, 200, n), unit="D")
    if as_float:
        customer = ids.astype(float)
        customer[:5] = ids[:5] + 0.5
    else:
        customer = np.where(rng.random(n) < 0.3, np.char.add(ids.astype(str), ".0"), ids.astype(str)).astype(object)
        customer[:3] = ["007", " 7 ", "7.00"]
    frame = pd.DataFrame({"customer_id": customer, "date": dates, "amount": rng.gamma(2.0, 10.0, n).round(2)})
    path = tmp_path / "ids.parquet"
    frame.to_parquet(path)
    log, duck = load_transactions(path), engine.open_log(path)
    columns = ["check", "rows", "share_of_rows", "rule"]
    pd.testing.assert_frame_equal(duck.quality[columns], log.quality[columns])
    assert log.quality.set_index("check").loc["customer ids written as decimals (1.0)", "rows"] > 0
    pd.testing.assert_frame_equal(engine.rfm_summary(duck, time_unit="D"), summary.rfm_summary(log, time_unit="D"), **TOL)
