"""Loyalty versus profit: are the long-lived customers the profitable ones?

Reinartz & Kumar (2000), "On the profitability of long-life customers in a
noncontractual setting", Journal of Marketing 64(4), 17-35, tested four beliefs behind
loyalty programmes on company data; Reinartz & Kumar (2002), "The mismanagement of
customer loyalty", Harvard Business Review 80(7), named the four cells of the
loyalty-profit matrix. This module runs the same battery on any transaction log:

1. :func:`lifetime_durations`: lifetime from the first purchase until the customer's
   probability of being alive (from a fitted Pareto/NBD or BG/NBD model) falls below a
   threshold, or until the observation end when it never does;
   :func:`lifetime_profit`: lifetime revenue, cost to serve and
   ``profit = gross_margin * revenue - cost``;
2. :func:`test_duration_profit` (H1), :func:`test_profit_tenure` (H2),
   :func:`test_price` (H3), :func:`test_cost_share` (H4), gathered with Holm-adjusted
   p-values by :func:`test_hypotheses`;
3. :func:`loyalty_profit_matrix`: strangers, butterflies, true friends and barnacles,
   with a chi-square test of independence and Cramer's V;
4. :func:`robustness_table`: the verdicts again under other thresholds, split points
   and models;
5. :func:`simulate_loyalty_log`: transaction logs where the truth is set, for tests.

The lifetime model is any fitted object with a vectorised, lifetimes-compatible
``conditional_probability_alive(frequency, recency, T)`` (``crm_lib.clv.fit_model``,
``lifetimes.ParetoNBDFitter``, ``lifetimes.BetaGeoFitter``); this module fits nothing. The model must have been fitted
in the same ``time_unit`` as the one given here.
"""
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
VERDICTS = ("supported", "not supported", "contradicted", "not testable")

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


# ---------------------------------------------------------------------------------------
# 1. Lifetime duration and lifetime profit
# ---------------------------------------------------------------------------------------


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
        The model has no ``conditional_probability_alive`` or returns non-numbers.

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
    return panel


# ---------------------------------------------------------------------------------------
# 2. The hypotheses
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TestResult:
    """One statistical test of a hypothesis.

    Attributes
    ----------
    method : str
        What was computed, in words a reviewer knows ("Spearman rank correlation").
    statistic_name, statistic : str, float
        The test statistic (t, z, U, ...).
    estimate_name, estimate : str, float
        The effect size with its units ("difference in mean price (long - short), USD").
    ci_low, ci_high : float
        Its 95% confidence interval.
    p_value : float
        Two-sided p-value.
    p_holm : float
        Holm-adjusted p-value across the family of tests (NaN until adjusted).
    n : int
        Observations used (customers, or customer-periods for panel tests).
    primary : bool
        Whether the hypothesis' verdict rests on this test.
    """

    method: str
    statistic_name: str
    statistic: float
    estimate_name: str
    estimate: float
    ci_low: float
    ci_high: float
    p_value: float
    n: int
    primary: bool = False
    p_holm: float = float("nan")


@dataclass(frozen=True)
class HypothesisResult:
    """A hypothesis of Reinartz & Kumar (2000), its tests and the verdict in plain words.

    Attributes
    ----------
    hypothesis : str
        ``"H1"`` ... ``"H4"``.
    claim : str
        What the loyalty belief says.
    expected_sign : int
        +1 when the claim predicts a positive effect, -1 for a negative one.
    tests : tuple of TestResult
        The primary test first; empty when not testable.
    verdict : str
        ``"supported"`` (significant after Holm, in the claimed direction),
        ``"contradicted"`` (significant, opposite direction), ``"not supported"``
        (not significant) or ``"not testable"``.
    explanation : str
        One line in plain words with the primary estimate, its interval and p-value, or
        why the hypothesis could not be tested.
    alpha : float
        Significance level of the verdict (on Holm-adjusted p-values).
    """

    hypothesis: str
    claim: str
    expected_sign: int
    tests: tuple[TestResult, ...]
    verdict: str
    explanation: str
    alpha: float = 0.05

    @property
    def primary(self) -> TestResult | None:
        """The test the verdict rests on (None when not testable)."""
        return next((t for t in self.tests if t.primary), None)

    def to_frame(self) -> pd.DataFrame:
        """One row per test, with the hypothesis, its verdict and every number."""
        rows = [
            {"hypothesis": self.hypothesis, "claim": self.claim, **dataclasses.asdict(t), "verdict": self.verdict}
            for t in self.tests
        ]
        if not rows:
            rows = [{"hypothesis": self.hypothesis, "claim": self.claim, "method": "not testable", "verdict": self.verdict}]
        return pd.DataFrame(rows, columns=_TEST_COLUMNS)

    def summary(self) -> str:
        """The claim, the verdict line and one line per test."""
        lines = [f"{self.hypothesis}: {self.claim}", f"  {self.verdict}: {self.explanation}"]
        for t in self.tests:
            lines.append(
                f"  {'*' if t.primary else ' '} {t.method}: {t.estimate_name} = {_fmt(t.estimate)} "
                f"[{_fmt(t.ci_low)}, {_fmt(t.ci_high)}], {t.statistic_name} = {_fmt(t.statistic)}, "
                f"p = {_fmt_p(t.p_value)}, Holm p = {_fmt_p(t.p_holm)}, n = {t.n:,}"
            )
        return "\n".join(lines)


_TEST_COLUMNS = [
    "hypothesis",
    "claim",
    "method",
    "statistic_name",
    "statistic",
    "estimate_name",
    "estimate",
    "ci_low",
    "ci_high",
    "p_value",
    "p_holm",
    "n",
    "primary",
    "verdict",
]


def _fmt(value: float) -> str:
    if value is None or not np.isfinite(value):
        return "n/a"
    return f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def _fmt_p(p: float) -> str:
    if p is None or not np.isfinite(p):
        return "n/a"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def _verdict(expected_sign: int, test: TestResult, alpha: float) -> str:
    p = test.p_holm if np.isfinite(test.p_holm) else test.p_value
    if not np.isfinite(p) or p >= alpha:
        return "not supported"
    return "supported" if np.sign(test.estimate) == expected_sign else "contradicted"


_WORDS = {
    "H1": ("longer-lived customers bring more lifetime profit", "longer-lived customers bring less lifetime profit"),
    "H2": ("profit per period rises with tenure", "profit per period falls with tenure"),
    "H3": ("long-lived customers pay higher prices", "long-lived customers pay lower prices"),
    "H4": (
        "long-lived customers cost less to serve, as a share of revenue",
        "long-lived customers cost more to serve, as a share of revenue",
    ),
}


def _explain(hypothesis: str, verdict: str, test: TestResult) -> str:
    positive, negative = _WORDS[hypothesis]
    numbers = (
        f"{test.estimate_name} {_fmt(test.estimate)} (95% CI {_fmt(test.ci_low)} to {_fmt(test.ci_high)}), "
        f"Holm-adjusted p {_fmt_p(test.p_holm if np.isfinite(test.p_holm) else test.p_value)}, n = {test.n:,}"
    )
    if verdict == "supported":
        return f"{positive}: {numbers}."
    if verdict == "contradicted":
        return f"the opposite holds, {negative}: {numbers}."
    return f"no evidence that {positive}: {numbers}."


def _result(hypothesis: str, claim: str, sign: int, tests: list[TestResult], alpha: float) -> HypothesisResult:
    tests = _holm(tests)
    primary = next(t for t in tests if t.primary)
    verdict = _verdict(sign, primary, alpha)
    return HypothesisResult(hypothesis, claim, sign, tuple(tests), verdict, _explain(hypothesis, verdict, primary), alpha)


def _holm(tests: list[TestResult]) -> list[TestResult]:
    """Holm (1979) step-down adjustment of the p-values of ``tests``."""
    p = np.array([t.p_value for t in tests], dtype=float)
    adjusted = holm_adjust(p)
    return [dataclasses.replace(t, p_holm=float(a)) for t, a in zip(tests, adjusted)]


def holm_adjust(p_values: np.ndarray) -> np.ndarray:
    """Holm (1979) adjusted p-values: ``max_{j<=i} min(1, (m - j + 1) p_(j))`` in sorted order.

    Parameters
    ----------
    p_values : array
        Raw p-values; NaN entries are left NaN and do not count in the family.

    Returns
    -------
    ndarray
        Adjusted p-values in the original order.
    """
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = len(ok)
    if m == 0:
        return out
    order = ok[np.argsort(p[ok], kind="stable")]
    # Holm (1979): the j-th smallest p-value is multiplied by m - j + 1, then made monotone.
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out[order] = np.maximum.accumulate(scaled)
    return out


def _valid_pairs(x: pd.Series, y: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    frame = pd.concat([x.rename("x"), y.rename("y")], axis=1).dropna()
    return frame["x"].to_numpy(dtype=float), frame["y"].to_numpy(dtype=float)


def bootstrap_correlation_ci(
    x: np.ndarray, y: np.ndarray, *, method: str = "spearman", n_bootstrap: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of a Pearson or Spearman correlation.

    Customers are resampled with replacement ``n_bootstrap`` times (Efron & Tibshirani
    1993, ch. 13); ties in a resample get average ranks, as in ``scipy.stats.spearmanr``.

    Parameters
    ----------
    x, y : array
        Paired observations.
    method : {"spearman", "pearson"}
    n_bootstrap : int
        Resamples; 0 returns (NaN, NaN).
    seed : int
        Seed of the resampling, so that a report is reproducible.
    level : float
        Coverage of the interval.

    Returns
    -------
    tuple of float
        Lower and upper bound.
    """
    if n_bootstrap <= 0 or len(x) < 3:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    n = len(x)
    values = []
    chunk = max(1, 2_000_000 // n)
    for start in range(0, n_bootstrap, chunk):
        size = min(chunk, n_bootstrap - start)
        idx = rng.integers(0, n, size=(size, n))
        xs, ys = x[idx], y[idx]
        if method == "spearman":
            xs = stats.rankdata(xs, axis=1)
            ys = stats.rankdata(ys, axis=1)
        xs = xs - xs.mean(axis=1, keepdims=True)
        ys = ys - ys.mean(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            r = (xs * ys).sum(axis=1) / np.sqrt((xs**2).sum(axis=1) * (ys**2).sum(axis=1))
        values.append(r)
    r = np.concatenate(values)
    r = r[np.isfinite(r)]
    tail = (1 - level) / 2
    return float(np.quantile(r, tail)), float(np.quantile(r, 1 - tail))


def test_duration_profit(
    customers: pd.DataFrame, *, n_bootstrap: int = 1000, seed: int = 0, alpha: float = 0.05
) -> HypothesisResult:
    """H1: lifetime duration and lifetime profit are positively associated.

    Reinartz & Kumar (2000), H1. Tests: Spearman rank correlation (primary: robust to
    the skew of profit), Pearson correlation, both with percentile-bootstrap 95%
    intervals; OLS of profit on duration with HC3 heteroskedasticity-robust errors
    (MacKinnon & White 1985), controlling for the acquisition cohort.

    Parameters
    ----------
    customers : DataFrame
        Output of :func:`lifetime_profit` (``duration``, ``profit``, ``cohort``).
    n_bootstrap : int
        Bootstrap resamples for the correlation intervals (0: no interval).
    seed : int
        Bootstrap seed.
    alpha : float
        Significance level of the verdict.

    Returns
    -------
    HypothesisResult
    """
    import statsmodels.formula.api as smf

    _check_columns(customers, ("duration", "profit"), "customers")
    x, y = _valid_pairs(customers["duration"], customers["profit"])
    n = len(x)
    if n < 4:
        raise DataValidationError(f"customers: H1 needs at least 4 customers with a duration and a profit, got {n}.")
    tests = []
    for method, name, primary in (("spearman", "Spearman rank correlation", True), ("pearson", "Pearson correlation", False)):
        res = stats.spearmanr(x, y) if method == "spearman" else stats.pearsonr(x, y)
        r, p = float(res.statistic), float(res.pvalue)
        lo, hi = bootstrap_correlation_ci(x, y, method=method, n_bootstrap=n_bootstrap, seed=seed)
        # t statistic of a correlation: r sqrt((n - 2) / (1 - r^2)) (as scipy's p-value uses).
        t = r * math.sqrt((n - 2) / max(1e-300, 1 - r * r))
        tests.append(TestResult(name + " (bootstrap 95% CI)", "t", t, "rho" if method == "spearman" else "r", r, lo, hi, p, n, primary))

    data = customers[["duration", "profit"] + (["cohort"] if "cohort" in customers.columns else [])].dropna()
    cohorts = data["cohort"].nunique() if "cohort" in data.columns else 1
    formula = "profit ~ duration" + (" + C(cohort)" if cohorts > 1 else "")
    fit = smf.ols(formula, data=data).fit(cov_type="HC3")
    lo, hi = fit.conf_int(alpha=0.05).loc["duration"]
    tests.append(
        TestResult(
            "OLS profit ~ duration" + (" + cohort" if cohorts > 1 else "") + " (HC3 robust errors)",
            "z",
            float(fit.tvalues["duration"]),
            "profit per unit of duration",
            float(fit.params["duration"]),
            float(lo),
            float(hi),
            float(fit.pvalues["duration"]),
            int(fit.nobs),
        )
    )
    return _result("H1", "lifetime duration and lifetime profit are positively associated", +1, tests, alpha)


def fixed_effects_slope(panel: pd.DataFrame, *, y: str = "profit", x: str = "tenure_period", group: str = "customer_id") -> dict:
    """Within (fixed-effects) slope of ``y`` on ``x`` with cluster-robust errors by group.

    The slope equals OLS of ``y`` on ``x`` and one dummy per group (Frisch-Waugh-Lovell);
    the CR1 cluster-robust variance (Cameron & Miller 2015, section III) uses the same
    small-sample factor as statsmodels' ``cov_type="cluster"`` on that dummy regression,
    ``G/(G-1) * (N-1)/(N-K)`` with K = groups + 1.

    Parameters
    ----------
    panel : DataFrame
        Long format, one row per group and period.
    y, x, group : str
        Column names.

    Returns
    -------
    dict
        ``slope``, ``se``, ``t``, ``p_value`` (t with G - 1 degrees of freedom),
        ``ci_low``, ``ci_high``, ``n`` (rows), ``groups`` (groups with more than one row).
    """
    counts = panel.groupby(group, sort=False)[x].transform("size").to_numpy()
    data = panel.loc[counts > 1]
    if data.empty:
        raise DataValidationError(
            "panel: no customer has more than one tenure period, so profit cannot be compared across tenure; "
            "use a shorter tenure_period_days or a longer observation window."
        )
    g = pd.factorize(data[group].to_numpy())[0]
    G = int(g.max()) + 1
    xv = data[x].to_numpy(dtype=float)
    yv = data[y].to_numpy(dtype=float)
    n_g = np.bincount(g, minlength=G)
    xd = xv - (np.bincount(g, weights=xv, minlength=G) / n_g)[g]
    yd = yv - (np.bincount(g, weights=yv, minlength=G) / n_g)[g]
    sxx = float(xd @ xd)
    if sxx == 0:
        raise DataValidationError("panel: tenure does not vary within any customer; the fixed-effects slope is undefined.")
    slope = float(xd @ yd) / sxx
    resid = yd - slope * xd
    score = np.bincount(g, weights=xd * resid, minlength=G)
    N, K = len(xv), G + 1
    factor = G / (G - 1) * (N - 1) / (N - K) if G > 1 and N > K else float("nan")
    se = math.sqrt(factor * float(score @ score)) / sxx
    t = slope / se if se > 0 else float("nan")
    df = max(G - 1, 1)
    p = float(2 * stats.t.sf(abs(t), df)) if np.isfinite(t) else float("nan")
    q = float(stats.t.ppf(0.975, df))
    return {"slope": slope, "se": se, "t": t, "p_value": p, "ci_low": slope - q * se, "ci_high": slope + q * se, "n": N, "groups": G}


def customer_slopes(
    panel: pd.DataFrame, *, y: str = "profit", x: str = "tenure_period", group: str = "customer_id", min_periods: int = 2
) -> pd.Series:
    """Each customer's own OLS slope of ``y`` on ``x``, for customers with ``min_periods`` rows or more.

    Parameters
    ----------
    panel : DataFrame
        Long format, one row per customer and period.
    y, x, group : str
        Column names.
    min_periods : int
        Customers with fewer rows are left out.

    Returns
    -------
    Series
        Slope per customer, indexed by customer.
    """
    codes, groups = pd.factorize(panel[group].to_numpy())
    G = len(groups)
    xv = panel[x].to_numpy(dtype=float)
    yv = panel[y].to_numpy(dtype=float)
    n = np.bincount(codes, minlength=G)
    xd = xv - (np.bincount(codes, weights=xv, minlength=G) / n)[codes]
    yd = yv - (np.bincount(codes, weights=yv, minlength=G) / n)[codes]
    sxx = np.bincount(codes, weights=xd * xd, minlength=G)
    sxy = np.bincount(codes, weights=xd * yd, minlength=G)
    ok = (sxx > 0) & (n >= min_periods)
    return pd.Series(sxy[ok] / sxx[ok], index=pd.Index(groups[ok], name=group), name="slope")


def test_profit_tenure(panel: pd.DataFrame, *, alpha: float = 0.05) -> HypothesisResult:
    """H2: profit per period rises with tenure.

    Reinartz & Kumar (2000), H2. Primary test: the within-customer (fixed-effects)
    slope of profit per period on the tenure period, with errors clustered by customer;
    each customer is compared with itself, so the mix of long- and short-lived customers
    at each tenure does not create a trend. Second test: each customer's own OLS slope
    (customers with three periods or more), averaged and tested against 0 with a
    one-sample t-test (the summary-statistics approach, which weights customers
    equally instead of by their number of periods).

    Parameters
    ----------
    panel : DataFrame
        Output of :func:`tenure_panel`.
    alpha : float
        Significance level of the verdict.

    Returns
    -------
    HypothesisResult
    """
    _check_columns(panel, ("customer_id", "tenure_period", "profit"), "panel")
    fe = fixed_effects_slope(panel)
    tests = [
        TestResult(
            "fixed-effects regression profit ~ tenure + customer (errors clustered by customer)",
            "t",
            fe["t"],
            "profit change per tenure period",
            fe["slope"],
            fe["ci_low"],
            fe["ci_high"],
            fe["p_value"],
            int(fe["n"]),
            primary=True,
        )
    ]
    # A two-period slope is a single noisy difference; with them the t-test of the mean
    # slope over-rejects (6% at 5% in tests/test_loyalty_simulation.py), so they are left out.
    slopes = customer_slopes(panel, min_periods=3)
    mean_test = stats.ttest_1samp(slopes, 0.0)
    ci = mean_test.confidence_interval(0.95)
    tests.append(
        TestResult(
            "one-sample t-test of each customer's own profit-on-tenure slope",
            "t",
            float(mean_test.statistic),
            "mean of the customers' slopes",
            float(slopes.mean()),
            float(ci.low),
            float(ci.high),
            float(mean_test.pvalue),
            len(slopes),
        )
    )
    return _result("H2", "profit per period rises with tenure", +1, tests, alpha)


def _two_group_tests(long: np.ndarray, short: np.ndarray, what: str, unit: str) -> list[TestResult]:
    welch = stats.ttest_ind(long, short, equal_var=False)
    ci = welch.confidence_interval(0.95)
    mw = stats.mannwhitneyu(long, short, alternative="two-sided")
    n1, n2 = len(long), len(short)
    auc = float(mw.statistic) / (n1 * n2)
    # Hanley & McNeil (1982): standard error of the area under the ROC curve, which is
    # P(long > short) + ties / 2 = U / (n1 n2).
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    se = math.sqrt(max(0.0, (auc * (1 - auc) + (n1 - 1) * (q1 - auc**2) + (n2 - 1) * (q2 - auc**2)) / (n1 * n2)))
    return [
        TestResult(
            "Welch t-test",
            "t",
            float(welch.statistic),
            f"difference in mean {what} (long - short){unit}",
            float(long.mean() - short.mean()),
            float(ci.low),
            float(ci.high),
            float(welch.pvalue),
            n1 + n2,
            primary=True,
        ),
        TestResult(
            "Mann-Whitney U test",
            "U",
            float(mw.statistic),
            f"P({what} of a long-lived > a short-lived customer) - 0.5",
            auc - 0.5,
            auc - 0.5 - 1.96 * se,
            auc - 0.5 + 1.96 * se,
            float(mw.pvalue),
            n1 + n2,
        ),
    ]


def long_lived(customers: pd.DataFrame, *, duration_split: float | None = None, duration_quantile: float = 0.5) -> pd.Series:
    """Whether each customer is long-lived: duration above the split point.

    The split point is ``duration_split`` (in the duration's unit) when given, else the
    ``duration_quantile`` of the durations (the median by default). Customers exactly
    at the split are short-lived.
    """
    cut = _split_value(customers["duration"], duration_split, duration_quantile, "duration")
    return (customers["duration"] > cut).rename("long_lived")


def _split_value(values: pd.Series, split: float | None, quantile: float, name: str) -> float:
    if split is not None:
        return float(split)
    if not 0.0 < quantile < 1.0:
        raise ParamsError(f"{name}_quantile={quantile!r} must be strictly between 0 and 1 (0.5 = median); fix it in params.")
    return float(values.quantile(quantile))


def _groups(customers: pd.DataFrame, column: str, long: pd.Series, hypothesis: str) -> tuple[np.ndarray, np.ndarray]:
    values = customers[column]
    ok = values.notna()
    a = values[ok & long].to_numpy(dtype=float)
    b = values[ok & ~long].to_numpy(dtype=float)
    if len(a) < 2 or len(b) < 2:
        raise DataValidationError(
            f"customers: {hypothesis} needs at least 2 long- and 2 short-lived customers with a {column}, got "
            f"{len(a)} long and {len(b)} short; change the duration split in params."
        )
    return a, b


def test_price(
    customers: pd.DataFrame,
    *,
    duration_split: float | None = None,
    duration_quantile: float = 0.5,
    currency: str = "USD",
    alpha: float = 0.05,
) -> HypothesisResult:
    """H3: long-lived customers pay higher prices.

    Reinartz & Kumar (2000), H3. Price is revenue per unit when the log has a quantity,
    else revenue per order. Long- versus short-lived customers: Welch t-test of the
    mean (primary, with the difference and its 95% interval) and Mann-Whitney U test
    (with P(long > short) - 0.5 and its Hanley-McNeil interval).

    Parameters
    ----------
    customers : DataFrame
        Output of :func:`lifetime_profit` (``duration``, ``price``).
    duration_split, duration_quantile
        As in :func:`long_lived`.
    currency : str
        Shown in the estimate's name.
    alpha : float
        Significance level of the verdict.

    Returns
    -------
    HypothesisResult
    """
    _check_columns(customers, ("duration", "price"), "customers")
    long = long_lived(customers, duration_split=duration_split, duration_quantile=duration_quantile)
    per = "unit" if "units" in customers.columns and customers["units"].notna().any() else "order"
    a, b = _groups(customers, "price", long, "H3")
    tests = _two_group_tests(a, b, f"price per {per}", f", {currency}")
    return _result("H3", f"long-lived customers pay higher prices (revenue per {per})", +1, tests, alpha)


def test_cost_share(
    customers: pd.DataFrame,
    *,
    duration_split: float | None = None,
    duration_quantile: float = 0.5,
    alpha: float = 0.05,
) -> HypothesisResult:
    """H4: long-lived customers cost less to serve, as a share of revenue.

    Reinartz & Kumar (2000), H4. Cost share = cost to serve / revenue per customer; long-
    versus short-lived: Welch t-test (primary) and Mann-Whitney U test. Not testable when
    the log has no ``cost`` column and no ``cost_per_order`` was given: the result then
    says so, with no test.

    Parameters
    ----------
    customers : DataFrame
        Output of :func:`lifetime_profit` (``duration``, ``cost_share``, ``cost_source``).
    duration_split, duration_quantile
        As in :func:`long_lived`.
    alpha : float
        Significance level of the verdict.

    Returns
    -------
    HypothesisResult
    """
    claim = "long-lived customers cost less to serve, as a share of revenue"
    _check_columns(customers, ("duration", "cost_share", "cost_source"), "customers")
    source = customers["cost_source"].iloc[0]
    if source == "none":
        return HypothesisResult(
            "H4",
            claim,
            -1,
            (),
            "not testable",
            "the data have no cost column and no cost_per_order is set in the params, so every customer's cost to "
            "serve is unknown (taken as 0); add a cost column to the log or set cost_per_order to test H4.",
            alpha,
        )
    long = long_lived(customers, duration_split=duration_split, duration_quantile=duration_quantile)
    a, b = _groups(customers, "cost_share", long, "H4")
    tests = _two_group_tests(a, b, "cost share of revenue", "")
    result = _result("H4", claim, -1, tests, alpha)
    if source == "cost per order":
        result = dataclasses.replace(
            result,
            explanation=result.explanation
            + " The cost is one assumed amount per order, so this compares order values, not measured costs.",
        )
    return result


@dataclass(frozen=True)
class HypothesisTests:
    """The four hypotheses with Holm-adjusted p-values across the whole family.

    Attributes
    ----------
    hypotheses : tuple of HypothesisResult
        H1 to H4, each with its tests and verdict.
    alpha : float
        Significance level of the verdicts.
    """

    hypotheses: tuple[HypothesisResult, ...]
    alpha: float = 0.05

    def __getitem__(self, name: str) -> HypothesisResult:
        return next(h for h in self.hypotheses if h.hypothesis == name)

    def verdicts(self) -> pd.DataFrame:
        """One row per hypothesis: claim, verdict and the plain-words line."""
        return pd.DataFrame(
            [{"hypothesis": h.hypothesis, "claim": h.claim, "verdict": h.verdict, "explanation": h.explanation} for h in self.hypotheses]
        ).set_index("hypothesis")

    def to_frame(self) -> pd.DataFrame:
        """One row per test of every hypothesis (primary tests flagged)."""
        return pd.concat([h.to_frame() for h in self.hypotheses], ignore_index=True)

    def summary(self) -> str:
        """Every hypothesis with its verdict and tests."""
        return "\n\n".join(h.summary() for h in self.hypotheses)


def test_hypotheses(
    customers: pd.DataFrame,
    panel: pd.DataFrame,
    *,
    duration_split: float | None = None,
    duration_quantile: float = 0.5,
    currency: str = "USD",
    n_bootstrap: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> HypothesisTests:
    """Test H1 to H4 and adjust all their p-values together (Holm 1979).

    The family is every test reported (the primary and the secondary tests of every
    testable hypothesis), so the chance of any false "supported" or "contradicted"
    verdict in the report stays at or below ``alpha``.

    Parameters
    ----------
    customers : DataFrame
        Output of :func:`lifetime_profit`.
    panel : DataFrame
        Output of :func:`tenure_panel`.
    duration_split, duration_quantile
        Long- versus short-lived split, as in :func:`long_lived`.
    currency : str
        Currency of amounts, for the estimates' names.
    n_bootstrap, seed : int
        Bootstrap of the H1 correlation intervals.
    alpha : float
        Significance level of the verdicts.

    Returns
    -------
    HypothesisTests
    """
    results = [
        test_duration_profit(customers, n_bootstrap=n_bootstrap, seed=seed, alpha=alpha),
        test_profit_tenure(panel, alpha=alpha),
        test_price(customers, duration_split=duration_split, duration_quantile=duration_quantile, currency=currency, alpha=alpha),
        test_cost_share(customers, duration_split=duration_split, duration_quantile=duration_quantile, alpha=alpha),
    ]
    all_tests = [t for h in results for t in h.tests]
    adjusted = iter(holm_adjust(np.array([t.p_value for t in all_tests])))
    final = []
    for h in results:
        if not h.tests:
            final.append(h)
            continue
        tests = tuple(dataclasses.replace(t, p_holm=float(next(adjusted))) for t in h.tests)
        primary = next(t for t in tests if t.primary)
        verdict = _verdict(h.expected_sign, primary, alpha)
        explanation = _explain(h.hypothesis, verdict, primary)
        if h.hypothesis == "H4" and customers["cost_source"].iloc[0] == "cost per order":
            explanation += " The cost is one assumed amount per order, so this compares order values, not measured costs."
        final.append(dataclasses.replace(h, tests=tests, verdict=verdict, explanation=explanation))
    return HypothesisTests(tuple(final), alpha)


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


# ---------------------------------------------------------------------------------------
# 3. The loyalty-profit matrix
# ---------------------------------------------------------------------------------------


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

    def to_frame(self) -> pd.DataFrame:
        """The cell table."""
        return self.table.copy()

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
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoyaltyAnalysis:
    """Everything the loyalty-versus-profit report shows, for one set of choices.

    Attributes
    ----------
    customers : DataFrame
        Per-customer lifetime, revenue, cost, profit, price, cost share and segment.
    panel : DataFrame
        Profit per customer and tenure period while alive.
    tests : HypothesisTests
        H1 to H4 with verdicts.
    matrix : LoyaltyMatrix
        The loyalty-profit matrix.
    settings : dict
        The choices: threshold, crossing rule, splits, margin, cost, model name.
    """

    customers: pd.DataFrame
    panel: pd.DataFrame
    tests: HypothesisTests
    matrix: LoyaltyMatrix
    settings: dict

    def summary(self) -> str:
        """Settings, lifetimes, verdicts and the matrix."""
        censored = self.customers["censored"].mean()
        head = (
            f"Loyalty versus profit: {len(self.customers):,} customers, model {self.settings.get('model', '?')}, "
            f"P(alive) threshold {self.settings['p_alive_threshold']}, {censored:.0%} of lifetimes censored"
        )
        return "\n\n".join([head, self.tests.summary(), self.matrix.summary()])

    def to_frame(self) -> pd.DataFrame:
        """The per-customer table."""
        return self.customers.copy()


def loyalty_analysis(
    transactions: pd.DataFrame,
    model: Any,
    *,
    model_name: str = "Pareto/NBD",
    p_alive_threshold: float = 0.5,
    time_unit: str = "D",
    observation_end: str | pd.Timestamp | None = None,
    crossing: str = "last",
    gross_margin: float = 1.0,
    cost_per_order: float | None = None,
    duration_split: float | None = None,
    duration_quantile: float = 0.5,
    profit_split: float | None = None,
    profit_quantile: float = 0.5,
    tenure_period_days: int = 30,
    panel_end: str = "lifetime_end",
    cohort_freq: str = "M",
    currency: str = "USD",
    n_bootstrap: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> LoyaltyAnalysis:
    """Lifetimes, profits, H1-H4 and the loyalty-profit matrix in one call.

    Parameters
    ----------
    transactions : DataFrame
        Canonical log.
    model : fitted model
        With ``conditional_probability_alive`` (see :func:`lifetime_durations`).
    model_name : str
        Shown in the settings and the robustness table.
    p_alive_threshold, time_unit, observation_end, crossing, cohort_freq
        See :func:`lifetime_durations`.
    gross_margin, cost_per_order
        See :func:`lifetime_profit`.
    duration_split, duration_quantile, profit_split, profit_quantile
        See :func:`loyalty_profit_matrix`; the duration split also defines long- and
        short-lived customers in H3 and H4.
    tenure_period_days : int
        Period length of the H2 panel.
    panel_end : {"lifetime_end", "last_purchase"}
        Where each customer's H2 panel stops (see :func:`tenure_panel`).
    currency : str
        Currency of the amounts.
    n_bootstrap, seed, alpha
        See :func:`test_hypotheses`.

    Returns
    -------
    LoyaltyAnalysis
    """
    durations = lifetime_durations(
        transactions,
        model,
        p_alive_threshold=p_alive_threshold,
        time_unit=time_unit,
        observation_end=observation_end,
        crossing=crossing,
        cohort_freq=cohort_freq,
    )
    customers = lifetime_profit(transactions, durations, gross_margin=gross_margin, cost_per_order=cost_per_order)
    panel = tenure_panel(
        transactions,
        customers,
        gross_margin=gross_margin,
        cost_per_order=cost_per_order,
        period_days=tenure_period_days,
        panel_end=panel_end,
    )
    tests = test_hypotheses(
        customers,
        panel,
        duration_split=duration_split,
        duration_quantile=duration_quantile,
        currency=currency,
        n_bootstrap=n_bootstrap,
        seed=seed,
        alpha=alpha,
    )
    matrix = loyalty_profit_matrix(
        customers,
        duration_split=duration_split,
        duration_quantile=duration_quantile,
        profit_split=profit_split,
        profit_quantile=profit_quantile,
    )
    customers = customers.assign(segment=matrix.segment)
    settings = {
        "model": model_name,
        "p_alive_threshold": p_alive_threshold,
        "crossing": crossing,
        "time_unit": time_unit,
        "duration_cut": matrix.duration_cut,
        "profit_cut": matrix.profit_cut,
        "gross_margin": gross_margin,
        "cost_per_order": cost_per_order,
        "cost_source": customers["cost_source"].iloc[0],
        "tenure_period_days": tenure_period_days,
        "panel_end": panel_end,
    }
    return LoyaltyAnalysis(customers, panel, tests, matrix, settings)


def robustness_table(
    transactions: pd.DataFrame,
    models: Mapping[str, Any],
    *,
    baseline_model: str | None = None,
    thresholds: tuple[float, ...] = (0.3, 0.7),
    split_quantiles: tuple[float, ...] = (1 / 3, 2 / 3),
    crossings: tuple[str, ...] = ("first",),
    panel_ends: tuple[str, ...] = ("last_purchase",),
    p_alive_threshold: float = 0.5,
    duration_quantile: float = 0.5,
    profit_quantile: float = 0.5,
    crossing: str = "last",
    panel_end: str = "lifetime_end",
    n_bootstrap: int = 0,
    **settings: Any,
) -> pd.DataFrame:
    """The verdicts again with one choice changed at a time.

    Rows: the baseline (first model in ``models``, the given threshold, split quantiles,
    crossing rule and H2 panel end), then each other threshold, each other split
    quantile (applied to both duration and profit), each other crossing rule, each other
    H2 panel end, and each other model. A reviewer
    reads down a column to see whether a verdict depends on a choice.

    Parameters
    ----------
    transactions : DataFrame
        Canonical log.
    models : mapping of str to fitted model
        E.g. ``{"Pareto/NBD": pnbd, "BG/NBD": bgnbd}``; the first (or
        ``baseline_model``) is the baseline.
    thresholds, split_quantiles, crossings, panel_ends : tuples
        The alternatives tried.
    p_alive_threshold, duration_quantile, profit_quantile, crossing, panel_end
        The baseline choices.
    n_bootstrap : int
        Bootstrap resamples for H1 intervals (0 by default: verdicts rest on p-values).
    **settings
        Passed to :func:`loyalty_analysis` (``time_unit``, ``gross_margin``,
        ``cost_per_order``, ``observation_end``, ...).

    Returns
    -------
    DataFrame
        One row per variant: ``variant``, ``changed`` (which choice), the verdict of
        H1-H4, the primary estimates of H1 (rho), H2 (slope) and H3, the matrix shares and Cramer's V,
        the share of censored lifetimes and the median duration.
    """
    if not models:
        raise ParamsError("robustness_table needs at least one fitted model, e.g. {'Pareto/NBD': model}.")
    base_name = baseline_model or next(iter(models))
    base = {
        "model": base_name,
        "p_alive_threshold": p_alive_threshold,
        "duration_quantile": duration_quantile,
        "profit_quantile": profit_quantile,
        "crossing": crossing,
        "panel_end": panel_end,
    }
    variants = [("baseline", "none", base)]
    variants += [(f"P(alive) threshold {t:g}", "threshold", {**base, "p_alive_threshold": t}) for t in thresholds if t != p_alive_threshold]
    variants += [
        (f"splits at the {q:.0%} quantile", "split point", {**base, "duration_quantile": q, "profit_quantile": q})
        for q in split_quantiles
        if q != duration_quantile
    ]
    variants += [(f"crossing rule '{c}'", "crossing rule", {**base, "crossing": c}) for c in crossings if c != crossing]
    variants += [
        (f"H2 panel up to the {e.replace('_', ' ')}", "H2 panel end", {**base, "panel_end": e})
        for e in panel_ends
        if e != panel_end
    ]
    variants += [(f"model {m}", "model", {**base, "model": m}) for m in models if m != base_name]
    rows = []
    for label, changed, choice in variants:
        analysis = loyalty_analysis(
            transactions,
            models[choice["model"]],
            model_name=choice["model"],
            p_alive_threshold=choice["p_alive_threshold"],
            duration_quantile=choice["duration_quantile"],
            profit_quantile=choice["profit_quantile"],
            crossing=choice["crossing"],
            panel_end=choice["panel_end"],
            n_bootstrap=n_bootstrap,
            **settings,
        )
        verdicts = {h.hypothesis: h.verdict for h in analysis.tests.hypotheses}
        m = analysis.matrix
        rows.append(
            {
                "variant": label,
                "changed": changed,
                **{f"{k} verdict": v for k, v in verdicts.items()},
                "H1 rho": analysis.tests["H1"].primary.estimate,
                "H2 slope": analysis.tests["H2"].primary.estimate,
                "H3 price difference": analysis.tests["H3"].primary.estimate,
                "long-lived with low profit": m.share_long_low_profit,
                "high-profit that are short-lived": m.share_high_profit_short,
                "Cramer's V": m.cramers_v,
                "censored lifetimes": float(analysis.customers["censored"].mean()),
                "median duration": float(analysis.customers["duration"].median()),
            }
        )
    return pd.DataFrame(rows).set_index("variant")


# ---------------------------------------------------------------------------------------
# Simulated logs where the truth is known
# ---------------------------------------------------------------------------------------


def simulate_loyalty_log(
    n_customers: int = 500,
    *,
    seed: int = 0,
    observation_days: int = 540,
    acquisition_days: int = 90,
    r: float = 0.8,
    alpha: float = 25.0,
    s: float = 0.6,
    beta: float = 120.0,
    mean_order_value: float = 40.0,
    order_value_cv: float = 0.5,
    within_customer_cv: float = 0.1,
    price_lift_per_year: float = 0.0,
    start: str = "2020-01-01",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A transaction log from the Pareto/NBD process with a known link of price and lifetime.

    Each customer arrives uniformly in the first ``acquisition_days``, buys at once and
    then as a Poisson process with rate lambda ~ Gamma(r, alpha) per day until an
    exponential dropout time with rate mu ~ Gamma(s, beta) per day (Schmittlein,
    Morrison & Colombo 1987; gamma shape and rate as in Fader, Hardie & Lee 2005, so
    ``ParetoNBDFitter`` with ``params_ = (r, alpha, s, beta)`` is the true model in
    days). Each customer has a gamma-distributed
    typical order value (mean ``mean_order_value``, coefficient of variation
    ``order_value_cv``); orders vary around it by ``within_customer_cv``.

    With ``price_lift_per_year = 0`` order values are independent of the lifetime: H3
    (price) and H4 (cost share under a constant cost per order) are then true nulls.
    A positive ``price_lift_per_year`` plants the loyalty effect: a customer's typical
    order value is multiplied by ``1 + lift * years alive inside the window``.

    Parameters
    ----------
    n_customers : int
    seed : int
    observation_days, acquisition_days : int
    r, alpha, s, beta : float
        Pareto/NBD parameters (rates per day).
    mean_order_value, order_value_cv, within_customer_cv : float
    price_lift_per_year : float
    start : str
        First day of the window.

    Returns
    -------
    transactions : DataFrame
        Canonical columns ``customer_id``, ``date``, ``amount``, ``quantity`` (1).
    truth : DataFrame
        Per customer: ``true_lifetime_days`` (uncensored), ``days_alive_in_window``,
        ``typical_order_value``.
    """
    rng = np.random.default_rng(seed)
    arrival = rng.integers(0, acquisition_days, n_customers)
    purchase_rate = rng.gamma(r, 1 / alpha, n_customers)
    lifetime = rng.exponential(1 / rng.gamma(s, 1 / beta, n_customers))
    shape = 1 / order_value_cv**2
    # Purchases after the first: Poisson counts over the active part of the window,
    # uniform times within it (the order statistics of a Poisson process).
    active = np.minimum(lifetime, observation_days - 1 - arrival)
    value = rng.gamma(shape, mean_order_value / shape, n_customers) * (1 + price_lift_per_year * active / 365.25)
    counts = rng.poisson(purchase_rate * active)
    who = np.repeat(np.arange(n_customers), counts)
    offsets = rng.uniform(0, 1, counts.sum()) * active[who]
    customer = np.r_[np.arange(n_customers), who]
    day = np.r_[arrival, arrival[who] + np.floor(offsets).astype(int)]
    noise_shape = 1 / within_customer_cv**2
    amount = value[customer] * rng.gamma(noise_shape, 1 / noise_shape, len(customer))
    ids = np.char.add("c", np.char.zfill(customer.astype(str), 5))
    transactions = (
        pd.DataFrame(
            {
                "customer_id": ids,
                "date": pd.Timestamp(start) + pd.to_timedelta(day, unit="D"),
                "amount": np.round(amount, 2),
                "quantity": 1.0,
            }
        )
        .sort_values(["customer_id", "date"], kind="stable")
        .reset_index(drop=True)
    )
    truth = pd.DataFrame(
        {"true_lifetime_days": lifetime, "days_alive_in_window": active, "typical_order_value": value},
        index=pd.Index(np.char.add("c", np.char.zfill(np.arange(n_customers).astype(str), 5)), name="customer_id"),
    )
    return transactions, truth


# ---------------------------------------------------------------------------------------
# Tables for people
# ---------------------------------------------------------------------------------------


def verdict_stability(robustness: pd.DataFrame) -> pd.DataFrame:
    """Whether each hypothesis' verdict survives the changes of the robustness table.

    Parameters
    ----------
    robustness : DataFrame
        Output of :func:`robustness_table` (first row: the baseline).

    Returns
    -------
    DataFrame
        One row per hypothesis: ``baseline verdict``, ``variants agreeing`` (as "k of
        n"), ``share agreeing`` and ``differs under`` (the variants that change it, with
        their verdict).
    """
    columns = [c for c in robustness.columns if c.endswith(" verdict")]
    if not columns or "baseline" not in robustness.index:
        raise DataValidationError("robustness: expected robustness_table output with a 'baseline' row and verdict columns.")
    others = robustness.drop(index="baseline")
    rows = []
    for column in columns:
        base = robustness.loc["baseline", column]
        differ = others[others[column] != base]
        rows.append(
            {
                "hypothesis": column.removesuffix(" verdict"),
                "baseline verdict": base,
                "variants agreeing": f"{len(others) - len(differ)} of {len(others)}",
                "share agreeing": (len(others) - len(differ)) / len(others) if len(others) else float("nan"),
                "differs under": "; ".join(f"{name}: {verdict}" for name, verdict in differ[column].items()) or "none",
            }
        )
    return pd.DataFrame(rows).set_index("hypothesis")


def format_tests(tests: HypothesisTests) -> pd.DataFrame:
    """:meth:`HypothesisTests.to_frame` for reading: rounded numbers, p-values as text.

    Parameters
    ----------
    tests : HypothesisTests

    Returns
    -------
    DataFrame
        One row per test: hypothesis, test (``*`` marks the primary one), estimate with
        its 95% interval, statistic, p, Holm-adjusted p, n and the verdict.
    """
    frame = tests.to_frame()
    out = pd.DataFrame(
        {
            "hypothesis": frame["hypothesis"],
            "test": np.where(frame["primary"].fillna(False).astype(bool), "* ", "  ") + frame["method"].astype(str),
            "estimate": [
                "" if pd.isna(v) else f"{name} = {_fmt(v)}" for name, v in zip(frame["estimate_name"], frame["estimate"])
            ],
            "95% CI": [
                "" if pd.isna(lo) else f"{_fmt(lo)} to {_fmt(hi)}" for lo, hi in zip(frame["ci_low"], frame["ci_high"])
            ],
            "statistic": [
                "" if pd.isna(v) else f"{name} = {_fmt(v)}" for name, v in zip(frame["statistic_name"], frame["statistic"])
            ],
            "p": [_fmt_p(p) if pd.notna(p) else "" for p in frame["p_value"]],
            "Holm p": [_fmt_p(p) if pd.notna(p) else "" for p in frame["p_holm"]],
            "n": ["" if pd.isna(n) else f"{int(n):,}" for n in frame["n"]],
            "verdict": frame["verdict"],
        }
    )
    return out.set_index(["hypothesis", "test"])


def format_customers(customers: pd.DataFrame, currency: str = "USD", time_unit: str = "D") -> pd.DataFrame:
    """The per-customer table with readable names, units and rounding.

    Parameters
    ----------
    customers : DataFrame
        ``LoyaltyAnalysis.customers``.
    currency : str
    time_unit : {"D", "W", "h"}

    Returns
    -------
    DataFrame
        First purchase, lifetime end, duration, censored, orders, revenue, cost, profit,
        price, cost share and cell, as text.
    """
    unit = {"D": "days", "W": "weeks", "h": "hours"}[time_unit]
    out = pd.DataFrame(index=customers.index)
    out["first purchase"] = customers["first_purchase"].dt.strftime("%Y-%m-%d")
    out["lifetime end"] = customers["lifetime_end"].dt.strftime("%Y-%m-%d")
    out[f"duration ({unit})"] = customers["duration"].map("{:,.0f}".format)
    out["censored"] = np.where(customers["censored"], "yes", "")
    out["orders"] = customers["orders"].map("{:,}".format)
    for column in ("revenue", "cost", "profit", "price"):
        out[f"{column} ({currency})"] = customers[column].map(lambda v: "" if pd.isna(v) else f"{v:,.2f}")
    out["cost share"] = customers["cost_share"].map(lambda v: "" if pd.isna(v) else f"{v:.1%}")
    if "segment" in customers.columns:
        out["cell"] = customers["segment"]
    return out


def format_matrix(matrix: LoyaltyMatrix, currency: str = "USD") -> pd.DataFrame:
    """The cells of the loyalty-profit matrix with percentages and the treatment."""
    table = matrix.table
    return pd.DataFrame(
        {
            "lifetime": table["duration"],
            "profit": table["profit"],
            "customers": table["customers"].map("{:,}".format),
            "share of customers": table["share_of_customers"].map("{:.1%}".format),
            "share of revenue": table["revenue_share"].map("{:.1%}".format),
            "share of profit": table["profit_share"].map("{:.1%}".format),
            f"mean profit ({currency})": table["mean_profit"].map("{:,.2f}".format),
            "recommended treatment": table["treatment"],
        },
        index=table.index,
    )


def format_robustness(robustness: pd.DataFrame) -> pd.DataFrame:
    """:func:`robustness_table` for reading: shares as percentages, estimates rounded."""
    out = robustness.copy()
    for column in out.columns:
        if column in ("long-lived with low profit", "high-profit that are short-lived", "censored lifetimes"):
            out[column] = robustness[column].map("{:.0%}".format)
        elif column in ("H1 rho", "H2 slope", "H3 price difference", "Cramer's V"):
            out[column] = robustness[column].map("{:+.3f}".format if column != "Cramer's V" else "{:.2f}".format)
        elif column == "median duration":
            out[column] = robustness[column].map("{:,.0f}".format)
    return out


def conclusion(analysis: LoyaltyAnalysis, stability: pd.DataFrame | None = None) -> str:
    """The answer in words: which beliefs hold, the two shares of the matrix, what is fragile.

    Parameters
    ----------
    analysis : LoyaltyAnalysis
        The baseline analysis.
    stability : DataFrame, optional
        Output of :func:`verdict_stability`, to name the verdicts that depend on a choice.

    Returns
    -------
    str
        A short paragraph (Markdown).
    """
    verdicts = analysis.tests.verdicts()["verdict"]
    held = [h for h, v in verdicts.items() if v == "supported"]
    failed = [h for h, v in verdicts.items() if v in ("not supported", "contradicted")]
    untested = [h for h, v in verdicts.items() if v == "not testable"]
    m = analysis.matrix
    text = (
        f"On this log, **{len(held)} of {len(verdicts) - len(untested)} testable loyalty beliefs hold** "
        f"({', '.join(held) or 'none'})"
        + (f"; {', '.join(failed)} {'does' if len(failed) == 1 else 'do'} not. " if failed else ". ")
        + (f"{', '.join(untested)} could not be tested. " if untested else "")
        + f"Not all loyal customers are profitable: **{m.share_long_low_profit:.0%}** of the long-lived customers are "
        f"in the low-profit group; and not all profitable customers are loyal: **{m.share_high_profit_short:.0%}** of "
        "the high-profit customers are short-lived."
    )
    if stability is not None:
        fragile = [h for h, row in stability.iterrows() if row["differs under"] != "none"]
        text += (
            f" The verdicts of {', '.join(fragile)} change with at least one analysis choice (robustness table): "
            "read them with care."
            if fragile
            else " No verdict changes with the analysis choices of the robustness table."
        )
    return text


# The hypothesis tests are named like scipy's (ttest_ind): keep pytest from collecting
# them when a test module imports them by name.
for _name in ("test_duration_profit", "test_profit_tenure", "test_price", "test_cost_share", "test_hypotheses"):
    globals()[_name].__test__ = False
TestResult.__test__ = False
del _name
