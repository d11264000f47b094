"""Shared fixtures: the CDNOW log and small hand-made logs."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from crm_lib.data import load_transactions
from crm_lib.datasets import CDNOW_COLUMN_MAP

REPO = Path(__file__).resolve().parents[1]


#: The pseudonym key of every test (never a key file in the home folder of whoever runs them).
TEST_PSEUDONYM_KEY = "test-key-0123456789abcdef"


@pytest.fixture(scope="session", autouse=True)
def _private_folders(tmp_path_factory):
    """Tests get a known pseudonym key and a throwaway private folder (real-id exports).

    Session-scoped so that it is in place before module-scoped report runs start: no test
    may create a key file in the home folder or write into the project's .crm_private.
    """
    patch = pytest.MonkeyPatch()
    patch.setenv("CRM_PSEUDONYM_KEY", TEST_PSEUDONYM_KEY)
    patch.setenv("CRM_PSEUDONYM_KEY_FILE", str(tmp_path_factory.getbasetemp() / "no-key-file"))
    patch.setenv("CRM_PRIVATE_ROOT", str(tmp_path_factory.getbasetemp() / "crm_private"))
    patch.delenv("CRM_PRIVATE_DIR", raising=False)
    yield
    patch.undo()


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
