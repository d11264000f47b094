"""P(alive): over the frequency-recency grid, and along one customer's history."""
from __future__ import annotations

import numpy as np
import pandas as pd

from crm_lib.clv.validation import _period_start
from crm_lib.exceptions import DataValidationError
from crm_lib.models import BTYDFit
from crm_lib.summary import period_numbers

__all__ = ["p_alive_grid", "p_alive_history"]


def p_alive_grid(fit: BTYDFit, *, max_frequency: int, max_T: float) -> pd.DataFrame:
    """P(alive) over the frequency-recency grid for customers of age ``max_T``.

    Returns
    -------
    DataFrame
        Index recency 0..max_T (whole periods), columns frequency 0..max_frequency; NaN
        where the history is impossible (frequency 0 with recency > 0).
    """
    recency = np.arange(int(max_T) + 1, dtype=float)
    frequency = np.arange(int(max_frequency) + 1, dtype=float)
    x, tx = np.meshgrid(frequency, recency)
    values = np.asarray(fit.conditional_probability_alive(x.ravel(), tx.ravel(), np.full(x.size, float(max_T))))
    grid = values.reshape(x.shape)
    grid[(x == 0) & (tx > 0)] = np.nan
    return pd.DataFrame(grid, index=pd.Index(recency.astype(int), name="recency"),
                        columns=pd.Index(frequency.astype(int), name="frequency"))


def p_alive_history(
    fit: BTYDFit,
    transactions: pd.DataFrame,
    customer_id,
    *,
    time_unit: str = "W",
    observation_end: str | pd.Timestamp | None = None,
    customer_col: str = "customer_id",
    date_col: str = "date",
) -> pd.DataFrame:
    """P(alive) of one customer at the end of every period from her first purchase on.

    Returns
    -------
    DataFrame
        Indexed by period start date: age, frequency, recency, p_alive, purchase (bool:
        bought in that period).
    """
    mine = transactions[transactions[customer_col].astype(str) == str(customer_id)]
    if mine.empty:
        example = transactions[customer_col].iloc[0] if len(transactions) else None
        raise DataValidationError(f"p_alive_history: customer {customer_id!r} has no transactions "
                                  f"(ids look like {example!r}).")
    all_dates = pd.to_datetime(transactions[date_col])
    end = all_dates.max() if observation_end is None else pd.Timestamp(observation_end)
    periods = np.unique(period_numbers(pd.to_datetime(mine[date_col]), time_unit))
    end_period = int(period_numbers(pd.Series([end]), time_unit)[0])
    periods = periods[periods <= end_period]
    first = periods[0]
    grid = np.arange(first, end_period + 1)
    bought = np.isin(grid, periods)
    frequency = np.cumsum(bought) - 1
    last = np.maximum.accumulate(np.where(bought, grid, first))
    age = (grid - first).astype(float)
    recency = (last - first).astype(float)
    p_alive = np.asarray(fit.conditional_probability_alive(frequency.astype(float), recency, age), dtype=float)
    out = pd.DataFrame({"age": age, "frequency": frequency.astype(float), "recency": recency, "p_alive": p_alive,
                        "purchase": bought}, index=pd.Index(_period_start(grid, time_unit), name="period_start"))
    out.attrs.update(customer_id=str(customer_id), time_unit=time_unit)
    return out
