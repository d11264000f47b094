"""Lifetime of each customer from a P(alive) model (Reinartz & Kumar 2000), its profit and the tenure panel."""
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
from crm_lib.summary import TIME_UNITS, period_numbers

logger = logging.getLogger(__name__)

#: Length of one ``time_unit`` in days.
DAYS_PER_UNIT = {"D": 1.0, "W": 7.0, "h": 1.0 / 24.0}
CROSSING_RULES = ("last", "first")
PANEL_ENDS = ("lifetime_end", "last_purchase")


def _check_columns(frame: pd.DataFrame, columns: tuple[str, ...], name: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataValidationError(
            f"{name}: column(s) {missing} not found; the frame has {list(frame.columns)}. "
            + (
                "Pass TransactionLog.transactions (canonical columns customer_id, date, amount)."
                if name == "transactions"
                else "Build it with crm_lib.loyalty.lifetime_durations and lifetime_profit."
            )
        )
    if frame.empty:
        raise DataValidationError(f"{name}: no rows; the analysis needs at least one customer.")


def _check_threshold(threshold: float) -> None:
    if not 0.0 < float(threshold) < 1.0:
        raise ParamsError(
            f"p_alive_threshold={threshold!r} is not a probability strictly between 0 and 1; "
            "use e.g. 0.5 (Reinartz & Kumar 2000) in params."
        )


def _p_alive(model: Any, frequency: np.ndarray, recency: np.ndarray, age: np.ndarray) -> np.ndarray:
    """P(alive) of many histories at once (arrays of one shape, as lifetimes needs)."""
    if not hasattr(model, "conditional_probability_alive"):
        raise ModelFitError(
            f"{type(model).__name__} has no conditional_probability_alive(frequency, recency, T); pass a fitted "
            "Pareto/NBD or BG/NBD model (crm_lib.clv.fit_model or a fitted lifetimes fitter)."
        )
    if len(age) == 0:
        return np.empty(0)
    p = model.conditional_probability_alive(
        np.asarray(frequency, dtype=float), np.asarray(recency, dtype=float), np.asarray(age, dtype=float)
    )
    p = np.array(np.broadcast_to(np.asarray(p, dtype=float), np.shape(age)), dtype=float)
    # Right at a purchase (T = t_x) the Pareto/NBD P(alive) is exactly 1 (Fader & Hardie
    # 2005, note 009, eqs. 36-37: the term A_0 vanishes), but the hypergeometric
    # evaluation (lifetimes, crm_lib.clv) can return NaN there for large x. The BG/NBD is closed
    # form and never returns NaN, so only the Pareto/NBD limit is filled in.
    at_purchase = ~np.isfinite(p) & (np.asarray(age, dtype=float) == np.asarray(recency, dtype=float))
    if at_purchase.any():
        logger.info("P(alive) at T = t_x returned NaN for %d histories; set to its limit 1", int(at_purchase.sum()))
        p[at_purchase] = 1.0
    if not np.isfinite(p).all():
        bad = int((~np.isfinite(p)).sum())
        raise ModelFitError(
            f"the model returned {bad:,} P(alive) values that are not numbers (of {len(p):,}); the fitted "
            "parameters may be degenerate: refit the model or check its params_."
        )
    return p


def check_lifetime_model(model: Any, horizon: float) -> None:
    """Refuse a lifetime model that keeps every one-time buyer alive for ever.

    Under the BG/NBD (Fader, Hardie & Lee 2005) a customer can only drop out right after a
    repeat purchase, so P(alive | x = 0) = 1 at every age: every one-time buyer's lifetime
    would run to the observation end (censored), which says nothing about their loyalty.
    The Pareto/NBD and the MBG/NBD let one-time buyers drop out.

    Raises
    ------
    ModelFitError
        When P(alive) of a one-time buyer is still 1 at age ``horizon``.
    """
    p = _p_alive(model, np.array([0.0]), np.array([0.0]), np.array([float(max(horizon, 1))]))
    if p[0] >= 1.0 - 1e-9:
        raise ModelFitError(
            f"{type(model).__name__} gives P(alive) = 1 to every one-time buyer at any age (at age {horizon:,.0f} "
            "periods it is still 1): every lifetime of a customer who bought once would run to the observation end. "
            "Use lifetime_model 'pareto_nbd' (Reinartz & Kumar 2000) or 'mbg_nbd' in params."
        )


def _purchase_periods(transactions: pd.DataFrame, time_unit: str) -> tuple[np.ndarray, np.ndarray, pd.Index]:
    """Customer codes and purchase periods, merged per (customer, period) and sorted.

    Same periods as :func:`crm_lib.summary.rfm_summary`, so that the frequency and
    recency fed to the model are those it was fitted on.
    """
    periods = period_numbers(transactions["date"], time_unit)
    codes, customers = pd.factorize(transactions["customer_id"].to_numpy(), sort=True)
    order = np.lexsort((periods, codes))
    codes, periods = codes[order], periods[order]
    keep = np.r_[True, (codes[1:] != codes[:-1]) | (periods[1:] != periods[:-1])]
    return codes[keep], periods[keep], pd.Index(customers, name="customer_id")


def _last_day_of_period(periods: np.ndarray, time_unit: str) -> np.ndarray:
    """Calendar day on which each period number of :func:`period_numbers` ends."""
    if time_unit == "D":
        days = periods
    elif time_unit == "W":
        days = 7 * periods + 3  # weeks run Monday to Sunday (see crm_lib.summary)
    else:
        days = np.floor_divide(periods, 24)
    return days.astype("datetime64[D]").astype("datetime64[ns]")


def _first_crossing(
    model: Any,
    frequency: np.ndarray,
    recency: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    threshold: float,
) -> np.ndarray:
    """Smallest integer age in ``[lo, hi]`` with P(alive) < threshold, or -1 if none.

    Between two purchases P(alive | x, t_x, T) only falls as T grows (the customer's
    silence gets longer), for the Pareto/NBD (Fader & Hardie 2005, note 009, eqs. 36-37)
    as for the BG/NBD (Fader, Hardie & Lee, note 021, "Computing P(alive) using the
    BG/NBD model"). So the first grid
    point below the threshold is found by bisection on the integer grid of each gap,
    all gaps at once: about log2(longest gap) vectorised model calls, and the same
    answer as scanning every day of every gap.
    """
    lo = lo.astype(np.int64).copy()
    hi = hi.astype(np.int64).copy()
    crosses = _p_alive(model, frequency, recency, hi) < threshold
    result = np.full(len(lo), -1, dtype=np.int64)
    idx = np.flatnonzero(crosses)
    a, b = lo[idx], hi[idx]
    f, r = frequency[idx], recency[idx]
    while True:
        active = a < b
        if not active.any():
            break
        mid = (a[active] + b[active]) // 2
        below = _p_alive(model, f[active], r[active], mid) < threshold
        a_act, b_act = a[active], b[active]
        b_act = np.where(below, mid, b_act)
        a_act = np.where(below, a_act, mid + 1)
        a[active], b[active] = a_act, b_act
    result[idx] = a
    return result


def lifetime_durations(
    transactions: pd.DataFrame,
    model: Any,
    *,
    p_alive_threshold: float = 0.5,
    time_unit: str = "D",
    observation_end: str | pd.Timestamp | None = None,
    crossing: str = "last",
    cohort_freq: str = "M",
    allow_immortal_one_time_buyers: bool = False,
) -> pd.DataFrame:
    """Lifetime of each customer: from the first purchase until P(alive) falls below a threshold.

    Reinartz & Kumar (2000) measure lifetime in a noncontractual setting this way: the
    probability that the customer is still alive, given the purchases so far (Pareto/NBD,
    Schmittlein, Morrison & Colombo 1987), is followed period by period after the first
    purchase; the lifetime ends on the first period it is below the threshold (after the
    last purchase, with ``crossing="last"``), or at the observation end when it never
    is (the lifetime is then censored).

    Parameters
    ----------
    transactions : DataFrame
        Canonical log (``customer_id``, ``date``, ``amount``).
    model : fitted model
        Anything with lifetimes' ``conditional_probability_alive(frequency, recency, T)``,
        fitted on :func:`crm_lib.summary.rfm_summary` in the same ``time_unit``.
    p_alive_threshold : float
        The lifetime ends when P(alive) is below it (0.5 in Reinartz & Kumar 2000).
    time_unit : {"D", "W", "h"}
        The unit the model was fitted in; also the grid on which P(alive) is followed.
    observation_end : str or Timestamp, optional
        End of observation; the last transaction date by default.
    crossing : {"last", "first"}
        ``"last"`` (default): the crossing after the customer's last purchase ends the
        lifetime; a dip below the threshold followed by another purchase does not, since
        the purchase shows the customer was alive (such dips are counted in
        ``dips_below_threshold``). ``"first"``: the first crossing ends the lifetime,
        and purchases after it are outside the lifetime.
    cohort_freq : str
        Pandas period frequency of the acquisition cohort (``"M"`` months, ``"Q"``).
    allow_immortal_one_time_buyers : bool
        Accept a model that keeps one-time buyers alive for ever (BG/NBD). Only to check
        the lifetime rule against the BG/NBD closed form; the analysis refuses it.

    Returns
    -------
    DataFrame
        Indexed by ``customer_id``: ``first_purchase`` (date), ``lifetime_end`` (last day of the lifetime),
        ``duration`` (in ``time_unit``), ``duration_days``, ``censored`` (P(alive) never
        fell below the threshold before the observation end), ``dips_below_threshold``,
        ``p_alive_at_end`` (P(alive) at the observation end) and ``cohort``.

    Raises
    ------
    ParamsError
        Threshold outside (0, 1), unknown ``time_unit`` or ``crossing``.
    ModelFitError
        The model has no ``conditional_probability_alive``, returns non-numbers, or
        keeps every one-time buyer alive (BG/NBD; see :func:`check_lifetime_model`).

    Examples
    --------
    >>> from lifetimes import ParetoNBDFitter
    >>> model = ParetoNBDFitter(); model.params_ = pd.Series(
    ...     {"r": 0.553, "alpha": 10.58, "s": 0.606, "beta": 11.67})   # CDNOW, weeks
    >>> tx = pd.DataFrame({"customer_id": ["a", "a", "b"], "amount": [10.0, 12.0, 8.0],
    ...                    "date": pd.to_datetime(["1997-01-06", "1997-02-03", "1997-01-06"])})
    >>> lifetime_durations(tx, model, time_unit="W", observation_end="1998-06-30")["duration"].tolist()
    [20.0, 18.0]
    """
    _check_columns(transactions, ("customer_id", "date"), "transactions")
    _check_threshold(p_alive_threshold)
    if time_unit not in TIME_UNITS:
        raise ParamsError(f"time_unit={time_unit!r} is not supported; use one of {', '.join(TIME_UNITS)}.")
    if crossing not in CROSSING_RULES:
        raise ParamsError(f"crossing={crossing!r} is not a rule; use one of {', '.join(CROSSING_RULES)}.")
    dates = pd.to_datetime(transactions["date"])
    end = dates.max() if observation_end is None else pd.Timestamp(observation_end)
    if dates.min() > end:
        raise DataValidationError(
            f"observation_end ({end:%Y-%m-%d}) is before the first purchase ({dates.min():%Y-%m-%d}); "
            "move observation_end later in params."
        )
    # A date-only observation end covers its whole day, as in crm_lib.data.
    inside = dates < end + pd.Timedelta(days=1) if end == end.normalize() else dates <= end
    tx = transactions.loc[inside.to_numpy()]
    codes, periods, customers = _purchase_periods(tx, time_unit)
    n = len(customers)
    end_period = int(period_numbers(pd.Series([end]), time_unit)[0])
    if not allow_immortal_one_time_buyers:
        check_lifetime_model(model, end_period - periods.min())

    first_row = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    first_period = periods[first_row]
    age = periods - first_period[codes]  # purchase ages, 0 for the first purchase
    repeat_index = np.arange(len(codes)) - first_row[codes]  # x before this purchase's gap
    is_last = np.r_[codes[1:] != codes[:-1], True]
    T_end = end_period - first_period

    # One gap after each purchase: ages from the purchase to the day before the next
    # one, or to the observation end after the last purchase.
    next_age = np.r_[age[1:], 0]
    gap_hi = np.where(is_last, T_end[codes], next_age - 1)
    cross = _first_crossing(
        model, repeat_index.astype(float), age.astype(float), age, gap_hi, p_alive_threshold
    )
    has_cross = cross >= 0
    dips = np.bincount(codes, weights=(has_cross & ~is_last).astype(float), minlength=n)
    if crossing == "last":
        end_cross = np.full(n, -1, dtype=np.int64)
        end_cross[codes[is_last]] = cross[is_last]
    else:
        big = np.iinfo(np.int64).max
        first = np.full(n, big, dtype=np.int64)
        np.minimum.at(first, codes[has_cross], cross[has_cross])
        end_cross = np.where(first == big, -1, first)
    censored = end_cross < 0
    duration = np.where(censored, T_end, end_cross).astype(float)
    last_rows = np.flatnonzero(is_last)
    p_end = _p_alive(model, repeat_index[last_rows].astype(float), age[last_rows].astype(float), T_end.astype(float))

    first_dates = tx.groupby("customer_id", sort=True)["date"].min().reindex(customers)
    last_day = _last_day_of_period(first_period + duration.astype(np.int64), time_unit)
    out = pd.DataFrame(
        {
            "first_purchase": first_dates.to_numpy(),
            "lifetime_end": np.minimum(last_day, np.datetime64(end.normalize(), "ns")),
            "duration": duration,
            "duration_days": duration * DAYS_PER_UNIT[time_unit],
            "censored": censored,
            "dips_below_threshold": dips.astype(int),
            "p_alive_at_end": p_end,
            "cohort": first_dates.dt.to_period(cohort_freq).astype(str).to_numpy(),
        },
        index=customers,
    )
    logger.info(
        "lifetimes of %d customers: %d censored, threshold %.2f, crossing=%s",
        n,
        int(censored.sum()),
        p_alive_threshold,
        crossing,
    )
    return out


def p_alive_path(
    transactions: pd.DataFrame,
    model: Any,
    customer_ids: list[str],
    *,
    time_unit: str = "D",
    observation_end: str | pd.Timestamp | None = None,
) -> pd.DataFrame:
    """P(alive) of a few customers at every age from their first purchase to the observation end.

    This is the curve that :func:`lifetime_durations` follows: at age t the model is
    given the purchases up to t (frequency and recency) and T = t. Meant for a handful
    of customers, to show how a lifetime is read off the curve.

    Parameters
    ----------
    transactions : DataFrame
        Canonical log.
    model : fitted model
        With ``conditional_probability_alive``.
    customer_ids : list of str
        The customers to follow.
    time_unit : {"D", "W", "h"}
        Unit of the model and of the ages.
    observation_end : str or Timestamp, optional
        End of observation; the last transaction date by default.

    Returns
    -------
    DataFrame
        Columns ``customer_id``, ``age`` (in ``time_unit``), ``p_alive``, ``purchase``
        (True at ages with a purchase).
    """
    _check_columns(transactions, ("customer_id", "date"), "transactions")
    end = pd.to_datetime(transactions["date"]).max() if observation_end is None else pd.Timestamp(observation_end)
    end_period = int(period_numbers(pd.Series([end]), time_unit)[0])
    chosen = transactions[transactions["customer_id"].isin(customer_ids)]
    missing = sorted(set(customer_ids) - set(chosen["customer_id"]))
    if missing:
        raise DataValidationError(f"transactions: customer(s) {missing[:3]} not found; pick ids from the customer table.")
    codes, periods, customers = _purchase_periods(chosen, time_unit)
    frames = []
    for code, customer in enumerate(customers):  # a handful of customers, for a figure
        ages_bought = periods[codes == code] - periods[codes == code][0]
        ages = np.arange(0, end_period - periods[codes == code][0] + 1)
        seen = np.searchsorted(ages_bought, ages, side="right")  # purchases up to each age
        p = _p_alive(model, (seen - 1).astype(float), ages_bought[seen - 1].astype(float), ages.astype(float))
        frames.append(pd.DataFrame({"customer_id": customer, "age": ages, "p_alive": p, "purchase": np.isin(ages, ages_bought)}))
    return pd.concat(frames, ignore_index=True)



def _cost_source(transactions: pd.DataFrame, cost_per_order: float | None) -> str:
    if "cost" in transactions.columns:
        return "cost column"
    if cost_per_order is not None:
        return "cost per order"
    return "none"


def _order_profit(
    transactions: pd.DataFrame, gross_margin: float, cost_per_order: float | None
) -> tuple[np.ndarray, np.ndarray]:
    """Cost to serve and profit of each order (row)."""
    amount = transactions["amount"].to_numpy(dtype=float)
    source = _cost_source(transactions, cost_per_order)
    if source == "cost column":
        cost = transactions["cost"].to_numpy(dtype=float)
    elif source == "cost per order":
        cost = np.full(len(amount), float(cost_per_order))
    else:
        cost = np.zeros(len(amount))
    return cost, gross_margin * amount - cost


def _check_money_params(gross_margin: float, cost_per_order: float | None) -> None:
    if not 0.0 < float(gross_margin) <= 1.0:
        raise ParamsError(
            f"gross_margin={gross_margin!r} must be a share of revenue in (0, 1], e.g. 0.3 for a 30% margin; "
            "fix gross_margin in params."
        )
    if cost_per_order is not None and (not np.isfinite(cost_per_order) or cost_per_order < 0):
        raise ParamsError(
            f"cost_per_order={cost_per_order!r} must be a non-negative amount per order (or null when unknown); "
            "fix cost_per_order in params."
        )


def _within_lifetime(transactions: pd.DataFrame, durations: pd.DataFrame) -> pd.DataFrame:
    ends = durations["lifetime_end"].reindex(transactions["customer_id"]).to_numpy()
    # A date-only lifetime end covers its whole day, like observation_end.
    limit = pd.DatetimeIndex(ends).normalize() + pd.Timedelta(days=1)
    known = ~pd.isna(ends)
    return transactions.loc[known & (pd.to_datetime(transactions["date"]).to_numpy() < limit.to_numpy())]


def lifetime_profit(
    transactions: pd.DataFrame,
    durations: pd.DataFrame,
    *,
    gross_margin: float = 1.0,
    cost_per_order: float | None = None,
) -> pd.DataFrame:
    """Lifetime revenue, cost to serve and profit of each customer.

    ``profit = gross_margin * revenue - cost``, summed over the purchases inside the
    customer's lifetime (Reinartz & Kumar 2000 use gross margin less the cost of the
    mailings sent). The cost to serve is the ``cost`` column of the log when there is
    one, else ``cost_per_order`` times the number of orders, else zero (and H4 cannot
    be tested).

    Parameters
    ----------
    transactions : DataFrame
        Canonical log; ``quantity`` and ``cost`` are used when present.
    durations : DataFrame
        Output of :func:`lifetime_durations`.
    gross_margin : float
        Share of revenue left after the cost of goods, in (0, 1].
    cost_per_order : float, optional
        Cost to serve one order, in the currency of ``amount``; ignored when the log has
        a ``cost`` column.

    Returns
    -------
    DataFrame
        ``durations`` with ``orders``, ``units`` (NaN without quantity), ``revenue``,
        ``cost``, ``profit``, ``price`` (revenue per unit, or per order without
        quantity), ``cost_share`` (cost / revenue, NaN when revenue is 0) and
        ``cost_source``.

    Raises
    ------
    ParamsError
        Margin outside (0, 1] or a negative cost per order.
    """
    _check_columns(transactions, ("customer_id", "date", "amount"), "transactions")
    _check_columns(durations, ("lifetime_end", "duration"), "durations")
    _check_money_params(gross_margin, cost_per_order)
    tx = _within_lifetime(transactions, durations)
    cost, profit = _order_profit(tx, gross_margin, cost_per_order)
    grouped = pd.DataFrame(
        {
            "customer_id": tx["customer_id"].to_numpy(),
            "orders": 1.0,
            "units": tx["quantity"].to_numpy(dtype=float) if "quantity" in tx.columns else np.nan,
            "revenue": tx["amount"].to_numpy(dtype=float),
            "cost": cost,
            "profit": profit,
        }
    ).groupby("customer_id", sort=True)
    sums = grouped.sum(min_count=1).reindex(durations.index)
    out = durations.copy()
    out["orders"] = sums["orders"].fillna(0).astype(int)
    out["units"] = sums["units"]
    out["revenue"] = sums["revenue"].fillna(0.0)
    out["cost"] = sums["cost"].fillna(0.0)
    out["profit"] = sums["profit"].fillna(0.0)
    per = out["units"] if "quantity" in tx.columns else out["orders"].astype(float)
    out["price"] = out["revenue"] / per.where(per > 0)
    out["cost_share"] = out["cost"] / out["revenue"].where(out["revenue"] > 0)
    out["cost_source"] = _cost_source(transactions, cost_per_order)
    return out


def tenure_panel(
    transactions: pd.DataFrame,
    customers: pd.DataFrame,
    *,
    gross_margin: float = 1.0,
    cost_per_order: float | None = None,
    period_days: int = 30,
    panel_end: str = "lifetime_end",
    skip_first_period: bool = False,
) -> pd.DataFrame:
    """Profit of each customer in each period since acquisition, while alive.

    One row per customer and tenure period ``k`` (days ``[k * period_days, (k + 1) *
    period_days)`` after the first purchase) that starts on or before the last day of
    the customer's lifetime; periods without a purchase have profit 0 (cost to serve is
    charged per order). The last period of a lifetime may be partial.

    Parameters
    ----------
    transactions : DataFrame
        Canonical log.
    customers : DataFrame
        Output of :func:`lifetime_durations` (or :func:`lifetime_profit`).
    gross_margin, cost_per_order
        As in :func:`lifetime_profit`.
    period_days : int
        Length of a tenure period in days (30: months of 30 days).
    panel_end : {"lifetime_end", "last_purchase"}
        Last day of each customer's panel. ``"lifetime_end"`` (default) follows the
        estimated lifetime, whose last periods are quiet by construction (P(alive) only
        falls after a silence), which pulls the tenure trend down; ``"last_purchase"``
        stops at the last purchase, whose period always has a sale, which pulls it up.
        The robustness table shows both.
    skip_first_period : bool
        Leave out tenure period 0, which always holds the first order (and so pulls
        the tenure trend down); the calibrated H2 of :mod:`crm_lib.loyalty.null` does.

    Returns
    -------
    DataFrame
        Columns ``customer_id``, ``tenure_period`` (0 = first period), ``profit``.
    """
    _check_columns(customers, ("first_purchase", "lifetime_end", "duration_days"), "customers")
    _check_money_params(gross_margin, cost_per_order)
    if int(period_days) < 1:
        raise ParamsError(f"tenure_period_days={period_days!r} must be a whole number of days >= 1; fix it in params.")
    if panel_end not in PANEL_ENDS:
        raise ParamsError(f"panel_end={panel_end!r} is not known; use one of {', '.join(PANEL_ENDS)}.")
    tx = _within_lifetime(transactions, customers)
    if panel_end == "lifetime_end":
        last_day = customers["lifetime_end"]
    else:
        last_day = pd.to_datetime(tx.groupby("customer_id")["date"].max()).reindex(customers.index)
    # Every day from the first purchase to the panel's last day, inclusive.
    span_days = (last_day.dt.normalize() - customers["first_purchase"].dt.normalize()).dt.days.to_numpy()
    n_periods = (np.floor_divide(np.maximum(np.nan_to_num(span_days), 0), period_days) + 1).astype(np.int64)
    ids = np.repeat(customers.index.to_numpy(), n_periods)
    k = np.arange(n_periods.sum()) - np.repeat(np.cumsum(n_periods) - n_periods, n_periods)
    panel = pd.DataFrame({"customer_id": ids, "tenure_period": k, "profit": 0.0})

    _, profit = _order_profit(tx, gross_margin, cost_per_order)
    first = customers["first_purchase"].reindex(tx["customer_id"]).to_numpy()
    days = (pd.to_datetime(tx["date"]).dt.normalize().to_numpy() - pd.DatetimeIndex(first).normalize().to_numpy()) / np.timedelta64(1, "D")
    tx_k = np.floor(days / period_days).astype(np.int64)
    sums = (
        pd.DataFrame({"customer_id": tx["customer_id"].to_numpy(), "tenure_period": tx_k, "profit": profit})
        .groupby(["customer_id", "tenure_period"], sort=False)["profit"]
        .sum()
    )
    position = pd.MultiIndex.from_frame(panel[["customer_id", "tenure_period"]]).get_indexer(sums.index)
    inside = position >= 0
    values = panel["profit"].to_numpy().copy()
    values[position[inside]] = sums.to_numpy()[inside]
    panel["profit"] = values
    if skip_first_period:
        panel = panel.loc[panel["tenure_period"] >= 1].reset_index(drop=True)
    return panel

