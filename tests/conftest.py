"""Shared fixtures: the CDNOW log and small hand-made logs."""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

import numpy as np

import pandas as pd
import pytest

from crm_lib.data import load_transactions
from crm_lib.datasets import CDNOW_COLUMN_MAP
from crm_lib.simulate import simulate_bg_nbd

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


@contextlib.contextmanager
def _kernel_sees_checkout(**env: str) -> Iterator[None]:
    """Set ``PYTHONPATH`` (and ``env``) so that a notebook kernel, a subprocess, imports this
    checkout's crm_lib, whichever copy is installed; undone on exit."""
    mp = pytest.MonkeyPatch()
    mp.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    for name, value in env.items():
        mp.setenv(name, value)
    try:
        yield
    finally:
        mp.undo()


@pytest.fixture(scope="session")
def kernel_sees_checkout():
    """A context manager for report runs: ``with kernel_sees_checkout(): run_report(...)``."""
    return _kernel_sees_checkout


def _simulated_holdout(n_customers: int) -> pd.DataFrame:
    """A calibration/holdout frame of simulated BG/NBD customers (r=0.5, alpha=6, a=0.8, b=2.5):
    ages 10-39 weeks, a 20-week holdout, the same customers' purchases continued (seed 3)."""
    ages = np.random.default_rng(11).integers(10, 40, n_customers).astype(float)
    calib = simulate_bg_nbd(ages, 0.5, 6.0, 0.8, 2.5, seed=3)
    future = simulate_bg_nbd(ages + 20, 0.5, 6.0, 0.8, 2.5, seed=3)
    return pd.DataFrame({"frequency_cal": calib["frequency"], "recency_cal": calib["recency"], "T_cal": ages,
                         "frequency_holdout": np.maximum(future["frequency"] - calib["frequency"], 0),
                         "duration_holdout": 20.0})


@pytest.fixture(scope="session")
def simulated_holdout():
    """``simulated_holdout(n_customers)``: a calibration/holdout frame of simulated BG/NBD customers."""
    return _simulated_holdout
