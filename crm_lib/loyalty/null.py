"""The statistics of the loyalty battery on the log and on bases with no loyalty effect.

A *base* is a set of orders of known customers: the observed log, or ``n_draws`` bases
simulated from the fitted Pareto/NBD and Gamma-Gamma with the same customers, the same
first-purchase dates and the same observation end (the stationary null of issue 15,
:func:`crm_lib.simulate.simulate_loyalty_orders`). :func:`base_statistics` runs one
pipeline on either, vectorised across draws: lifetimes from P(alive), lifetime profit,
the censoring rule, then the statistic of each hypothesis and of the matrix. The observed
statistics come out of the same code as the null ones, so the comparison is like with
like (and tests/test_loyalty_calibration.py checks that it equals the public functions of
:mod:`crm_lib.loyalty.lifetime` on a log).

Nothing is refitted per draw: the null draws are simulated from the fitted parameters
(a parametric bootstrap with the parameters held at their estimates; the size study in
validation/loyalty_size_power.py measures what that costs).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from crm_lib.exceptions import DataValidationError, ParamsError
from crm_lib.loyalty.lifetime import (
    DAYS_PER_UNIT,
    _check_columns,
    _check_money_params,
    _check_threshold,
    _first_crossing,
    check_lifetime_model,
)
from crm_lib.simulate import _loyalty_order_arrays
from crm_lib.summary import period_numbers

logger = logging.getLogger(__name__)

#: Statistic of each hypothesis, as columns of :func:`base_statistics`.
#: H3 and H4 compare ranks (P(long-lived > short-lived) - 0.5), not means: a mean of
#: cost / order value has a heavy tail whose spread in the null depends on the fitted
#: Gamma-Gamma shape, and the mean difference rejected 8.2% +- 1.2% of 500 stationary logs of
#: 2,000 customers at 5% (validation/loyalty_size_power.py); ranks do not depend on that tail.
STATISTICS = {"H1": "rho", "H2": "slope", "H3": "price_auc", "H4": "cost_share_auc", "M": "phi"}
CELL_COLUMNS = ["share strangers", "share butterflies", "share true friends", "share barnacles"]
#: Observed orders among which a simulated order takes its quantity and cost (the nearest amounts).
DONOR_NEIGHBOURS = 10


@dataclass(frozen=True)
class NullBase:
    """Orders of ``n_customers`` known customers in ``n_draws`` bases, as arrays.

    Attributes
    ----------
    customers : Index
        Customer ids (sorted), position = customer code.
    first_day : ndarray
        Calendar day number (days since 1970-01-01) of each customer's first purchase.
    end_day : int
        Calendar day number of the observation end.
    draw, customer, day : ndarray
        Per order: base, customer code, whole days since the customer's first purchase;
        sorted by draw, customer and day.
    amount : ndarray
        Per order amount.
    units : ndarray or None
        Per order quantity (None: price is per order).
    cost : ndarray or None
        Per order cost to serve (None: ``cost_per_order`` of the settings, or nothing).
    n_draws : int
    """

    customers: pd.Index
    first_day: np.ndarray
    end_day: int
    draw: np.ndarray
    customer: np.ndarray
    day: np.ndarray
    amount: np.ndarray
    units: np.ndarray | None
    cost: np.ndarray | None
    n_draws: int

    @property
    def n_customers(self) -> int:
        return len(self.customers)


def _check_unit(time_unit: str) -> None:
    if time_unit not in ("D", "W"):
        raise ParamsError(
            f"time_unit={time_unit!r}: the calibrated loyalty tests simulate whole days, so the lifetime model must "
            "be fitted in days ('D') or weeks ('W'); set time_unit in params."
        )


def _end_day(transactions: pd.DataFrame, observation_end) -> int:
    end = pd.to_datetime(transactions["date"]).max() if observation_end is None else pd.Timestamp(observation_end)
    return int(np.datetime64(end.normalize(), "D").astype(np.int64))


def observed_base(
    transactions: pd.DataFrame, *, observation_end: str | pd.Timestamp | None = None, time_unit: str = "D"
) -> NullBase:
    """The log as a :class:`NullBase` with one draw (orders after the observation end left out).

    Parameters
    ----------
    transactions : DataFrame
        Canonical log; ``quantity`` and ``cost`` are kept when present.
    observation_end : str or Timestamp, optional
        End of observation; the last transaction date by default.
    time_unit : {"D", "W"}
        Unit of the lifetime model.

    Returns
    -------
    NullBase
    """
    _check_columns(transactions, ("customer_id", "date", "amount"), "transactions")
    _check_unit(time_unit)
    end_day = _end_day(transactions, observation_end)
    days = pd.to_datetime(transactions["date"]).to_numpy().astype("datetime64[D]").astype(np.int64)
    inside = days <= end_day
    tx = transactions.loc[inside]
    days = days[inside]
    codes, customers = pd.factorize(tx["customer_id"].to_numpy(), sort=True)
    order = np.lexsort((days, codes))
    codes, days = codes[order], days[order]
    first_day = np.full(len(customers), np.iinfo(np.int64).max)
    np.minimum.at(first_day, codes, days)
    return NullBase(
        customers=pd.Index(customers, name="customer_id"),
        first_day=first_day,
        end_day=end_day,
        draw=np.zeros(len(codes), dtype=np.int32),
        customer=codes.astype(np.int32),
        day=days - first_day[codes],
        amount=tx["amount"].to_numpy(dtype=float)[order],
        units=tx["quantity"].to_numpy(dtype=float)[order] if "quantity" in tx.columns else None,
        cost=tx["cost"].to_numpy(dtype=float)[order] if "cost" in tx.columns else None,
        n_draws=1,
    )


def _donor_values(observed: NullBase, amounts: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Quantity and cost of simulated orders: those of an observed order with a near amount.

    Each simulated order takes the quantity (and cost, when the log has one) of one of the
    ``DONOR_NEIGHBOURS`` observed orders whose amounts are nearest, chosen at random. The
    pool mixes all customers and tenures, so the link of quantity and cost to the amount
    is kept and any link to tenure is broken, as the null requires.
    """
    if observed.units is None and observed.cost is None:
        return None, None
    order = np.argsort(observed.amount, kind="stable")
    sorted_amount = observed.amount[order]
    # Position of each amount among the sorted observed amounts, read off a grid of
    # 1-cent-wide bins (a table lookup instead of a binary search per simulated order).
    low, step = sorted_amount[0], 0.01
    n_bins = int(min(2_000_000, np.ceil((sorted_amount[-1] - low) / step) + 2))
    step = max(step, (sorted_amount[-1] - low) / max(n_bins - 2, 1))
    table = np.searchsorted(sorted_amount, low + step * np.arange(n_bins))
    bins = np.clip(((amounts - low) / step).astype(np.int64), 0, n_bins - 1)
    position = table[bins]
    shift = rng.integers(-(DONOR_NEIGHBOURS // 2), DONOR_NEIGHBOURS - DONOR_NEIGHBOURS // 2, len(amounts))
    donor = order[np.clip(position + shift, 0, len(order) - 1)]
    units = observed.units[donor] if observed.units is not None else None
    cost = observed.cost[donor] if observed.cost is not None else None
    return units, cost


def null_base(
    observed: NullBase, purchase_params: tuple[float, float, float, float], spend_params: tuple[float, float, float],
    *, time_unit: str = "D", n_draws: int = 99, seed: int = 0,
) -> NullBase:
    """``n_draws`` bases with no loyalty effect, for the customers of ``observed``.

    Parameters
    ----------
    observed : NullBase
        Output of :func:`observed_base`: gives the customers, their first-purchase days
        and the observation end.
    purchase_params : tuple
        Fitted Pareto/NBD ``(r, alpha, s, beta)`` in ``time_unit`` (the rates are
        converted to days here).
    spend_params : tuple
        Fitted Gamma-Gamma ``(p, q, v)``.
    time_unit : {"D", "W"}
    n_draws : int
    seed : int

    Returns
    -------
    NullBase
    """
    _check_unit(time_unit)
    if int(n_draws) < 1:
        raise ParamsError(f"null_draws={n_draws!r} must be at least 1 (99 or more for a p-value); fix it in params.")
    r, alpha, s, beta = (float(v) for v in purchase_params)
    per_day = DAYS_PER_UNIT[time_unit]
    window = observed.end_day - observed.first_day + 1
    effects = dict(spend_lift_per_year=0.0, cost_drop_per_year=0.0, rate_lift_per_year=0.0, butterfly_share=0.0,
                   butterfly_rate_factor=1.0, butterfly_lifetime_factor=1.0)
    orders = _loyalty_order_arrays(
        # Rates per unit ~ Gamma(shape, rate alpha) are rates per day ~ Gamma(shape, rate alpha * days per unit).
        window, (r, alpha * per_day, s, beta * per_day), tuple(float(v) for v in spend_params), n_draws=n_draws,
        seed=seed, **effects
    )
    amount = orders["amount"]
    units, cost = _donor_values(observed, amount, np.random.default_rng([seed, 1]))
    return NullBase(
        customers=observed.customers,
        first_day=observed.first_day,
        end_day=observed.end_day,
        draw=orders["draw"],
        customer=orders["customer"],
        day=orders["day"],
        amount=amount,
        units=units,
        cost=cost,
        n_draws=int(n_draws),
    )


class CrossingCache:
    """First age at which P(alive | x, t_x, T) falls below a threshold, per distinct (x, t_x).

    Between purchases P(alive) only falls as T grows (see
    :func:`crm_lib.loyalty.lifetime._first_crossing`), so for one history (x, t_x) the
    crossing age answers every question of the lifetime rule: a gap ending at age h holds
    a crossing when the crossing age is at most h. The many draws of a null share most of
    their (x, t_x) pairs, so each is computed once.
    """

    def __init__(self, model: Any, threshold: float, horizon: int):
        _check_threshold(threshold)
        self.model, self.threshold, self.horizon = model, float(threshold), int(horizon)
        # Dense table over (x, t_x): -2 = not computed yet, -1 = no crossing up to the horizon.
        self._table = np.full((0, self.horizon + 1), -2, dtype=np.int64)

    def __call__(self, x: np.ndarray, age: np.ndarray) -> np.ndarray:
        """Crossing age (in ``[age, horizon]``) of each history, or -1 when none."""
        x = x.astype(np.int64)
        age = np.minimum(age.astype(np.int64), self.horizon)
        rows = int(x.max()) + 1 if len(x) else 0
        if rows > self._table.shape[0]:
            grown = np.full((rows, self.horizon + 1), -2, dtype=np.int64)
            grown[: self._table.shape[0]] = self._table
            self._table = grown
        found = self._table[x, age]
        missing = found == -2
        if missing.any():
            keys = np.unique(x[missing] * (self.horizon + 1) + age[missing])
            ux, ua = np.divmod(keys, self.horizon + 1)
            self._table[ux, ua] = _first_crossing(
                self.model, ux.astype(float), ua.astype(float), ua, np.full(len(ua), self.horizon), self.threshold
            )
            found = self._table[x, age]
        return found


def crossing_cache(base: NullBase, model: Any, p_alive_threshold: float, time_unit: str) -> CrossingCache:
    """A :class:`CrossingCache` long enough for ``base``, after checking the model is valid."""
    horizon_days = base.end_day - int(base.first_day.min())
    horizon = horizon_days if time_unit == "D" else horizon_days // 7 + 2
    check_lifetime_model(model, horizon)
    return CrossingCache(model, p_alive_threshold, horizon)


def _last_day_offset(periods: np.ndarray, time_unit: str) -> np.ndarray:
    return periods if time_unit == "D" else 7 * periods + 3  # weeks run Monday to Sunday


def _lifetimes(base: NullBase, cache: CrossingCache, time_unit: str, crossing: str) -> dict[str, np.ndarray]:
    """Duration (in ``time_unit``), censoring and last day (offset) of every (draw, customer)."""
    n = base.n_customers
    g = base.draw.astype(np.int64) * n + base.customer
    calendar = base.first_day[base.customer] + base.day
    per = calendar if time_unit == "D" else np.floor_divide(calendar + 3, 7)
    # Purchases in the same period are one purchase for the model (as in rfm_summary).
    keep = np.r_[True, (g[1:] != g[:-1]) | (per[1:] != per[:-1])]
    gp, pp = g[keep], per[keep]
    start = np.flatnonzero(np.r_[True, gp[1:] != gp[:-1]])
    if len(start) != base.n_draws * n:
        raise DataValidationError("null base: some customer has no first order; rebuild it with observed_base/null_base.")
    group = np.repeat(np.arange(len(start)), np.diff(np.r_[start, len(gp)]))
    first_period = pp[start]
    age = pp - first_period[group]
    x = np.arange(len(gp)) - start[group]
    end_period = base.end_day if time_unit == "D" else (base.end_day + 3) // 7
    T_end = end_period - first_period
    cross = cache(x, age)
    is_last = np.r_[gp[1:] != gp[:-1], True]
    if crossing == "last":
        end_cross = cross[is_last]
        censored = (end_cross < 0) | (end_cross > T_end)
    else:
        next_age = np.r_[age[1:], 0]
        gap_hi = np.where(is_last, T_end[group], next_age - 1)
        hit = (cross >= 0) & (cross <= gap_hi)
        big = np.iinfo(np.int64).max
        end_cross = np.full(len(start), big)
        np.minimum.at(end_cross, group[hit], cross[hit])
        censored = end_cross == big
    duration = np.where(censored, T_end, end_cross)
    first_day = np.tile(base.first_day, base.n_draws)
    last_day = np.minimum(_last_day_offset(first_period + duration, time_unit), base.end_day)
    return {"duration": duration.astype(float), "censored": censored, "end_offset": last_day - first_day}


def _rank_rows(values: np.ndarray, use: np.ndarray) -> np.ndarray:
    """Average ranks within each row among the used entries (others ranked last)."""
    filled = np.where(use, values, np.inf)
    return stats.rankdata(filled, axis=1)


def _row_corr(a: np.ndarray, b: np.ndarray, use: np.ndarray) -> np.ndarray:
    w = use.astype(float)
    n = w.sum(axis=1, keepdims=True)
    ma = (a * w).sum(axis=1, keepdims=True) / n
    mb = (b * w).sum(axis=1, keepdims=True) / n
    da, db = np.where(use, a - ma, 0.0), np.where(use, b - mb, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (da * db).sum(axis=1) / np.sqrt((da**2).sum(axis=1) * (db**2).sum(axis=1))


def _row_split(values: np.ndarray, use: np.ndarray, split: float | None, quantile: float) -> np.ndarray:
    if split is not None:
        return np.full(values.shape[0], float(split))
    if not 0.0 < quantile < 1.0:
        raise ParamsError(f"split quantile {quantile!r} must be strictly between 0 and 1 (0.5 = median); fix it in params.")
    return np.nanquantile(np.where(use, values, np.nan), quantile, axis=1)


def _group_difference(values: np.ndarray, use: np.ndarray, long: np.ndarray) -> np.ndarray:
    """Mean of ``values`` among used long-lived minus used short-lived, per row (NaN if < 2 each)."""
    ok = use & np.isfinite(values)
    v = np.where(ok, values, 0.0)
    n_long, n_short = (ok & long).sum(axis=1), (ok & ~long).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        diff = (v * (ok & long)).sum(axis=1) / n_long - (v * (ok & ~long)).sum(axis=1) / n_short
    return np.where((n_long >= 2) & (n_short >= 2), diff, np.nan)


def _tenure_slope(
    base: NullBase, inside: np.ndarray, profit: np.ndarray, life: dict, use: np.ndarray, period_days: int, panel_end: str
) -> tuple[np.ndarray, np.ndarray]:
    """H2: within-customer slope of profit per tenure period, per draw, without the panel.

    The panel of a customer holds tenure periods 1 to K (period 0, which always holds the
    first order, is left out; K is the period of the lifetime end, or of the last order
    with ``panel_end="last_purchase"``), zeros included. The fixed-effects slope is
    sum_c S_xy,c / sum_c S_xx,c with S_xx,c = m (m^2 - 1) / 12 for m = K periods and
    S_xy,c = sum over orders of (k - mean k) * profit (periods without orders add 0),
    the same number as :func:`crm_lib.loyalty.hypotheses.fixed_effects_slope` on
    :func:`crm_lib.loyalty.lifetime.tenure_panel` (``skip_first_period=True``).
    """
    n_groups = base.n_draws * base.n_customers
    g = base.draw.astype(np.int64) * base.n_customers + base.customer
    k = base.day // period_days
    if panel_end == "lifetime_end":
        last_k = life["end_offset"] // period_days
    else:
        last_day = np.zeros(n_groups, dtype=np.int64)
        np.maximum.at(last_day, g[inside], base.day[inside])
        last_k = last_day // period_days
    m = np.maximum(last_k, 0).astype(float)  # periods 1..K
    ok = use.ravel() & (m >= 2)
    centre = (1.0 + m) / 2.0
    in_panel = inside & (k >= 1) & (k <= last_k[g])
    sxy = np.bincount(g[in_panel], weights=(k[in_panel] - centre[g[in_panel]]) * profit[in_panel], minlength=n_groups)
    sxx = m * (m**2 - 1.0) / 12.0
    total = np.bincount(g[in_panel], weights=profit[in_panel], minlength=n_groups)
    shape = (base.n_draws, base.n_customers)
    ok2 = ok.reshape(shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = np.where(ok2, sxy.reshape(shape), 0).sum(axis=1) / np.where(ok2, sxx.reshape(shape), 0).sum(axis=1)
        level = np.where(ok2, total.reshape(shape), 0).sum(axis=1) / np.where(ok2, m.reshape(shape), 0).sum(axis=1)
    return slope, level


def base_statistics(
    base: NullBase, model: Any, *, p_alive_threshold: float = 0.5, time_unit: str = "D", crossing: str = "last",
    gross_margin: float = 1.0, cost_per_order: float | None = None,
    duration_split: float | None = None, duration_quantile: float = 0.5,
    profit_split: float | None = None, profit_quantile: float = 0.5,
    tenure_period_days: int = 30, panel_end: str = "lifetime_end", censored: str = "exclude",
    cache: CrossingCache | None = None,
) -> pd.DataFrame:
    """The statistic of H1-H4 and of the matrix in each draw of a base.

    Parameters
    ----------
    base : NullBase
        From :func:`observed_base` or :func:`null_base`.
    model : fitted model
        The lifetime model (refused when it keeps one-time buyers alive for ever).
    p_alive_threshold, time_unit, crossing
        The lifetime rule, as in :func:`crm_lib.loyalty.lifetime.lifetime_durations`.
    gross_margin, cost_per_order
        Profit = margin x amount - cost, as in :func:`crm_lib.loyalty.lifetime.lifetime_profit`.
    duration_split, duration_quantile, profit_split, profit_quantile
        Long-lived and high-profit splits (quantiles of the customers used).
    tenure_period_days, panel_end
        The H2 panel (see :func:`_tenure_slope`).
    censored : {"exclude", "include"}
        ``"exclude"`` (default): every statistic uses only the customers whose lifetime
        ended before the observation end. Completed lifetimes are the shorter ones and
        come more from early cohorts, so the statistics describe completed lifetimes;
        the null is restricted the same way, so the calibrated comparison is like with
        like. ``"include"`` treats running lifetimes as if they had ended.
    cache : CrossingCache, optional
        Shared between calls with the same model and threshold.

    Returns
    -------
    DataFrame
        One row per draw: ``rho`` (H1, Spearman of duration and profit), ``slope`` (H2,
        profit change per tenure period), ``price_auc`` (H3, P(price of a long-lived >
        a short-lived customer) - 0.5), ``price_difference`` (long - short mean price, for
        reading), ``cost_share_auc`` (H4, the same for the cost share),
        ``cost_share_difference`` (long - short mean cost share, for reading), ``phi``
        (matrix: signed phi coefficient of long-lived and high-profit; Cramer's V is its
        absolute value), the shares of the four cells, ``share_long_low_profit``,
        ``share_high_profit_short``, the levels used to express practical effects
        (``mean_price``, ``mean_cost_share``, ``mean_period_profit``), ``customers_used``
        and ``censored_share``.
    """
    _check_unit(time_unit)
    _check_money_params(gross_margin, cost_per_order)
    if censored not in ("exclude", "include"):
        raise ParamsError(f"censored_lifetimes={censored!r} is not known; use 'exclude' or 'include'.")
    if int(tenure_period_days) < 1:
        raise ParamsError(f"tenure_period_days={tenure_period_days!r} must be a whole number of days >= 1.")
    if cache is None:
        cache = crossing_cache(base, model, p_alive_threshold, time_unit)
    life = _lifetimes(base, cache, time_unit, crossing)
    n, D = base.n_customers, base.n_draws
    g = base.draw.astype(np.int64) * n + base.customer
    inside = base.day <= life["end_offset"][g]
    if base.cost is not None:
        cost = base.cost
    elif cost_per_order is not None:
        cost = np.full(len(g), float(cost_per_order))
    else:
        cost = np.zeros(len(g))
    profit = gross_margin * base.amount - cost
    sums = {
        # Rounded to 1e-9 so that the last bit of a sum does not depend on the order of the
        # orders: customers tied at a split point then fall on the same side in every draw.
        name: np.bincount(g[inside], weights=w[inside], minlength=n * D).reshape(D, n).round(9)
        for name, w in (("orders", np.ones(len(g))), ("revenue", base.amount), ("cost", cost), ("profit", profit))
    }
    per = sums["orders"] if base.units is None else np.bincount(g[inside], weights=base.units[inside], minlength=n * D).reshape(D, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        price = np.where(per > 0, sums["revenue"] / per, np.nan)
        cost_share = np.where(sums["revenue"] > 0, sums["cost"] / sums["revenue"], np.nan)
    duration = life["duration"].reshape(D, n)
    is_censored = life["censored"].reshape(D, n)
    use = ~is_censored if censored == "exclude" else np.ones((D, n), dtype=bool)
    n_used = use.sum(axis=1)
    if (n_used < 4).any():
        raise DataValidationError(
            f"loyalty: only {int(n_used.min())} customers have a completed lifetime (of {n:,}); the tests need at least 4. "
            "Use censored_lifetimes='include' or a longer observation window."
        )
    profit_c = sums["profit"]
    rho = _row_corr(_rank_rows(duration, use), _rank_rows(profit_c, use), use)
    long = duration > _row_split(duration, use, duration_split, duration_quantile)[:, None]
    high = profit_c > _row_split(profit_c, use, profit_split, profit_quantile)[:, None]
    slope, level = _tenure_slope(base, inside, profit, life, use, int(tenure_period_days), panel_end)
    cells = {
        "share strangers": use & ~long & ~high,
        "share butterflies": use & ~long & high,
        "share true friends": use & long & high,
        "share barnacles": use & long & ~high,
    }
    counts = {name: mask.sum(axis=1).astype(float) for name, mask in cells.items()}
    cost_known = base.cost is not None or cost_per_order is not None
    a, b, c, d = (counts[k] for k in ("share strangers", "share butterflies", "share barnacles", "share true friends"))
    with np.errstate(invalid="ignore", divide="ignore"):
        # phi of the 2x2 table (rows short/long, columns low/high): (ad - bc) / sqrt(row and column totals).
        phi = (a * d - b * c) / np.sqrt((a + b) * (c + d) * (a + c) * (b + d))
        out = pd.DataFrame(
            {
                "rho": rho,
                "slope": slope,
                "price_difference": _group_difference(price, use, long),
                "price_auc": _row_auc(price, use, long),
                "cost_share_difference": _group_difference(cost_share, use, long) if cost_known else np.nan,
                "cost_share_auc": _row_auc(cost_share, use, long) if cost_known else np.nan,
                "phi": phi,
                **{name: counts[name] / n_used for name in CELL_COLUMNS},
                "share_long_low_profit": c / (c + d),
                "share_high_profit_short": b / (b + d),
                "mean_price": _row_mean(price, use),
                "mean_cost_share": _row_mean(cost_share, use),
                "mean_period_profit": level,
                "customers_used": n_used,
                "censored_share": is_censored.mean(axis=1),
            }
        )
    out.index.name = "draw"
    return out


def _row_auc(values: np.ndarray, use: np.ndarray, long: np.ndarray) -> np.ndarray:
    """P(value of a used long-lived > a used short-lived customer) - 0.5 per row, ties counted half.

    The Mann-Whitney U of the two groups over n_long n_short (Hanley & McNeil 1982), from
    average ranks within the row: robust to the heavy right tail of prices, whose mean
    difference depends on a few extreme customers.
    """
    ok = use & np.isfinite(values)
    ranks = stats.rankdata(np.where(ok, values, np.inf), axis=1)
    n_long, n_short = (ok & long).sum(axis=1), (ok & ~long).sum(axis=1)
    rank_sum = np.where(ok & long, ranks, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = (rank_sum - n_long * (n_long + 1) / 2) / (n_long * n_short)
    return np.where((n_long >= 2) & (n_short >= 2), auc - 0.5, np.nan)


def _row_mean(values: np.ndarray, use: np.ndarray) -> np.ndarray:
    ok = use & np.isfinite(values)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ok, values, 0.0).sum(axis=1) / ok.sum(axis=1)
