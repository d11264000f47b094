"""Customer codes from the runs of a sorted log (``crm_lib.summary.sorted_id_runs``): the
same codes and uniques as ``pd.factorize(sort=True)``, and the same summary as a shuffled log."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crm_lib.summary import rfm_summary, sorted_id_runs
from tests.test_engines_duckdb import random_log

# Non-ASCII ids: UTF-8 byte order must be the code-point order pandas sorts by.
LETTERS = np.array(["a", "B", "z", "é", "Ω", "日", "0", " ", "ß", "Z"])


def _sorted_text_ids(seed: int, n: int = 5000) -> pd.Series:
    rng = np.random.default_rng(seed)
    ids = pd.Series(["".join(rng.choice(LETTERS, rng.integers(1, 4))) for _ in range(n)], dtype="str")
    return ids.sort_values(kind="stable").reset_index(drop=True)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_runs_equal_factorize_with_sorted_uniques(seed):
    ids = _sorted_text_ids(seed)
    codes, uniques = sorted_id_runs(ids)
    expected_codes, expected_uniques = pd.factorize(ids, sort=True)
    np.testing.assert_array_equal(codes, expected_codes)
    pd.testing.assert_index_equal(uniques, pd.Index(expected_uniques))
    assert uniques.tolist() == sorted(set(ids))  # Python's own order of str


def test_runs_refuse_what_they_cannot_number():
    ids = _sorted_text_ids(4)
    assert sorted_id_runs(ids[::-1].reset_index(drop=True)) is None  # not in order
    assert sorted_id_runs(ids.astype(object)) is None  # not Arrow text
    with_missing = pd.concat([ids, pd.Series([None], dtype="str")], ignore_index=True)
    assert sorted_id_runs(with_missing) is None


@pytest.mark.parametrize("seed", [5, 6])
def test_summary_of_a_sorted_log_equals_the_shuffled_log(seed):
    log = random_log(seed)
    log = log[log["amount"] > 0].assign(date=lambda f: pd.to_datetime(f["date"]),
                                        customer_id=lambda f: f["customer_id"].astype("str"))
    ordered = log.sort_values(["customer_id", "date"], kind="stable").reset_index(drop=True)
    assert sorted_id_runs(ordered["customer_id"]) is not None
    shuffled = ordered.sample(frac=1.0, random_state=seed)
    assert sorted_id_runs(shuffled["customer_id"]) is None
    for time_unit in ("D", "W"):
        expected = rfm_summary(shuffled, time_unit=time_unit, observation_end="2021-01-31")
        got = rfm_summary(ordered, time_unit=time_unit, observation_end="2021-01-31")
        pd.testing.assert_frame_equal(got, expected, check_exact=True)


def test_lapse_tables_of_a_sorted_log_equal_the_shuffled_log():
    # The lapse rule's per-day rows and churn table from the id runs of a log sorted by
    # customer and date (as loaded) equal pandas' groupby of the same rows (ids as Python objects).
    from crm_lib.survival import time_to_churn
    from crm_lib.survival.lapse import _purchase_days

    rng = np.random.default_rng(17)
    customer = rng.integers(0, 900, 4000)
    log = pd.DataFrame({
        "customer_id": pd.Series([f"c{c}" for c in customer], dtype="str"),
        "date": pd.Timestamp("2021-01-01") + pd.to_timedelta(rng.integers(0, 900, 4000), unit="D")
        + pd.to_timedelta(rng.integers(0, 86_400, 4000), unit="s"),  # several orders on some days
        "amount": rng.gamma(2.0, 20.0, 4000).round(2),
        "quantity": rng.integers(1, 4, 4000),
        "channel": rng.choice(["web", "store", None], 4000),
    })
    ordered = log.sort_values(["customer_id", "date"], kind="stable").reset_index(drop=True)
    objects = ordered.assign(customer_id=ordered["customer_id"].astype(object))
    assert sorted_id_runs(ordered["customer_id"]) is not None and sorted_id_runs(objects["customer_id"]) is None
    for end in (None, pd.Timestamp("2022-06-30")):
        pd.testing.assert_frame_equal(_purchase_days(ordered, end)[0], _purchase_days(objects, end)[0],
                                      check_dtype=False, check_exact=True)
        pd.testing.assert_frame_equal(time_to_churn(ordered, lapse_days=120, observation_end=end),
                                      time_to_churn(objects, lapse_days=120, observation_end=end),
                                      check_dtype=False, check_index_type=False, check_exact=True)
