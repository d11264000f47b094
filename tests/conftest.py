"""Shared fixtures: the CDNOW log and small hand-made logs."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from crm_lib.data import load_transactions
from crm_lib.datasets import CDNOW_COLUMN_MAP

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def cdnow_log():
    """The full CDNOW log shipped with lifetimes, as the default params read it."""
    return load_transactions(
        "embedded:CDNOW_master.txt", column_map=CDNOW_COLUMN_MAP, sep=r"\s+", date_format="%Y%m%d"
    )


@pytest.fixture
def write_csv(tmp_path):
    """Write a CSV from text and return its path."""

    def write(text: str, name: str = "transactions.csv") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write


@pytest.fixture
def small_tx() -> pd.DataFrame:
    """Three customers over two months, with same-day purchases."""
    return pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "a", "b", "c", "c"],
            "date": pd.to_datetime(
                ["2020-01-01", "2020-01-01", "2020-01-15", "2020-02-10", "2020-01-20", "2020-02-03", "2020-02-28"]
            ),
            "amount": [10.0, 5.0, 20.0, 30.0, 8.0, 12.0, 0.0],
        }
    )
