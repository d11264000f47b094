"""The column-wise CSV writer writes the very bytes of pandas' ``DataFrame.to_csv``.

The reference is pandas itself (an independent implementation): every table is written by
both and the files compared byte for byte.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crm_lib import export
from crm_lib.export import write_csv_like_pandas, write_customer_table
from crm_lib.segments import active_passive_loyalty, customer_actions, rfm_segmentation, value_loyalty_portfolio

TEXTS = np.array(["", "a", "b,c", 'say "hi"', '"', "line\nbreak", "cr\rx", "crlf\r\n", " lead", "tab\tx",
                  "é漢字🙂", "NA", "nan", "None", "-", "'q'", "x;y", "0001"], dtype=object)


def _random_table(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    digits = rng.integers(0, 4, n)
    table = pd.DataFrame({
        "customer_id": pd.Series(rng.choice(TEXTS, n)).astype(str) + pd.Series(np.arange(n)).astype(str),
        "object text": pd.Series(rng.choice(TEXTS, n), dtype=object).where(rng.random(n) > 0.1, None),
        "label": pd.Categorical(rng.choice(TEXTS[:6], n), categories=[*TEXTS[:6], "unused"]),
        "any magnitude": rng.standard_normal(n) * 10.0 ** rng.integers(-330, 308, n),
        "money": np.where(rng.random(n) < 0.2, np.nan, np.round(rng.gamma(1, 50, n) * 10.0 ** digits) / 10.0 ** digits),
        "edges": rng.choice([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-4, 9.999e-5, 1e10, 9999999999.999998, 5e-324,
                             1e16, 2.0 ** 53, 0.1 + 0.2], n),
        "count": rng.integers(-10**12, 10**12, n),
        "flag": rng.random(n) < 0.5,
        "big": rng.integers(0, 2**63, n).astype(np.uint64),
    })
    table.loc[::7, "label"] = np.nan
    return table


def _same_as_pandas(table: pd.DataFrame, tmp_path, index: bool) -> bool:
    ours, theirs = tmp_path / "ours.csv", tmp_path / "pandas.csv"
    assert write_csv_like_pandas(table, ours, index=index)
    table.to_csv(theirs, index=index)
    return ours.read_bytes() == theirs.read_bytes()


@pytest.mark.parametrize("index", [False, True])
def test_random_table_byte_identical_to_pandas(tmp_path, monkeypatch, index):
    monkeypatch.setattr(export, "CSV_CHUNK_ROWS", 3_000)  # several chunks, and label columns by dictionary
    table = _random_table(7_001)
    assert _same_as_pandas(table, tmp_path, index)
    assert _same_as_pandas(table.set_index("customer_id"), tmp_path, index)
    assert _same_as_pandas(table.iloc[:0], tmp_path, index)  # header only
    assert _same_as_pandas(table[["customer_id", "money"]].iloc[:1], tmp_path, index)


def test_customer_actions_of_cdnow_byte_identical(cdnow_log, tmp_path):
    seg = rfm_segmentation(cdnow_log.transactions, None, observation_end=cdnow_log.observation_end)
    actions = customer_actions(seg, value_loyalty_portfolio(seg.customers, None), active_passive_loyalty(seg.customers, None))
    assert _same_as_pandas(actions.reset_index(), tmp_path, index=False)
    assert _same_as_pandas(actions, tmp_path, index=True)


def test_unsupported_tables_fall_back_to_pandas(tmp_path):
    dates = pd.DataFrame({"id": ["a", "b"], "day": pd.to_datetime(["2020-01-01", "2020-01-02"])})
    mixed = pd.DataFrame({"id": ["a", "b"], "x": pd.Series([1, "b"], dtype=object)})
    narrow = pd.DataFrame({"x": np.array([0.1, 0.2], dtype=np.float32), "id": ["a", "b"]})
    for table in (dates, mixed, narrow, pd.DataFrame({"only": ["", "x"]})):
        assert not write_csv_like_pandas(table, tmp_path / "x.csv", index=False)
        path = write_customer_table(table, tmp_path / "y.csv", index=False)  # the pandas writer instead
        assert path.read_bytes() == table.to_csv(index=False).encode()
