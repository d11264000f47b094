"""Lapse-rule churn computed once per log (issue 17): the sensitivity table and the backtest
reuse one per-day aggregation, and must equal the previous per-call computation."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crm_lib.exceptions import DataValidationError
from crm_lib.survival import kaplan_meier, lapse_backtest, lapse_sensitivity, time_to_churn
from crm_lib.survival.lapse import CENSORING_RULES, _days_until, _period_labels, _purchase_days


@pytest.fixture(scope="module")
def random_log() -> pd.DataFrame:
    rng = np.random.default_rng(17)
    n = 4000
    customer = rng.integers(0, 900, n)
    start = pd.Timestamp("2021-01-01")
    days = rng.integers(0, 900, n) + (customer % 7) * 20  # several orders on a day for some customers
    return pd.DataFrame({
        "customer_id": [f"c{c}" for c in customer],
        "date": start + pd.to_timedelta(days, unit="D") + pd.to_timedelta(rng.integers(0, 86_400, n), unit="s"),
        "amount": rng.gamma(2.0, 20.0, n).round(2),
        "quantity": rng.integers(1, 4, n),
        "channel": rng.choice(["web", "store"], n),
    })


def _sensitivity_per_call(tx, lapse_days, horizon_days=365):
    """The previous implementation: time_to_churn and kaplan_meier once per threshold."""
    rows = {}
    for n_days in lapse_days:
        churn = time_to_churn(tx, lapse_days=n_days)
        km = kaplan_meier(churn)
        at, med = km.survival_at(horizon_days).loc["all"], km.medians.loc["all"]
        rows[n_days] = (len(churn), churn["churned"].mean(), churn["reactivated"].mean(), med["median_days"],
                        med["median_lower"], med["median_upper"], at["survival"], at["lower"], at["upper"])
    return rows


def test_sensitivity_equals_one_call_per_threshold(random_log):
    grid = [30, 90, 180, 365]
    table = lapse_sensitivity(random_log, lapse_days=grid)
    expected = _sensitivity_per_call(random_log, grid)
    columns = ["customers", "churned_share", "reactivated_share", "median_days", "median_lower", "median_upper",
               "retention_at_horizon", "retention_lower", "retention_upper"]
    for n_days in grid:
        np.testing.assert_allclose(table.loc[n_days, columns].to_numpy(dtype=float),
                                   np.array(expected[n_days], dtype=float), rtol=0, atol=1e-12, equal_nan=True)


def test_backtest_equals_churn_on_the_truncated_log(random_log):
    result = lapse_backtest(random_log, holdout_days=200, lapse_days=90, horizons_days=(60, 120))
    cut = result.truncate_at
    truncated = random_log[random_log["date"].dt.normalize() <= cut]  # the shortened window, cut independently
    short = {rule: time_to_churn(truncated, lapse_days=90, observation_end=cut, censoring=rule) for rule in CENSORING_RULES}
    followed = short["recognisable"]["duration_days"].notna()
    customers = followed[followed].index
    assert result.customers == len(customers)
    for rule in CENSORING_RULES:
        at = kaplan_meier(short[rule].loc[customers]).survival_at(120).loc["all"]
        assert result.table.loc[(120, rule), "estimate"] == pytest.approx(at["survival"], abs=1e-12)
        assert result.table.loc[(120, rule), "lower"] == pytest.approx(at["lower"], abs=1e-12)


@pytest.fixture(scope="module")
def loaded_log(random_log) -> pd.DataFrame:
    """The same log as crm_lib.data.load_transactions hands it over: sorted by customer and date,
    ids as Arrow-backed text, which takes the codes-only path of the lapse rule."""
    out = random_log.sort_values(["customer_id", "date"], kind="stable").reset_index(drop=True)
    return out.assign(customer_id=out["customer_id"].astype("str"))


def test_codes_only_path_on_a_loaded_log_equals_one_call_per_threshold(loaded_log):
    days, _ = _purchase_days(loaded_log, None, with_ids=False)
    assert list(days.columns) == ["customer", "day"]  # the path under test was taken
    grid = [30, 90, 365]
    table = lapse_sensitivity(loaded_log, lapse_days=grid)
    expected = _sensitivity_per_call(loaded_log, grid)
    for n_days in grid:
        np.testing.assert_allclose(table.loc[n_days, ["customers", "churned_share", "reactivated_share", "median_days",
                                                      "median_lower", "median_upper", "retention_at_horizon",
                                                      "retention_lower", "retention_upper"]].to_numpy(dtype=float),
                                   np.array(expected[n_days], dtype=float), rtol=0, atol=1e-12, equal_nan=True)
    result = lapse_backtest(loaded_log, holdout_days=200, lapse_days=90, horizons_days=(60, 120))
    reference = lapse_backtest(random_log_of(loaded_log), holdout_days=200, lapse_days=90, horizons_days=(60, 120))
    assert result.customers == reference.customers
    pd.testing.assert_frame_equal(result.table, reference.table, check_exact=False, rtol=0, atol=1e-12)


def random_log_of(loaded: pd.DataFrame) -> pd.DataFrame:
    """The loaded log with plain object ids in shuffled row order: the general path."""
    return loaded.assign(customer_id=loaded["customer_id"].astype(object)).sample(frac=1.0, random_state=5)


def test_days_until_equals_aggregating_the_shorter_window(random_log):
    days, _ = _purchase_days(random_log, None)
    cut = pd.Timestamp("2022-03-15")
    pd.testing.assert_frame_equal(_days_until(days, cut), _purchase_days(random_log, cut)[0])
    first = f"{random_log['date'].min():%Y-%m-%d}"
    with pytest.raises(DataValidationError, match=rf"observation_end \(2020-01-01\); the data start on {first}\."):
        _days_until(days, pd.Timestamp("2020-01-01"))


@pytest.mark.parametrize("freq", ["W", "M", "Q", "Y"])
def test_period_labels_equal_pandas_periods(freq):
    day = np.random.default_rng(3).integers(18_000, 20_000, 500)
    expected = pd.to_datetime(day.astype("datetime64[D]")).to_period(freq).astype(str)
    assert list(_period_labels(day, freq)) == list(expected)


@pytest.mark.parametrize("size", [0, 1, 7, 5000])
def test_sorted_unique_equals_numpy_unique(size):
    from crm_lib.clv.value import _sorted_unique

    values = np.sort(np.random.default_rng(size).integers(0, max(size // 3, 1), size))
    expected_values, expected_inverse = np.unique(values, return_inverse=True)
    got_values, got_inverse = _sorted_unique(values)
    np.testing.assert_array_equal(got_values, expected_values)
    np.testing.assert_array_equal(got_inverse, expected_inverse.reshape(-1))
