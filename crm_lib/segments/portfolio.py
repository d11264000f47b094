"""The segment profile and the customer portfolio: value x loyalty cells with their action,
active versus passive loyalty among long-lived customers, and the per-customer action
table. Definitions are in :mod:`crm_lib.segments`."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from crm_lib.exceptions import DataValidationError, ParamsError
from crm_lib.format import table_for_people
from crm_lib.privacy import pseudonymize
from crm_lib.segments.rfm import RFMSegmentation

__all__ = [
    "LOYALTY_STATUSES",
    "MONEY_COLUMNS",
    "PORTFOLIO_CELLS",
    "LoyaltyStatus",
    "ValueLoyaltyPortfolio",
    "active_passive_loyalty",
    "customer_actions",
    "format_for_report",
    "recency_ratio",
    "segment_profile",
    "value_loyalty_portfolio",
]

#: Portfolio cells (value, loyalty) -> (cell name, action). Business potential
#: against degree of loyalty; the four simultaneous actions of portfolio management.
PORTFOLIO_CELLS: dict[tuple[bool, bool], tuple[str, str]] = {
    (True, True): ("high value, high loyalty", "retain"),
    (True, False): ("high value, low loyalty", "develop"),
    (False, True): ("low value, high loyalty", "maintain at lower cost to serve"),
    (False, False): ("low value, low loyalty", "let go / win back"),
}

LOYALTY_STATUSES = ("active", "passive", "short relationship")


# ----------------------------------------------------------------------------- profile


def _aligned_predictions(customers: pd.DataFrame, predictions: pd.DataFrame | None, columns: Sequence[str]) -> pd.DataFrame:
    """The prediction columns that exist, aligned on the customers; every customer needs a row."""
    if predictions is None:
        return pd.DataFrame(index=customers.index)
    present = [c for c in columns if c in predictions.columns]
    if not present:
        raise DataValidationError(
            f"predictions: none of the columns {list(columns)} found (columns are {list(predictions.columns)}); "
            "pass the per-customer frame from crm_lib.clv with clv and/or p_alive, or None for historical value."
        )
    index = predictions.index.astype(str)
    if index.equals(customers.index):  # the same customers in the same order: no hashing of millions of ids
        aligned = pd.DataFrame({c: predictions[c].to_numpy() for c in present}, index=customers.index)
    else:
        aligned = predictions[present].set_axis(index).reindex(customers.index)
    missing = aligned.isna().any(axis=1)
    if missing.any():
        raise DataValidationError(
            f"predictions: {int(missing.sum()):,} of {len(customers):,} customers have no {'/'.join(present)} "
            f"(e.g. customer {customers.index[missing.to_numpy()][0]!r}); predict for the same customers and "
            "observation end as the segmentation (index = customer_id)."
        )
    return aligned.astype(float)


def _clv_basis(predictions: pd.DataFrame | None) -> str:
    """How to name predicted CLV: with its horizon when the frame records it (crm_lib.clv attrs)."""
    months = predictions.attrs.get("horizon_months") if predictions is not None else None
    return f"predicted {months:g}-month CLV" if months else "predicted CLV"


def segment_profile(
    segmentation: RFMSegmentation,
    predictions: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Size, share of customers and of revenue, recency, frequency and spend per segment.

    Parameters
    ----------
    segmentation : RFMSegmentation
    predictions : DataFrame, optional
        Indexed by customer id with ``clv`` and/or ``p_alive`` (from
        :mod:`crm_lib.clv`); adds mean and total predicted CLV and mean P(alive).

    Returns
    -------
    DataFrame
        One row per segment, best first (empty segments kept, with 0 customers):
        ``customers``, ``share_of_customers``, ``revenue``, ``share_of_revenue``,
        ``mean_days_since_last_purchase``, ``mean_purchase_days``,
        ``average_order_value`` (segment revenue / segment transactions),
        [``mean_clv``, ``total_clv``, ``share_of_clv``] [``mean_p_alive``], ``action``.

    Raises
    ------
    DataValidationError
        Predictions that miss some customers.
    """
    table = segmentation.customers
    extra = _aligned_predictions(table, predictions, ("clv", "p_alive"))
    data = table[["segment", "revenue", "transactions", "days_since_last_purchase", "purchase_days"]].copy()
    for column in extra.columns:  # extra is aligned on table's index: set by position
        data[column] = extra[column].to_numpy()
    grouped = data.groupby("segment", sort=False)
    profile = pd.DataFrame(
        {
            "customers": grouped.size(),
            "revenue": grouped["revenue"].sum(),
            "transactions": grouped["transactions"].sum(),
            "mean_days_since_last_purchase": grouped["days_since_last_purchase"].mean(),
            "mean_purchase_days": grouped["purchase_days"].mean(),
        }
    )
    if "clv" in extra:
        profile["mean_clv"] = grouped["clv"].mean()
        profile["total_clv"] = grouped["clv"].sum()
    if "p_alive" in extra:
        profile["mean_p_alive"] = grouped["p_alive"].mean()
    profile = profile.reindex(segmentation.segment_order)
    profile.index.name = "segment"
    profile[["customers", "revenue", "transactions"]] = profile[["customers", "revenue", "transactions"]].fillna(0)
    profile["customers"] = profile["customers"].astype(int)
    profile.insert(1, "share_of_customers", profile["customers"] / len(table))
    total_revenue = table["revenue"].sum()
    profile.insert(3, "share_of_revenue", profile["revenue"] / total_revenue if total_revenue else np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        profile.insert(
            6, "average_order_value", (profile["revenue"] / profile["transactions"]).where(profile["transactions"] > 0)
        )
    profile = profile.drop(columns="transactions")
    if "total_clv" in profile:
        total_clv = profile["total_clv"].sum()
        profile.insert(profile.columns.get_loc("total_clv") + 1, "share_of_clv", profile["total_clv"] / total_clv if total_clv else np.nan)
    profile["action"] = [rule.action for rule in segmentation.rules]
    return profile


# --------------------------------------------------------------------------- portfolio


@dataclass(frozen=True)
class ValueLoyaltyPortfolio:
    """Customers split on business potential and loyalty into four cells with an action.

    Attributes
    ----------
    customers : DataFrame
        Indexed by customer id: ``value``, ``loyalty``, ``high_value``, ``high_loyalty``,
        ``portfolio_cell``, ``portfolio_action``.
    cells : DataFrame
        One row per cell: ``action``, ``customers``, ``share_of_customers``, ``value``,
        ``share_of_value``, ``value_at_stake`` (sum of value x (1 - loyalty): the part of
        the cell's value exposed to defection), ``share_of_value_at_stake``.
    value_threshold : float
        Customers with value above it are high value.
    loyalty_split : float
        Customers with loyalty at or above it are highly loyal.
    value_basis, loyalty_basis : str
        What value and loyalty are ("predicted CLV", "predicted 12-month CLV" when the
        predictions record ``attrs["horizon_months"]``, or "historical revenue";
        "P(alive)" / "recency ratio t_x/T").
    """

    customers: pd.DataFrame
    cells: pd.DataFrame
    value_threshold: float
    loyalty_split: float
    value_basis: str
    loyalty_basis: str

    def to_frame(self) -> pd.DataFrame:
        """The cell table."""
        return self.cells.copy()

    def summary(self) -> str:
        """A few lines for people: the splits and each cell's size and value share."""
        lines = [
            f"Value x loyalty portfolio: value = {self.value_basis} (high above {self.value_threshold:,.2f}), "
            f"loyalty = {self.loyalty_basis} (high at or above {self.loyalty_split:g})"
        ]
        for name, row in self.cells.iterrows():
            lines.append(
                f"  {name:<26} {row['action']:<32} {int(row['customers']):>8,} customers "
                f"{row['share_of_customers']:6.1%}  value {row['share_of_value']:6.1%}"
            )
        return "\n".join(lines)


def recency_ratio(customers: pd.DataFrame) -> pd.Series:
    """Model-free loyalty: (last - first purchase day) / (observation end - first purchase day).

    The share of the relationship's age at which the customer last bought, ``t_x / T``
    in the notation of Fader, Hardie & Lee (2005); 1 for a customer who bought on the
    last day (also when the first purchase is on the last day), 0 for one who never came
    back. A ranking heuristic for when no P(alive) model is fitted, not a probability.
    """
    span = (customers["relationship_days"] - customers["days_since_last_purchase"]).astype(float)
    relationship = customers["relationship_days"].astype(float)
    return (span / relationship).where(relationship > 0, 1.0).rename("loyalty")


def _labels(names: Sequence[str], codes: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """``names[codes]`` as a str array, built by Arrow from the codes (no Python string per customer)."""
    import pyarrow as pa

    return pd.array(pa.array(list(names), type=pa.string()).take(pa.array(codes)), dtype="str")


def _portfolio_cells(table: pd.DataFrame) -> pd.DataFrame:
    """Customers, value and value at stake per portfolio cell, in the fixed cell order."""
    # Value exposed to defection: each customer's value weighted by the chance (or, for
    # the ratio, the heuristic score) that they are no longer a customer.
    at_stake = table["value"] * (1.0 - table["loyalty"].clip(0, 1))
    grouped = table.assign(at_stake=at_stake).groupby("portfolio_cell")
    keys = ((True, True), (True, False), (False, True), (False, False))
    order = [PORTFOLIO_CELLS[k][0] for k in keys]
    cells = pd.DataFrame(
        {
            "action": [PORTFOLIO_CELLS[k][1] for k in keys],
            "customers": grouped.size().reindex(order, fill_value=0).astype(int).to_numpy(),
            "value": grouped["value"].sum().reindex(order, fill_value=0.0).to_numpy(),
            "value_at_stake": grouped["at_stake"].sum().reindex(order, fill_value=0.0).to_numpy(),
        },
        index=pd.Index(order, name="portfolio_cell"),
    )
    n = len(table)
    total_value = table["value"].sum()
    total_stake = at_stake.sum()
    cells.insert(2, "share_of_customers", cells["customers"] / n)
    cells.insert(4, "share_of_value", cells["value"] / total_value if total_value else np.nan)
    cells["share_of_value_at_stake"] = cells["value_at_stake"] / total_stake if total_stake else np.nan
    return cells


def value_loyalty_portfolio(
    customers: pd.DataFrame,
    predictions: pd.DataFrame | None = None,
    *,
    value_split_quantile: float = 0.8,
    value_split: float | None = None,
    loyalty_split: float = 0.5,
) -> ValueLoyaltyPortfolio:
    """Split customers on business potential and loyalty; name the cells and their action.

    Parameters
    ----------
    customers : DataFrame
        From :func:`customer_value_table` (or ``RFMSegmentation.customers``).
    predictions : DataFrame, optional
        Indexed by customer id with ``clv`` (business potential) and/or ``p_alive``
        (loyalty) from :mod:`crm_lib.clv`. Without them value is historical revenue and
        loyalty the recency ratio (:func:`recency_ratio`).
    value_split_quantile : float
        High value means value above this quantile of all customers' values (0.8: the
        top fifth, where most of the value usually is). Ignored if ``value_split`` is set.
    value_split : float, optional
        An absolute value threshold (currency) instead of the quantile.
    loyalty_split : float
        High loyalty means loyalty at or above this (P(alive) or ratio, both in 0..1).

    Returns
    -------
    ValueLoyaltyPortfolio

    Raises
    ------
    ParamsError
        A split outside its range.
    DataValidationError
        Predictions that miss some customers.
    """
    if not 0 < value_split_quantile < 1:
        raise ParamsError(f"portfolio_value_split_quantile={value_split_quantile!r} must be between 0 and 1 (e.g. 0.8).")
    if not 0 < loyalty_split < 1:
        raise ParamsError(f"portfolio_loyalty_split={loyalty_split!r} must be between 0 and 1 (e.g. 0.5).")
    extra = _aligned_predictions(customers, predictions, ("clv", "p_alive"))
    if "clv" in extra:
        value, value_basis = extra["clv"], _clv_basis(predictions)
    else:
        value, value_basis = customers["revenue"].astype(float), "historical revenue"
    if "p_alive" in extra:
        loyalty, loyalty_basis = extra["p_alive"], "P(alive)"
    else:
        loyalty, loyalty_basis = recency_ratio(customers), "recency ratio t_x/T"
    threshold = float(value.quantile(value_split_quantile)) if value_split is None else float(value_split)
    high_value = value > threshold
    high_loyalty = loyalty >= loyalty_split
    table = pd.DataFrame(
        {"value": value.to_numpy(), "loyalty": loyalty.to_numpy(),
         "high_value": high_value.to_numpy(), "high_loyalty": high_loyalty.to_numpy()},
        index=customers.index,
    )
    # Cell k of the four (high value, high loyalty) combinations in PORTFOLIO_CELLS order, then its texts.
    keys = list(PORTFOLIO_CELLS)
    code = np.select([high_value.to_numpy() & high_loyalty.to_numpy(), high_value.to_numpy(), high_loyalty.to_numpy()],
                     [keys.index((True, True)), keys.index((True, False)), keys.index((False, True))],
                     keys.index((False, False)))
    table["portfolio_cell"] = _labels([PORTFOLIO_CELLS[k][0] for k in keys], code)
    table["portfolio_action"] = _labels([PORTFOLIO_CELLS[k][1] for k in keys], code)
    cells = _portfolio_cells(table)
    return ValueLoyaltyPortfolio(
        customers=table, cells=cells, value_threshold=threshold, loyalty_split=float(loyalty_split),
        value_basis=value_basis, loyalty_basis=loyalty_basis,
    )


# ------------------------------------------------------------ active / passive loyalty


@dataclass(frozen=True)
class LoyaltyStatus:
    """Active versus passive loyalty among customers with a long relationship.

    Attributes
    ----------
    customers : DataFrame
        Indexed by customer id: ``loyalty_status`` (active / passive / short
        relationship), ``silence_ratio`` (days since last purchase / mean
        inter-purchase days), ``value`` and the columns it was computed from.
    counts : DataFrame
        One row per status: ``customers``, ``share_of_customers``,
        ``share_of_long_lived`` (NaN for short relationships), ``value``, ``share_of_value``.
    min_relationship_days, min_orders : int
    silence_ratio : float
        Threshold: passive when the silence exceeds this many usual inter-purchase times
    min_silence_days : int
        ...and lasts at least this many days.
    value_basis : str
    """

    customers: pd.DataFrame
    counts: pd.DataFrame
    min_relationship_days: int
    min_orders: int
    silence_ratio: float
    min_silence_days: int
    value_basis: str

    def to_frame(self) -> pd.DataFrame:
        """The count table."""
        return self.counts.copy()

    def winback_list(self, salt: str | None = None, n: int = 10) -> pd.DataFrame:
        """The ``n`` most valuable passive customers, under pseudonymous ids only.

        Parameters
        ----------
        salt : str, optional
            Ignored (the secret pseudonym key of :mod:`crm_lib.keys` replaces the salt).
        n : int
            How many to list.

        Returns
        -------
        DataFrame
            Indexed by ``pseudonymous_id`` (no real id anywhere): ``value``,
            ``purchase_days``, ``revenue``, ``mean_interpurchase_days``,
            ``days_since_last_purchase``, ``silence_ratio``; highest value first.
        """
        passive = self.customers[(self.customers["loyalty_status"] == "passive").to_numpy()]  # NumPy mask: no id cache
        top = passive.sort_values(["value", "silence_ratio"], ascending=[False, False], kind="stable").head(n)
        columns = ["value", "purchase_days", "revenue", "mean_interpurchase_days", "days_since_last_purchase", "silence_ratio"]
        listed = top[columns].copy()
        listed.index = pd.Index(pseudonymize(top.index, salt).to_numpy(), name="pseudonymous_id")
        return listed

    def summary(self) -> str:
        """A few lines for people: the definition and the counts."""
        lines = [
            f"Active vs passive loyalty: long relationship = first purchase >= {self.min_relationship_days} days "
            f"before the end and >= {self.min_orders} purchase days; passive = silence > {self.silence_ratio:g} x "
            f"own mean inter-purchase time and >= {self.min_silence_days} days"
        ]
        for name, row in self.counts.iterrows():
            lines.append(
                f"  {name:<20} {int(row['customers']):>8,}  {row['share_of_customers']:6.1%}  value {row['share_of_value']:6.1%}"
            )
        return "\n".join(lines)


def active_passive_loyalty(
    customers: pd.DataFrame,
    predictions: pd.DataFrame | None = None,
    *,
    min_relationship_days: int = 365,
    min_orders: int = 3,
    silence_ratio: float = 2.0,
    min_silence_days: int = 90,
) -> LoyaltyStatus:
    """Separate long-lived customers still buying at their rhythm from silent ones.

    Parameters
    ----------
    customers : DataFrame
        From :func:`customer_value_table`.
    predictions : DataFrame, optional
        With a ``clv`` column: the value used to rank win-back candidates; historical
        revenue otherwise.
    min_relationship_days : int
        A long relationship started at least this many days before the end.
    min_orders : int
        ...and has at least this many purchase days (2 or more, so that an own
        inter-purchase time exists; 3 means it is a mean of at least two gaps).
    silence_ratio : float
        Passive when days since the last purchase exceed this multiple of the
        customer's mean inter-purchase time...
    min_silence_days : int
        ...and at least this many days (a heavy buyer silent for two weeks is not yet
        lapsed, whatever their usual gap).

    Returns
    -------
    LoyaltyStatus

    Raises
    ------
    ParamsError
        ``min_orders`` below 2 or a non-positive ``silence_ratio``.
    """
    if min_orders < 2:
        raise ParamsError(f"loyalty_min_orders={min_orders!r} must be at least 2: an inter-purchase time needs two purchase days.")
    if min_silence_days < 0:
        raise ParamsError(f"loyalty_min_silence_days={min_silence_days!r} must be zero or more days.")
    if not silence_ratio > 0:
        raise ParamsError(f"loyalty_silence_ratio={silence_ratio!r} must be positive (e.g. 2: twice the usual gap).")
    extra = _aligned_predictions(customers, predictions, ("clv",))
    value = extra["clv"] if "clv" in extra else customers["revenue"].astype(float)
    long_lived = (customers["relationship_days"] >= min_relationship_days) & (customers["purchase_days"] >= min_orders)
    # Same-day repeat purchases merge, so a long-lived customer has a positive gap.
    ratio = customers["days_since_last_purchase"] / customers["mean_interpurchase_days"]
    silent = (ratio > silence_ratio) & (customers["days_since_last_purchase"] >= min_silence_days)
    status = _labels(["short relationship", "passive", "active"],
                     np.where(~long_lived.to_numpy(), 0, np.where(silent.to_numpy(), 1, 2)))
    table = customers[["purchase_days", "revenue", "mean_interpurchase_days", "days_since_last_purchase", "relationship_days"]].copy()
    table["silence_ratio"] = ratio.where(long_lived)
    table["value"] = value.to_numpy()
    table["loyalty_status"] = status
    grouped = table.groupby("loyalty_status")
    counts = pd.DataFrame(
        {
            "customers": grouped.size().reindex(LOYALTY_STATUSES, fill_value=0).astype(int),
            "value": grouped["value"].sum().reindex(LOYALTY_STATUSES, fill_value=0.0),
        }
    )
    counts.index.name = "loyalty_status"
    n_long = int(long_lived.sum())
    counts.insert(1, "share_of_customers", counts["customers"] / len(table))
    counts.insert(2, "share_of_long_lived", (counts["customers"] / n_long if n_long else np.nan))
    counts.loc["short relationship", "share_of_long_lived"] = np.nan
    total = table["value"].sum()
    counts["share_of_value"] = counts["value"] / total if total else np.nan
    return LoyaltyStatus(
        customers=table, counts=counts, min_relationship_days=int(min_relationship_days), min_orders=int(min_orders),
        silence_ratio=float(silence_ratio), min_silence_days=int(min_silence_days), value_basis=_clv_basis(predictions) if "clv" in extra else "historical revenue",
    )


# ---------------------------------------------------------------------- customer actions


def customer_actions(
    segmentation: RFMSegmentation,
    portfolio: ValueLoyaltyPortfolio,
    loyalty: LoyaltyStatus,
    salt: str | None = None,
) -> pd.DataFrame:
    """One row per customer with segment, portfolio cell and the recommended action.

    ``recommended_action`` is the portfolio action, except for passive long-lived
    customers of high value, whose action is ``"win back"``.

    Parameters
    ----------
    segmentation, portfolio, loyalty
        Results for the same customers.
    salt : str, optional
        Ignored (the secret key of :mod:`crm_lib.keys` replaces it): the export carries the pseudonymous id next to the real one
        so that a row of the report can be found in the file.

    Returns
    -------
    DataFrame
        Indexed by the real ``customer_id``: ``pseudonymous_id``, ``segment``,
        ``segment_action``, ``r_score``, ``f_score``, ``m_score``, ``portfolio_cell``,
        ``portfolio_action``, ``loyalty_status``, ``recommended_action``, ``value``,
        ``loyalty``, ``revenue``, ``purchase_days``, ``days_since_last_purchase``.

    Raises
    ------
    DataValidationError
        Results for different customers.
    """
    seg = segmentation.customers
    for name, other in (("portfolio", portfolio.customers), ("loyalty", loyalty.customers)):
        if not other.index.equals(seg.index):
            raise DataValidationError(
                f"customer_actions: the {name} result has {len(other):,} customers, the segmentation {len(seg):,}; "
                "compute all three on the same transactions and observation end."
            )
    table = pd.DataFrame(index=seg.index)
    table["pseudonymous_id"] = pseudonymize(seg.index, salt).array  # same order as seg.index
    table[["segment", "segment_action", "r_score", "f_score", "m_score"]] = seg[
        ["segment", "segment_action", "r_score", "f_score", "m_score"]
    ]
    table[["portfolio_cell", "portfolio_action", "value", "loyalty"]] = portfolio.customers[
        ["portfolio_cell", "portfolio_action", "value", "loyalty"]
    ]
    table["loyalty_status"] = loyalty.customers["loyalty_status"]
    win_back = (table["loyalty_status"] == "passive") & portfolio.customers["high_value"]
    table["recommended_action"] = table["portfolio_action"].where(~win_back, "win back")
    table[["revenue", "purchase_days", "days_since_last_purchase"]] = seg[
        ["revenue", "purchase_days", "days_since_last_purchase"]
    ]
    # One text dtype for every label column, so the table survives a CSV or Parquet round trip.
    text = ["pseudonymous_id", "segment", "segment_action", "portfolio_cell", "portfolio_action",
            "loyalty_status", "recommended_action"]
    text_dtype = pd.api.types.pandas_dtype("str")
    for column in text:  # (a copy only of the columns not yet of that dtype: millions of rows)
        if table[column].dtype != text_dtype:
            table[column] = table[column].astype(str)
    if table.index.dtype != text_dtype:
        table.index = table.index.astype(str)
    return table


# ------------------------------------------------------------------------ for people

#: Columns holding amounts of money; formatted with the currency in their name.
MONEY_COLUMNS = ("revenue", "value", "value_at_stake", "average_order_value", "mean_clv", "total_clv")


def format_for_report(table: pd.DataFrame, currency: str = "USD") -> pd.DataFrame:
    """A results table with readable column names, thousands separators and percentages.

    ``share_*`` columns become percentages, money columns get the currency in their
    name and two decimals, counts thousands separators, other numbers two decimals;
    missing values (an empty segment) show as empty cells.

    Parameters
    ----------
    table : DataFrame
        A table of this module (segment profile, portfolio cells, loyalty counts, ...).
    currency : str
        Currency of the amounts.

    Returns
    -------
    DataFrame of str
    """
    return table_for_people(table, currency, MONEY_COLUMNS)
