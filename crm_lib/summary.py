"""Per-customer summary statistics (frequency, recency, T, monetary value).

Every buy-till-you-die model of the workbench is fitted on this summary, so its
definitions are those of ``lifetimes.utils.summary_data_from_transaction_data``
(Fader, Hardie & Lee 2005 notation: x, t_x, T):

- dates are cut into periods of ``time_unit`` (``"D"`` days, ``"W"`` weeks starting on
  Monday, ``"h"`` hours); purchases in the same period are merged into one, their
  amounts summed;
- ``frequency`` (x) is the number of periods with a purchase after the first one;
- ``recency`` (t_x) is the age of the customer at the last purchase: last minus first
  purchase period;
- ``T`` is the age at the end of observation: observation-end period minus first period;
  the end comes with the :class:`~crm_lib.data.TransactionLog` (its last day included,
  :func:`crm_lib.data.observation_end_day`), never from the last purchase in the frame;
- ``monetary_value`` is the mean of the merged repeat-purchase amounts (the first
  purchase excluded), 0 for customers with no repeat purchase.

Durations are divided by ``unit_multiplier`` (``time_unit="h", unit_multiplier=24`` gives
days with fractions). The implementation works on integer period numbers with one sort
and no Python loop, so it scales to millions of transactions.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from crm_lib.data import TIME_UNITS, ObservationWindow, TransactionLog, end_period, observation_end_day, resolve_window
from crm_lib.exceptions import DataValidationError

__all__ = ["TIME_UNITS", "SUMMARY_COLUMNS", "period_numbers", "rfm_summary", "calibration_holdout_summary"]
SUMMARY_COLUMNS = ["frequency", "recency", "T", "monetary_value"]


def period_numbers(dates: pd.Series | pd.DatetimeIndex, time_unit: str) -> np.ndarray:
    """Integer number of the ``time_unit`` period each date falls in.

    Consecutive periods have consecutive numbers, so differences are durations in
    ``time_unit``: days since 1970-01-01, pandas' ``W`` weeks (Monday to Sunday) or hours.
    """
    if time_unit not in TIME_UNITS:
        raise ValueError(f"time_unit={time_unit!r} is not supported; use one of {', '.join(TIME_UNITS)}.")
    values = pd.to_datetime(pd.Series(dates)).to_numpy(dtype="datetime64[ns]")
    if time_unit == "D":
        return values.astype("datetime64[D]").astype(np.int64)
    if time_unit == "h":
        return values.astype("datetime64[h]").astype(np.int64)
    # Weeks as pandas' 'W' periods (Monday to Sunday): 1970-01-01 was a Thursday, so
    # shift by 3 days before dividing into weeks of 7 days.
    days = values.astype("datetime64[D]").astype(np.int64)
    return np.floor_divide(days + 3, 7)


def _merged_periods(
    customer_codes: np.ndarray, periods: np.ndarray, amounts: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Merge purchases in the same (customer, period); return them sorted."""
    # One int64 key (customer, period) sorts twice as fast as a two-key lexsort.
    low = periods.min() if len(periods) else 0
    span = (periods.max() - low + 1) if len(periods) else 1
    order = np.argsort(customer_codes.astype(np.int64) * span + (periods - low), kind="stable")
    codes = customer_codes[order]
    pers = periods[order]
    new_group = np.empty(len(codes), dtype=bool)
    new_group[:1] = True
    new_group[1:] = (codes[1:] != codes[:-1]) | (pers[1:] != pers[:-1])
    starts = np.flatnonzero(new_group)
    merged_amounts = None if amounts is None else np.add.reduceat(amounts[order], starts) if len(starts) else amounts[:0]
    return codes[starts], pers[starts], merged_amounts


def _unit_of(data: TransactionLog | pd.DataFrame, time_unit: str | None) -> str:
    if time_unit is not None:
        return time_unit
    return data.time_unit if isinstance(data, TransactionLog) else "D"


def rfm_summary(
    data: TransactionLog | pd.DataFrame,
    *,
    customer_col: str = "customer_id",
    date_col: str = "date",
    amount_col: str | None = "amount",
    observation_end: str | pd.Timestamp | None = None,
    time_unit: str | None = None,
    unit_multiplier: float = 1,
    include_first_transaction: bool = False,
) -> pd.DataFrame:
    """Frequency, recency, T and mean repeat spend of every customer.

    Parameters
    ----------
    data : TransactionLog or DataFrame
        The log (its window and time unit are used), or one row per purchase with an
        explicit ``observation_end``.
    customer_col, date_col, amount_col : str
        Column names. ``amount_col=None`` leaves out ``monetary_value``.
    observation_end : str or Timestamp, optional
        Last day of observation (included) for a bare frame; with a log, leave it out.
        As in lifetimes, purchases in the same period as the end are counted.
    time_unit : {"D", "W", "h"}, optional
        Period length: days, weeks (Monday to Sunday) or hours; defaults to the log's
        time unit (``"D"`` for a bare frame).
    unit_multiplier : float
        Durations are divided by it (``"h"`` with 24 gives fractional days).
    include_first_transaction : bool
        Count the first purchase in ``frequency`` and ``monetary_value`` (False for
        every BTYD model).

    Returns
    -------
    DataFrame
        Indexed by customer id (sorted), float columns ``frequency``, ``recency``,
        ``T`` and (with an amount column) ``monetary_value``; recency and T in
        ``time_unit / unit_multiplier``.

    Examples
    --------
    >>> tx = pd.DataFrame({"customer_id": ["a", "a", "a", "b"],
    ...                    "date": pd.to_datetime(["2020-01-01", "2020-01-01", "2020-01-05", "2020-01-03"]),
    ...                    "amount": [10.0, 5.0, 20.0, 8.0]})
    >>> rfm_summary(tx, observation_end="2020-01-10")
                 frequency  recency    T  monetary_value
    customer_id
    a                  1.0      4.0  9.0            20.0
    b                  0.0      0.0  7.0             0.0
    """
    time_unit = _unit_of(data, time_unit)
    transactions, end = resolve_window(data, observation_end, what="rfm_summary")
    for column in (customer_col, date_col) + ((amount_col,) if amount_col else ()):
        if column not in transactions.columns:
            raise DataValidationError(
                f"transactions: column '{column}' not found; the frame has {list(transactions.columns)}."
            )
    if transactions.empty:
        raise DataValidationError("transactions: no rows to summarise.")
    periods = period_numbers(transactions[date_col], time_unit)
    last_period = end_period(end, time_unit)
    inside = periods <= last_period
    # Factorizing the Series (not an object array) keeps pandas' fast string path.
    codes, uniques = pd.factorize(transactions[customer_col][inside], sort=True)
    amounts = transactions[amount_col].to_numpy(dtype=float)[inside] if amount_col else None
    m_codes, m_periods, m_amounts = _merged_periods(codes, periods[inside], amounts)

    n_customers = len(uniques)
    first_row = np.flatnonzero(np.r_[True, m_codes[1:] != m_codes[:-1]])
    last_row = np.r_[first_row[1:] - 1, len(m_codes) - 1]
    count = np.bincount(m_codes, minlength=n_customers)
    first_period = m_periods[first_row]
    frequency = count if include_first_transaction else count - 1
    out = pd.DataFrame(
        {
            "frequency": frequency.astype(float),
            "recency": (m_periods[last_row] - first_period) / unit_multiplier,
            "T": (last_period - first_period) / unit_multiplier,
        },
        index=pd.Index(np.asarray(uniques), name=customer_col),
    )
    if amount_col:
        total = np.bincount(m_codes, weights=m_amounts, minlength=n_customers)
        if not include_first_transaction:
            total = total - m_amounts[first_row]
        with np.errstate(invalid="ignore", divide="ignore"):
            monetary = np.where(frequency > 0, total / np.maximum(frequency, 1), 0.0)
        out["monetary_value"] = monetary
    return out.astype(float)


def calibration_holdout_summary(
    data: TransactionLog | pd.DataFrame,
    *,
    calibration_end: str | pd.Timestamp | None = None,
    observation_end: str | pd.Timestamp | None = None,
    customer_col: str = "customer_id",
    date_col: str = "date",
    amount_col: str | None = "amount",
    time_unit: str | None = None,
    unit_multiplier: float = 1,
) -> pd.DataFrame:
    """Summary over a calibration period and repeat purchases in the holdout period after it.

    Same definitions as ``lifetimes.utils.calibration_and_holdout_data``: the
    calibration summary is :func:`rfm_summary` of the purchases on or before
    ``calibration_end``; ``frequency_holdout`` counts the periods with a purchase after
    it and up to ``observation_end``; ``monetary_value_holdout`` is the mean amount of
    the holdout purchases (single purchases, as lifetimes does, not period sums);
    ``duration_holdout`` is the holdout length in ``time_unit / unit_multiplier``.
    Customers first seen in the holdout are not in the table.

    Parameters
    ----------
    data : TransactionLog or DataFrame
        The log (its window ends the holdout), or one row per purchase with an explicit
        ``observation_end``.
    calibration_end : str or Timestamp, optional
        Last day of the calibration period (included, same rule as the window end);
        None takes the window's midpoint (:meth:`crm_lib.data.ObservationWindow.midpoint`).
    observation_end : str or Timestamp, optional
        Last day of the holdout period for a bare frame; with a log, leave it out.
    customer_col, date_col, amount_col, time_unit, unit_multiplier
        As in :func:`rfm_summary`.

    Returns
    -------
    DataFrame
        Indexed by customer id: ``frequency_cal``, ``recency_cal``, ``T_cal``
        [``monetary_value_cal``], ``frequency_holdout`` [``monetary_value_holdout``],
        ``duration_holdout``.

    Raises
    ------
    DataValidationError
        When the calibration or the holdout period holds no purchase.
    """
    time_unit = _unit_of(data, time_unit)
    transactions, observation_end = resolve_window(data, observation_end, what="calibration_holdout_summary")
    dates = pd.to_datetime(transactions[date_col])
    if calibration_end is None:
        calibration_end = ObservationWindow(dates.min(), observation_end).midpoint()
    calibration_end = observation_end_day(calibration_end)
    if observation_end <= calibration_end:
        raise DataValidationError(
            f"calibration_end ({calibration_end:%Y-%m-%d}) must be before observation_end "
            f"({observation_end:%Y-%m-%d}); move calibration_end earlier in params."
        )
    calibration_stop = calibration_end + pd.Timedelta(days=1)
    in_calibration = (dates < calibration_stop).to_numpy()
    if not in_calibration.any():
        raise DataValidationError(
            f"no purchase on or before calibration_end ({calibration_end:%Y-%m-%d}); the data start on "
            f"{dates.min():%Y-%m-%d}. Move calibration_end later in params."
        )
    calibration = rfm_summary(
        transactions[in_calibration],
        customer_col=customer_col,
        date_col=date_col,
        amount_col=amount_col,
        observation_end=calibration_end,
        time_unit=time_unit,
        unit_multiplier=unit_multiplier,
    )
    calibration.columns = [f"{c}_cal" for c in calibration.columns]

    in_holdout = ((dates >= calibration_stop) & (dates < observation_end + pd.Timedelta(days=1))).to_numpy()
    if not in_holdout.any():
        raise DataValidationError(
            f"no purchase after calibration_end ({calibration_end:%Y-%m-%d}) up to observation_end "
            f"({observation_end:%Y-%m-%d}); move calibration_end earlier in params."
        )
    holdout = transactions[in_holdout]
    codes = calibration.index.get_indexer(holdout[customer_col])
    known = codes >= 0
    periods = period_numbers(holdout[date_col], time_unit)[known]
    codes = codes[known]
    m_codes, _, _ = _merged_periods(codes, periods, None)
    n = len(calibration)
    calibration["frequency_holdout"] = np.bincount(m_codes, minlength=n).astype(float)
    if amount_col:
        amounts = holdout[amount_col].to_numpy(dtype=float)[known]
        counts = np.bincount(codes, minlength=n)
        totals = np.bincount(codes, weights=amounts, minlength=n)
        with np.errstate(invalid="ignore", divide="ignore"):
            calibration["monetary_value_holdout"] = np.where(counts > 0, totals / np.maximum(counts, 1), 0.0)
    calibration["duration_holdout"] = float(
        (end_period(observation_end, time_unit) - end_period(calibration_end, time_unit)) / unit_multiplier
    )
    return calibration
