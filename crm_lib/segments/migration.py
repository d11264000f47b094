"""Migration between RFM segments from the calibration end to the observation end."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

from crm_lib import format as fmt
from crm_lib.exceptions import DataValidationError, ParamsError
from crm_lib.segments.rfm import RFMSegmentation, SegmentRule, load_segment_rules, rfm_segmentation

__all__ = ["SegmentMigration", "segment_migration"]


@dataclass(frozen=True)
class SegmentMigration:
    """Moves between RFM segments from the calibration end to the observation end.

    Attributes
    ----------
    counts : DataFrame
        Customers by segment at ``calibration_end`` (rows) and at ``observation_end``
        (columns), both in rule order (best first); customers first seen after the
        calibration end are not in it.
    shares : DataFrame
        ``counts`` divided by its row totals (each row sums to 1; empty rows are NaN).
    moved_up, stayed, moved_down : float
        Shares of the customers who went to a better segment (listed earlier in the
        rules), stayed, or went to a worse one.
    calibration_end, observation_end : Timestamp
    """

    counts: pd.DataFrame
    shares: pd.DataFrame
    moved_up: float
    stayed: float
    moved_down: float
    calibration_end: pd.Timestamp
    observation_end: pd.Timestamp

    def to_frame(self) -> pd.DataFrame:
        """The transition shares (rows: segment at calibration end)."""
        return self.shares.copy()

    def movement(self) -> pd.DataFrame:
        """Customers and shares that moved up, stayed, moved down."""
        n = int(self.counts.to_numpy().sum())
        shares = [self.moved_up, self.stayed, self.moved_down]
        return pd.DataFrame(
            {"customers": [round(s * n) for s in shares], "share": shares},
            index=pd.Index(["moved up", "stayed", "moved down"], name="movement"),
        )

    def summary(self) -> str:
        """One line for people."""
        return (
            f"Segment migration {self.calibration_end:%Y-%m-%d} -> {self.observation_end:%Y-%m-%d} "
            f"({fmt.count(int(self.counts.to_numpy().sum()), 'customer')}): {fmt.percent(self.moved_up)} moved up, "
            f"{fmt.percent(self.stayed)} stayed, {fmt.percent(self.moved_down)} moved down"
        )


def segment_migration(
    transactions: pd.DataFrame,
    rules: Iterable[Mapping[str, Any] | SegmentRule] | None = None,
    *,
    calibration_end: str | pd.Timestamp | None = None,
    observation_end: str | pd.Timestamp | None = None,
    n_bins: int = 5,
    monetary: str = "revenue",
    at_end: RFMSegmentation | None = None,
) -> SegmentMigration:
    """Transition matrix between RFM segments from the calibration end to the end.

    Each date is segmented on its own (scores are quantiles of the customers known at
    that date, as the team would have seen them then); the matrix follows the customers
    known at the calibration end.

    Parameters
    ----------
    transactions : DataFrame
    rules : list of dict, optional
        The rule table, best segment first.
    calibration_end : str or Timestamp, optional
        Date of the first segmentation (inclusive); defaults to the day halfway between
        the first purchase and the observation end.
    observation_end : str or Timestamp, optional
        Date of the second; defaults to the last purchase day.
    n_bins, monetary
        As in :func:`rfm_segmentation`.
    at_end : RFMSegmentation, optional
        The segmentation of ``transactions`` at ``observation_end`` with these rules,
        ``n_bins`` and ``monetary``, when the caller already has it (the segmentation
        report does): it is used instead of segmenting the end a second time.

    Returns
    -------
    SegmentMigration

    Raises
    ------
    DataValidationError
        ``calibration_end`` not before ``observation_end``, or no purchase by then.
    ParamsError
        ``at_end`` made with other rules, bins, monetary basis or observation end.
    """
    # Only the segments are kept of each segmentation (millions of rows each at scale).
    if at_end is None:
        after = rfm_segmentation(transactions, rules, n_bins=n_bins, monetary=monetary, observation_end=observation_end)
    else:
        after = _check_end_segmentation(at_end, transactions, rules, n_bins, monetary, observation_end)
    after_end, after_customers = after.observation_end, after.customers[["first_purchase", "segment"]]
    after = None
    if calibration_end is None:
        first = pd.to_datetime(transactions["date"]).min().normalize()
        calibration_end = first + (after_end - first) / 2
    before = rfm_segmentation(transactions, rules, n_bins=n_bins, monetary=monetary, observation_end=calibration_end)
    before_end, order, start = before.observation_end, before.segment_order, before.customers["segment"]
    del before
    if before_end >= after_end:
        raise DataValidationError(
            f"calibration_end ({before_end:%Y-%m-%d}) must be before observation_end "
            f"({after_end:%Y-%m-%d}); move calibration_end earlier in params."
        )
    # Both tables are sorted by customer and the customers known at the calibration end are those
    # who bought by then: matched by position instead of looking up millions of ids.
    known = (after_customers["first_purchase"] <= before_end).to_numpy()
    if int(known.sum()) == len(start):
        end = pd.Series(after_customers["segment"].array[known], index=start.index, name="segment")
    else:  # pragma: no cover - only for a table not built by rfm_segmentation
        end = after_customers["segment"].reindex(start.index)
    # Segment codes in rule order (0 = best): the crosstab is one bincount of code pairs and the
    # moves are comparisons of codes, with no lookup of millions of segment names.
    k = len(order)
    start_rank = pd.Categorical(start, categories=order).codes.astype(np.int64)
    end_rank = pd.Categorical(end, categories=order).codes.astype(np.int64)
    counts = pd.DataFrame(np.bincount(start_rank * k + end_rank, minlength=k * k).reshape(k, k).astype(int),
                          index=pd.Index(order, name=f"segment at {before_end:%Y-%m-%d}"),
                          columns=pd.Index(order, name=f"segment at {after_end:%Y-%m-%d}"))
    row_totals = counts.sum(axis=1)
    shares = counts.div(row_totals.where(row_totals > 0), axis=0)
    n = len(start)
    return SegmentMigration(
        counts=counts,
        shares=shares,
        moved_up=float((end_rank < start_rank).sum() / n),
        stayed=float((end_rank == start_rank).sum() / n),
        moved_down=float((end_rank > start_rank).sum() / n),
        calibration_end=before_end,
        observation_end=after_end,
    )


def _check_end_segmentation(at_end: RFMSegmentation, transactions: pd.DataFrame, rules: Any, n_bins: int,
                            monetary: str, observation_end: Any) -> RFMSegmentation:
    """``at_end`` if it is the segmentation :func:`segment_migration` would compute at the end."""
    end = (pd.to_datetime(transactions["date"]).max() if observation_end is None
           else pd.Timestamp(observation_end)).normalize()
    differences = [name for name, same in (
        ("rules", tuple(at_end.rules) == load_segment_rules(rules, n_bins)), ("n_bins", at_end.n_bins == n_bins),
        ("monetary", at_end.monetary == monetary), ("observation_end", at_end.observation_end == end)) if not same]
    if differences:
        raise ParamsError(
            f"segment_migration: at_end differs from the migration's own settings in {', '.join(differences)} "
            f"(at_end ends {at_end.observation_end:%Y-%m-%d}, the migration {end:%Y-%m-%d}); pass the segmentation "
            "made with the same rfm_segment_rules, rfm_bins, rfm_monetary and observation_end, or none."
        )
    return at_end
