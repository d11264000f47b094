"""segment_migration given the end-of-window segmentation (as 02_segmentation passes it)
gives the very result of segmenting the end itself, and refuses one made otherwise."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crm_lib.exceptions import ParamsError
from crm_lib.segments import rfm_segmentation, segment_migration


def _same(a, b) -> None:
    pd.testing.assert_frame_equal(a.counts, b.counts)
    pd.testing.assert_frame_equal(a.shares, b.shares)
    assert (a.moved_up, a.stayed, a.moved_down) == (b.moved_up, b.stayed, b.moved_down)
    assert (a.calibration_end, a.observation_end) == (b.calibration_end, b.observation_end)


def test_reused_end_segmentation_gives_the_same_migration_on_cdnow(cdnow_log):
    tx, end = cdnow_log.transactions, cdnow_log.observation_end
    at_end = rfm_segmentation(tx, None, observation_end=end)
    _same(segment_migration(tx, None, observation_end=end, at_end=at_end), segment_migration(tx, None, observation_end=end))


def test_reused_end_segmentation_on_a_random_log():
    rng = np.random.default_rng(3)
    n = 5_000
    tx = pd.DataFrame({"customer_id": [f"é{i}" for i in rng.integers(0, 900, n)],
                       "date": pd.Timestamp("2021-01-01") + pd.to_timedelta(rng.integers(0, 700, n), unit="D"),
                       "amount": np.where(rng.random(n) < 0.05, 0.0, rng.gamma(2, 20, n))})
    at_end = rfm_segmentation(tx, None, monetary="average_order_value")
    for calibration_end in (None, "2021-09-30"):
        ours = segment_migration(tx, None, calibration_end=calibration_end, monetary="average_order_value",
                                 at_end=at_end)
        _same(ours, segment_migration(tx, None, calibration_end=calibration_end, monetary="average_order_value"))


def test_end_segmentation_made_otherwise_is_refused(cdnow_log):
    tx, end = cdnow_log.transactions, cdnow_log.observation_end
    at_end = rfm_segmentation(tx, None, observation_end=end)
    with pytest.raises(ParamsError, match="in monetary "):
        segment_migration(tx, None, observation_end=end, monetary="average_order_value", at_end=at_end)
    with pytest.raises(ParamsError, match="in rules, n_bins "):
        segment_migration(tx, [{"name": "all", "action": "any"}], observation_end=end, n_bins=3, at_end=at_end)
    with pytest.raises(ParamsError, match="observation_end"):
        segment_migration(tx, None, observation_end=end - pd.Timedelta(days=30), at_end=at_end)


def _by_pandas(tx, calibration_end, end):
    """The migration computed the plain way: both segmentations, ids aligned, pd.crosstab, rank maps."""
    before = rfm_segmentation(tx, None, observation_end=calibration_end)
    after = rfm_segmentation(tx, None, observation_end=end)
    order = before.segment_order
    start = before.customers["segment"]
    stop = after.customers["segment"].reindex(start.index)
    counts = pd.crosstab(pd.Categorical(start, categories=order), pd.Categorical(stop, categories=order),
                         dropna=False).astype(int)
    rank = {name: i for i, name in enumerate(order)}
    a, b = start.map(rank).to_numpy(), stop.map(rank).to_numpy()
    return counts.to_numpy(), ((b < a).mean(), (b == a).mean(), (b > a).mean())


def test_codes_and_bincount_equal_crosstab_of_names(cdnow_log):
    tx, end = cdnow_log.transactions, cdnow_log.observation_end
    for calibration_end in ("1997-09-30", "1998-01-15"):
        ours = segment_migration(tx, None, calibration_end=calibration_end, observation_end=end)
        counts, moves = _by_pandas(tx, calibration_end, end)
        assert (ours.counts.to_numpy() == counts).all()
        assert (ours.moved_up, ours.stayed, ours.moved_down) == pytest.approx(moves, abs=1e-15)
