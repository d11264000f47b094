"""The loyalty-profit matrix of Reinartz & Kumar (2002)."""
from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from crm_lib.exceptions import DataValidationError, ModelFitError, ParamsError
from crm_lib.loyalty.hypotheses import _fmt_p, _split_value, long_lived
from crm_lib.loyalty.lifetime import _check_columns

logger = logging.getLogger(__name__)


#: Reinartz & Kumar (2002, HBR), exhibit "Four types of loyalty": the cells of the
#: loyalty-profit matrix and the treatment recommended for each.
SEGMENTS = {
    ("short", "low"): (
        "strangers",
        "little fit between offer and needs: no relationship investment; make a profit on every transaction",
    ),
    ("short", "high"): (
        "butterflies",
        "good fit but short stay: aim for satisfaction on each transaction, not loyalty; stop investing once they go quiet",
    ),
    ("long", "high"): (
        "true friends",
        "good fit and long stay: communicate consistently but not too often; reward and retain",
    ),
    ("long", "low"): (
        "barnacles",
        "long stay but low profit: measure size and share of wallet; up-sell and cross-sell, or cut the cost to serve",
    ),
}
SEGMENT_ORDER = ["strangers", "butterflies", "true friends", "barnacles"]



@dataclass(frozen=True)
class LoyaltyMatrix:
    """Customers by lifetime (short/long) and profit (low/high), Reinartz & Kumar (2002).

    Attributes
    ----------
    table : DataFrame
        One row per cell (strangers, butterflies, true friends, barnacles): duration and
        profit class, customers, share of customers, revenue share, profit share, mean
        profit, treatment.
    segment : Series
        Each customer's cell.
    chi2, dof, p_value : float
        Pearson chi-square test of independence of the 2x2 table (no continuity
        correction).
    cramers_v : float
        sqrt(chi2 / n) for a 2x2 table (Cramer 1946): 0 = independent, 1 = one split
        determines the other.
    n : int
        Customers.
    duration_cut, profit_cut : float
        Split points (long = duration above it; high = profit above it).
    share_long_low_profit : float
        Share of long-lived customers in the low-profit half: barnacles / long-lived.
    share_long_unprofitable : float
        Share of long-lived customers with lifetime profit below zero.
    share_high_profit_short : float
        Share of high-profit customers who are short-lived: butterflies / high-profit.
    """

    table: pd.DataFrame
    segment: pd.Series
    chi2: float
    dof: int
    p_value: float
    cramers_v: float
    n: int
    duration_cut: float
    profit_cut: float
    share_long_low_profit: float
    share_long_unprofitable: float
    share_high_profit_short: float

    def summary(self) -> str:
        """The cells and the answers in words."""
        lines = [
            f"Loyalty-profit matrix of {self.n:,} customers (long: duration > {self.duration_cut:,.1f}; "
            f"high profit: profit > {self.profit_cut:,.2f})",
        ]
        for name, row in self.table.iterrows():
            lines.append(
                f"  {name:<13} {row['customers']:>7,} ({row['share_of_customers']:.0%} of customers, "
                f"{row['profit_share']:.0%} of profit)"
            )
        lines.append(
            f"  chi-square = {self.chi2:.1f} (df {self.dof}), p = {_fmt_p(self.p_value)}, Cramer's V = {self.cramers_v:.2f}"
        )
        lines.append(
            f"  {self.share_long_low_profit:.0%} of long-lived customers are in the low-profit group "
            f"({self.share_long_unprofitable:.0%} lose money); {self.share_high_profit_short:.0%} of high-profit "
            "customers are short-lived."
        )
        return "\n".join(lines)

    def to_frame(self) -> pd.DataFrame:
        """Customers, share and profit of each of the four segments."""
        return self.table.copy()


def loyalty_profit_matrix(
    customers: pd.DataFrame,
    *,
    duration_split: float | None = None,
    duration_quantile: float = 0.5,
    profit_split: float | None = None,
    profit_quantile: float = 0.5,
) -> LoyaltyMatrix:
    """Split customers into strangers, butterflies, true friends and barnacles.

    Reinartz & Kumar (2002): short/long lifetime crossed with low/high profit. Split
    points are the medians by default, or absolute values from the params. For each
    cell: customers, shares of customers, revenue and profit, mean profit and the
    recommended treatment; a chi-square test of independence with Cramer's V.

    Parameters
    ----------
    customers : DataFrame
        Output of :func:`lifetime_profit`.
    duration_split, duration_quantile
        Long = duration above ``duration_split`` or, when None, above the
        ``duration_quantile`` of durations.
    profit_split, profit_quantile
        High = profit above ``profit_split`` or above the ``profit_quantile`` of profits.

    Returns
    -------
    LoyaltyMatrix

    Raises
    ------
    DataValidationError
        When a split leaves a row or column of the 2x2 table empty.
    """
    _check_columns(customers, ("duration", "profit", "revenue"), "customers")
    duration_cut = _split_value(customers["duration"], duration_split, duration_quantile, "duration")
    profit_cut = _split_value(customers["profit"], profit_split, profit_quantile, "profit")
    long = customers["duration"] > duration_cut
    high = customers["profit"] > profit_cut
    n = len(customers)
    for name, mask, cut in (("duration", long, duration_cut), ("profit", high, profit_cut)):
        if mask.all() or not mask.any():
            raise DataValidationError(
                f"customers: the {name} split at {cut:,.2f} puts all {n:,} customers on one side; "
                f"set {name}_split in params to a value inside the range "
                f"({customers[name].min():,.2f} to {customers[name].max():,.2f})."
            )
    labels = pd.Series(
        [SEGMENTS[(d, p)][0] for d, p in zip(np.where(long, "long", "short"), np.where(high, "high", "low"))],
        index=customers.index,
        name="segment",
    )
    rows = []
    revenue_total = customers["revenue"].sum()
    profit_total = customers["profit"].sum()
    for (d, p), (name, treatment) in SEGMENTS.items():
        mask = labels == name
        rows.append(
            {
                "segment": name,
                "duration": d,
                "profit": p,
                "customers": int(mask.sum()),
                "share_of_customers": mask.mean(),
                "revenue_share": customers.loc[mask, "revenue"].sum() / revenue_total if revenue_total else np.nan,
                "profit_share": customers.loc[mask, "profit"].sum() / profit_total if profit_total else np.nan,
                "mean_profit": customers.loc[mask, "profit"].mean(),
                "treatment": treatment,
            }
        )
    table = pd.DataFrame(rows).set_index("segment").loc[SEGMENT_ORDER]
    counts = np.array([[np.sum(~long & ~high), np.sum(~long & high)], [np.sum(long & ~high), np.sum(long & high)]])
    chi2, p, dof, _ = stats.chi2_contingency(counts, correction=False)
    # Cramer's V (Cramer 1946): sqrt(chi2 / (n (min(rows, cols) - 1))).
    v = math.sqrt(chi2 / (n * (min(counts.shape) - 1)))
    return LoyaltyMatrix(
        table=table,
        segment=labels,
        chi2=float(chi2),
        dof=int(dof),
        p_value=float(p),
        cramers_v=v,
        n=n,
        duration_cut=duration_cut,
        profit_cut=profit_cut,
        share_long_low_profit=float((long & ~high).sum() / long.sum()),
        share_long_unprofitable=float((long & (customers["profit"] < 0)).sum() / long.sum()),
        share_high_profit_short=float((~long & high).sum() / high.sum()),
    )


# ---------------------------------------------------------------------------------------
# The whole analysis, and its robustness

def segment_examples(customers: pd.DataFrame) -> pd.Series:
    """One typical repeat customer per loyalty-profit cell, to illustrate the cells.

    In each cell, the customer with at least two orders (when the cell has one) whose
    duration and profit ranks are closest to the cell's median ranks.

    Parameters
    ----------
    customers : DataFrame
        ``LoyaltyAnalysis.customers`` (with ``segment``, ``duration``, ``profit``, ``orders``).

    Returns
    -------
    Series
        Customer id per segment, in the order strangers, butterflies, true friends, barnacles.
    """
    _check_columns(customers, ("segment", "duration", "profit", "orders"), "customers")
    ranks = customers[["duration", "profit"]].rank(pct=True)
    picks = {}
    for segment in SEGMENT_ORDER:
        cell = customers["segment"] == segment
        if not cell.any():
            continue
        pool = cell & (customers["orders"] >= 2) if (cell & (customers["orders"] >= 2)).any() else cell
        distance = (ranks[pool] - ranks[pool].median()).abs().sum(axis=1)
        picks[segment] = distance.sort_index().idxmin()
    return pd.Series(picks, name="customer_id")


def profit_by_tenure(
    panel: pd.DataFrame, customers: pd.DataFrame, *, duration_split: float | None = None, duration_quantile: float = 0.5
) -> pd.DataFrame:
    """Average profit per period by tenure, for long- and short-lived customers.

    Parameters
    ----------
    panel : DataFrame
        Output of :func:`tenure_panel`.
    customers : DataFrame
        Output of :func:`lifetime_profit`.
    duration_split, duration_quantile
        As in :func:`long_lived`.

    Returns
    -------
    DataFrame
        One row per group (``long-lived``, ``short-lived``) and ``tenure_period``:
        ``mean_profit``, ``sem`` (standard error of the mean) and ``customers`` (alive in
        that period).
    """
    long = long_lived(customers, duration_split=duration_split, duration_quantile=duration_quantile)
    group = np.where(long.reindex(panel["customer_id"]).to_numpy(), "long-lived", "short-lived")
    out = (
        panel.assign(group=group)
        .groupby(["group", "tenure_period"])["profit"]
        .agg(mean_profit="mean", sem="sem", customers="size")
        .reset_index()
    )
    return out
