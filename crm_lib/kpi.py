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
from crm_lib.summary import period_numbers


def _frame(data: TransactionLog | pd.DataFrame) -> pd.DataFrame:
    return data.transactions if isinstance(data, TransactionLog) else data

PERIODS = {"W": "week", "M": "month", "Q": "quarter", "Y": "year"}


def _check_period(period: str) -> str:
    if period not in PERIODS:
        raise ValueError(f"period={period!r} is not supported; use one of {', '.join(PERIODS)}.")
    return period


def period_ordinals(dates: pd.Series, period: str) -> np.ndarray:
    """pandas Period ordinals of ``dates`` (``dates.dt.to_period(period).asi8``) by integer arithmetic.

    Months and years since 1970 are numpy's own datetime units; quarters are three months;
    pandas' weeks (Monday to Sunday) count from the week ending Sunday 1969-12-28, one
    more than :func:`crm_lib.summary.period_numbers`.
    """
    _check_period(period)
    if period == "W":
        return period_numbers(dates, "W") + 1
    values = pd.to_datetime(pd.Series(dates)).to_numpy()
    if period == "Y":
        return values.astype("datetime64[Y]").astype(np.int64)
    months = values.astype("datetime64[M]").astype(np.int64)
    return np.floor_divide(months, 3) if period == "Q" else months


@dataclass(frozen=True)
class _Coded:
    """A log as integers: customer code, period ordinal and acquisition cohort per row."""

    customer: np.ndarray
    n_customers: int
    period: np.ndarray
    cohort_of_customer: np.ndarray
    amount: np.ndarray

    @property
    def cohort(self) -> np.ndarray:
        return self.cohort_of_customer[self.customer]

    def active_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """Distinct (customer, period) pairs, sorted by customer then period."""
        low = int(self.period.min())
        span = int(self.period.max()) - low + 2  # a gap: consecutive keys never cross customers
        key = _distinct(self.customer.astype(np.int64) * span + (self.period - low))
        return key // span, key % span + low


def _distinct(keys: np.ndarray) -> np.ndarray:
    """Sorted distinct values by one SIMD sort (numpy 2's hash-based ``np.unique`` is 30x slower on these keys)."""
    ordered = np.sort(keys)
    if len(ordered) < 2:
        return ordered
    return ordered[np.r_[True, ordered[1:] != ordered[:-1]]]


def _coded(transactions: pd.DataFrame, period: str) -> _Coded:
    customer, uniques = pd.factorize(transactions["customer_id"])
    ordinals = period_ordinals(transactions["date"], period)
    first = np.full(len(uniques), np.iinfo(np.int64).max)
    np.minimum.at(first, customer, ordinals)  # a customer's cohort: the period of the first purchase
    return _Coded(customer, len(uniques), ordinals, first, transactions["amount"].to_numpy(dtype=float))


def _periods(ordinals: np.ndarray, period: str, name: str) -> pd.PeriodIndex:
    return pd.PeriodIndex.from_ordinals(np.asarray(ordinals, dtype=np.int64), freq=period).rename(name)


def _ordinal_range(low: int, high: int, period: str, end: pd.Timestamp | None) -> np.ndarray:
    """Every ordinal from the first period to the last (or to the window end's period)."""
    if end is not None:
        high = max(high, int(pd.Timestamp(end).to_period(period).ordinal))
    return np.arange(low, high + 1)


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
    codes, uniques = pd.factorize(transactions["customer_id"])
    customers = len(uniques)
    n = len(transactions)
    revenue = float(transactions["amount"].sum())
    # Customers with more than one distinct purchase day, on integer codes and day numbers.
    days = period_numbers(transactions["date"], "D")
    span = int(days.max() - days.min()) + 1 if len(days) else 1
    distinct = _distinct(codes.astype(np.int64) * span + (days - (days.min() if len(days) else 0))) // span
    repeat = int((np.bincount(distinct, minlength=len(uniques)) > 1).sum())
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
    coded = _coded(_frame(data), period)
    full = _ordinal_range(int(coded.period.min()), int(coded.period.max()), period, _window_end(data))
    low, size = int(full[0]), len(full)
    customer, active_period = coded.active_pairs()
    # Retained in p: the same customer's previous active period is p - 1.
    consecutive = np.r_[False, (customer[1:] == customer[:-1]) & (active_period[1:] == active_period[:-1] + 1)]
    out = pd.DataFrame(
        {
            "active_customers": np.bincount(active_period - low, minlength=size),
            "new_customers": np.bincount(coded.cohort_of_customer - low, minlength=size),
            "returning_customers": 0,
            "transactions": np.bincount(coded.period - low, minlength=size),
            "revenue": np.bincount(coded.period - low, weights=coded.amount, minlength=size),
            "retained_customers": np.bincount(active_period[consecutive] - low, minlength=size),
        },
        index=_periods(full, period, "period"),
    )
    out["returning_customers"] = out["active_customers"] - out["new_customers"]
    prior_active = out["active_customers"].shift(1)
    out["retention_rate"] = (out["retained_customers"] / prior_active.where(prior_active > 0)).astype(float)
    out["attrition_rate"] = 1.0 - out["retention_rate"]
    return out


def cohort_sizes(data: TransactionLog | pd.DataFrame, cohort_period: str = "Q") -> pd.DataFrame:
    """New customers, and their first-period revenue, per acquisition cohort.

    Returns
    -------
    DataFrame
        Indexed by cohort: ``new_customers``, ``share_of_customers``,
        ``first_purchase_revenue`` (revenue of the acquisition period).
    """
    _check_period(cohort_period)
    coded = _coded(_frame(data), cohort_period)
    cohorts = coded.cohort_of_customer
    full = _ordinal_range(int(cohorts.min()), int(cohorts.max()), cohort_period, _window_end(data))
    low, size = int(full[0]), len(full)
    first_period = coded.period == coded.cohort
    new = np.bincount(coded.cohort_of_customer - low, minlength=size)
    out = pd.DataFrame(
        {
            "new_customers": new,
            "share_of_customers": new / new.sum(),
            "first_purchase_revenue": np.bincount(coded.period[first_period] - low,
                                                  weights=coded.amount[first_period], minlength=size),
        },
        index=_periods(full, cohort_period, "cohort"),
    )
    return out


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
    coded = _coded(transactions, cohort_period)
    customer, active_period = coded.active_pairs()
    cohort = coded.cohort_of_customer[customer]
    last = int(end.to_period(cohort_period).ordinal)
    cohorts = _distinct(cohort)
    cohort_index = np.searchsorted(cohorts, cohort)
    ks = np.arange(0, last - int(cohorts.min()) + 1)
    k = active_period - cohort
    inside = k < len(ks)
    counts = np.bincount(cohort_index[inside] * len(ks) + k[inside], minlength=len(cohorts) * len(ks))
    sizes = np.bincount(np.searchsorted(cohorts, coded.cohort_of_customer), minlength=len(cohorts))
    shares = (counts.reshape(len(cohorts), len(ks)) / sizes[:, None]).astype(float)
    observed = (last - cohorts)[:, None] >= ks[None, :]
    shares[~observed] = np.nan
    return pd.DataFrame(shares, index=_periods(cohorts, cohort_period, "cohort"),
                        columns=pd.Index(ks, name=f"{PERIODS[cohort_period]}s since acquisition"))


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
