"""The runner gives the checked log's memory back before the notebooks run (issue 17: at 10 M
transactions it held 2 GB, counted in every notebook's peak)."""
from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import psutil
import pytest

from crm_lib.report.runner import release_memory


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="malloc_trim and RSS as measured here are Linux's")
def test_release_memory_returns_a_freed_log_to_the_system():
    process = psutil.Process()
    before = process.memory_info().rss
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"customer_id": pd.array([f"customer-{i}" for i in rng.integers(0, 10**9, 1_500_000)],
                                                  dtype="string[pyarrow]"),
                          "amount": rng.random(1_500_000)})
    frame["key"] = frame["customer_id"].str.slice(0, 12)  # Arrow and pandas buffers, as a loaded log has
    grown = process.memory_info().rss - before
    assert grown > 50e6
    del frame
    release_memory()
    kept = process.memory_info().rss - before
    assert kept < 0.5 * grown, f"{kept / 1e6:.0f} MB of {grown / 1e6:.0f} MB still held"
