"""Counts, rates and cohort tables: the KPIs a CRM team reads first.

Definitions (stated in the report too):

- a customer is *active* in a period when they buy at least once in it;
- the *repeat-purchase rate* is the share of customers who bought on more than one day;
- the *average order value* is revenue divided by transactions (rows of the log);
- the *retention rate* of period p is the share of the customers active in p-1 who are
  active again in p; the *attrition rate* is one minus it;
- a customer's *acquisition cohort* is the period of their first purchase; the cohort
  retention table gives, for each cohort, the share of its customers active k periods
  after the acquisition period (k = 0 is the acquisition period, always 100%).

Every function takes a :class:`~crm_lib.data.TransactionLog`; its window (last day
included) bounds the periods. A bare frame is accepted where the end cannot change the
result (headline KPIs, cohort sizes, activity up to the last purchase); the cohort
retention table needs the end and refuses a bare frame without ``observation_end``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from crm_lib.data import TransactionLog, resolve_window


def _frame(data: TransactionLog | pd.DataFrame) -> pd.DataFrame:
    return data.transactions if isinstance(data, TransactionLog) else data

PERIODS = {"W": "week", "M": "month", "Q": "quarter", "Y": "year"}


def _check_period(period: str) -> str:
    if period not in PERIODS:
        raise ValueError(f"period={period!r} is not supported; use one of {', '.join(PERIODS)}.")
    return period


@dataclass(frozen=True)
class HeadlineKPIs:
    """The headline figures of a transaction log.

    Attributes
    ----------
    customers, transactions : int
    revenue : float
        Sum of amounts, in the log's currency.
    repeat_purchase_rate : float
        Share of customers who bought on more than one day.
    average_order_value : float
        Revenue per transaction.
    revenue_per_customer, transactions_per_customer : float
    first_date, last_date : Timestamp
    """

    customers: int
    transactions: int
    revenue: float
    repeat_customers: int
    repeat_purchase_rate: float
    average_order_value: float
    revenue_per_customer: float
    transactions_per_customer: float
    first_date: pd.Timestamp
    last_date: pd.Timestamp

    def to_frame(self, currency: str = "USD") -> pd.DataFrame:
        """One row per KPI with its value formatted for people and its unit."""
        rows = [
            ("Customers", f"{self.customers:,}", "customers"),
            ("Transactions", f"{self.transactions:,}", "transactions"),
            ("Revenue", f"{self.revenue:,.2f}", currency),
            ("Repeat customers", f"{self.repeat_customers:,}", "customers"),
            ("Repeat-purchase rate", f"{self.repeat_purchase_rate:.1%}", "of customers"),
            ("Average order value", f"{self.average_order_value:,.2f}", f"{currency} per transaction"),
            ("Revenue per customer", f"{self.revenue_per_customer:,.2f}", f"{currency} per customer"),
            ("Transactions per customer", f"{self.transactions_per_customer:,.2f}", "transactions"),
            ("First transaction", f"{self.first_date:%Y-%m-%d}", "date"),
            ("Last transaction", f"{self.last_date:%Y-%m-%d}", "date"),
        ]
        return pd.DataFrame(rows, columns=["KPI", "value", "unit"]).set_index("KPI")

    def summary(self) -> str:
        """The KPIs as aligned text."""
        return self.to_frame().to_string()


def headline_kpis(data: TransactionLog | pd.DataFrame) -> HeadlineKPIs:
    """Customers, transactions, revenue, repeat-purchase rate and average order value.

    Parameters
    ----------
    data : TransactionLog or DataFrame
        The log, or canonical transactions (``customer_id``, ``date``, ``amount``).

    Returns
    -------
    HeadlineKPIs

    Examples
    --------
    >>> tx = pd.DataFrame({"customer_id": ["a", "a", "b"],
    ...                    "date": pd.to_datetime(["2020-01-01", "2020-02-01", "2020-01-05"]),
    ...                    "amount": [10.0, 20.0, 30.0]})
    >>> k = headline_kpis(tx)
    >>> k.customers, k.repeat_purchase_rate, k.average_order_value
    (2, 0.5, 20.0)
    """
    transactions = _frame(data)
    customers = int(transactions["customer_id"].nunique())
    n = len(transactions)
    revenue = float(transactions["amount"].sum())
    days = transactions.assign(day=transactions["date"].dt.normalize()).groupby("customer_id")["day"].nunique()
    repeat = int((days > 1).sum())
    return HeadlineKPIs(
        customers=customers,
        transactions=n,
        revenue=revenue,
        repeat_customers=repeat,
        repeat_purchase_rate=repeat / customers,
        average_order_value=revenue / n,
        revenue_per_customer=revenue / customers,
        transactions_per_customer=n / customers,
        first_date=transactions["date"].min(),
        last_date=transactions["date"].max(),
    )


def _with_periods(transactions: pd.DataFrame, period: str) -> pd.DataFrame:
    period_of = transactions["date"].dt.to_period(period)
    first = transactions.groupby("customer_id")["date"].transform("min").dt.to_period(period)
    return transactions.assign(period=period_of, cohort=first)


def _full_range(index: pd.PeriodIndex, period: str, end: pd.Timestamp | None = None) -> pd.PeriodIndex:
    last = index.max() if end is None else max(index.max(), end.to_period(period))
    return pd.period_range(index.min(), last, freq=period, name="period")


def _window_end(data: TransactionLog | pd.DataFrame) -> pd.Timestamp | None:
    return data.observation_end if isinstance(data, TransactionLog) else None


def activity_by_period(data: TransactionLog | pd.DataFrame, period: str = "M") -> pd.DataFrame:
    """Active, new and returning customers, transactions and revenue per calendar period.

    Parameters
    ----------
    data : TransactionLog or DataFrame
        The log (periods run to its window end), or canonical transactions (periods run
        to the last purchase).
    period : {"W", "M", "Q", "Y"}
        Calendar period.

    Returns
    -------
    DataFrame
        Indexed by period (every period between the first and the end, empty ones with
        zeros): ``active_customers``, ``new_customers``, ``returning_customers``,
        ``transactions``, ``revenue``, ``retained_customers`` (active in this period and
        the previous one), ``retention_rate`` and ``attrition_rate`` (NaN for the first
        period and after a period with no active customer).
    """
    _check_period(period)
    tx = _with_periods(_frame(data), period)
    grouped = tx.groupby("period")
    out = pd.DataFrame(
        {
            "active_customers": grouped["customer_id"].nunique(),
            "new_customers": tx[tx["period"] == tx["cohort"]].groupby("period")["customer_id"].nunique(),
            "transactions": grouped.size(),
            "revenue": grouped["amount"].sum(),
        }
    )
    out = out.reindex(_full_range(out.index, period, _window_end(data))).fillna(0)
    out[["active_customers", "new_customers", "transactions"]] = out[
        ["active_customers", "new_customers", "transactions"]
    ].astype(int)
    out["returning_customers"] = out["active_customers"] - out["new_customers"]

    # Customers active in period p and in p-1: shift each customer's active periods by one.
    active = tx[["customer_id", "period"]].drop_duplicates()
    previous = active.assign(period=active["period"] + 1)
    retained = active.merge(previous, on=["customer_id", "period"]).groupby("period").size()
    out["retained_customers"] = retained.reindex(out.index, fill_value=0).astype(int)
    prior_active = out["active_customers"].shift(1)
    out["retention_rate"] = (out["retained_customers"] / prior_active.where(prior_active > 0)).astype(float)
    out["attrition_rate"] = 1.0 - out["retention_rate"]
    return out[
        [
            "active_customers",
            "new_customers",
            "returning_customers",
            "transactions",
            "revenue",
            "retained_customers",
            "retention_rate",
            "attrition_rate",
        ]
    ]


def cohort_sizes(data: TransactionLog | pd.DataFrame, cohort_period: str = "Q") -> pd.DataFrame:
    """New customers, and their first-period revenue, per acquisition cohort.

    Returns
    -------
    DataFrame
        Indexed by cohort: ``new_customers``, ``share_of_customers``,
        ``first_purchase_revenue`` (revenue of the acquisition period).
    """
    _check_period(cohort_period)
    tx = _with_periods(_frame(data), cohort_period)
    first_period = tx[tx["period"] == tx["cohort"]]
    out = pd.DataFrame(
        {
            "new_customers": tx.groupby("cohort")["customer_id"].nunique(),
            "first_purchase_revenue": first_period.groupby("cohort")["amount"].sum(),
        }
    )
    out = out.reindex(_full_range(out.index, cohort_period, _window_end(data))).fillna(0)
    out.index.name = "cohort"
    out["new_customers"] = out["new_customers"].astype(int)
    out["share_of_customers"] = out["new_customers"] / out["new_customers"].sum()
    return out[["new_customers", "share_of_customers", "first_purchase_revenue"]]


def cohort_retention(
    data: TransactionLog | pd.DataFrame,
    cohort_period: str = "Q",
    period: str | None = None,
    observation_end: str | pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Share of each acquisition cohort active k periods after its acquisition period.

    Parameters
    ----------
    data : TransactionLog or DataFrame
        The log, or canonical transactions with ``observation_end``.
    cohort_period : {"W", "M", "Q", "Y"}
        Period that defines a cohort and the step k.
    period : str, optional
        Kept for symmetry with :func:`activity_by_period`; must equal ``cohort_period``
        when given.
    observation_end : str or Timestamp, optional
        For a bare frame: the last day observed; cells for periods after it are NaN.
        With a log, leave it out (the log's window end is used).

    Returns
    -------
    DataFrame
        Rows: cohorts; columns: k = 0, 1, 2, ... periods since acquisition; values: share
        of the cohort's customers active in that period (k = 0 is 1.0).
    """
    _check_period(cohort_period)
    if period is not None and period != cohort_period:
        raise ValueError("cohort_retention counts periods in cohort_period; pass period=None or the same value.")
    transactions, end = resolve_window(data, observation_end, what="cohort_retention")
    tx = _with_periods(transactions, cohort_period)
    active = tx[["customer_id", "cohort", "period"]].drop_duplicates()
    active = active.assign(k=(active["period"] - active["cohort"]).map(lambda offset: offset.n))
    counts = active.groupby(["cohort", "k"])["customer_id"].nunique().unstack("k")
    sizes = tx.groupby("cohort")["customer_id"].nunique()
    shares = counts.div(sizes, axis=0)
    last = end.to_period(cohort_period)
    cohorts = shares.index
    ks = np.arange(0, (last - cohorts.min()).n + 1)
    shares = shares.reindex(columns=ks)
    observed = np.array([[(last - c).n >= k for k in ks] for c in cohorts])
    shares = shares.where(observed, np.nan).where(~(observed & shares.isna()), 0.0)
    shares.index.name = "cohort"
    shares.columns.name = f"{PERIODS[cohort_period]}s since acquisition"
    return shares


def format_activity(activity: pd.DataFrame, currency: str = "USD") -> pd.DataFrame:
    """:func:`activity_by_period` with readable column names, thousands separators and percentages."""
    def pct(value: float) -> str:
        return "" if pd.isna(value) else f"{value:.1%}"

    counts = ["active_customers", "new_customers", "returning_customers", "transactions", "retained_customers"]
    out = pd.DataFrame(index=activity.index)
    for column in counts:
        out[column.replace("_", " ")] = activity[column].map("{:,}".format)
    out[f"revenue ({currency})"] = activity["revenue"].map("{:,.2f}".format)
    out["retention rate"] = activity["retention_rate"].map(pct)
    out["attrition rate"] = activity["attrition_rate"].map(pct)
    return out
