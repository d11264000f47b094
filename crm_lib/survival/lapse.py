"""Lapse-rule churn: time to churn of each customer, the sensitivity to the lapse threshold,
the rule beside a model's P(alive), and a backtest of the retention curve."""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from crm_lib.exceptions import DataValidationError, ParamsError
from crm_lib.survival._common import CENSORING_RULES, EVENT_TIMES, format_days
from crm_lib.survival.kaplan_meier import KaplanMeierResult, kaplan_meier
from crm_lib.summary import sorted_id_runs

logger = logging.getLogger(__name__)

# ---------------------------------------------------------------------------------------
# Time to churn
# ---------------------------------------------------------------------------------------


def time_to_churn(
    transactions: pd.DataFrame,
    *,
    lapse_days: int = 180,
    observation_end: str | pd.Timestamp | None = None,
    event_time: str = "last_purchase",
    cohort_freq: str = "M",
    value_bands: int = 3,
    censoring: str = "recognisable",
) -> pd.DataFrame:
    """Lifetime of every customer's first purchase spell, with churn defined by a lapse.

    Parameters
    ----------
    transactions : DataFrame
        One row per purchase with ``customer_id``, ``date``, ``amount`` and optionally
        ``quantity`` and ``channel`` (``TransactionLog.transactions``).
    lapse_days : int
        A gap of more than this many days without purchase means the customer lapsed.
    observation_end : str or Timestamp, optional
        Last day observed; defaults to the last purchase date. Later purchases are ignored.
    event_time : {"last_purchase", "lapse_recognised"}
        Where a lapsed customer's lifetime ends (see the module docstring).
    cohort_freq : str
        Calendar period of the acquisition cohort (pandas period alias: ``"M"``, ``"Q"``).
    value_bands : int
        Number of equal-count bands of first-day spend in ``first_order_band``.
    censoring : {"recognisable", "last_purchase"}
        Where a customer still within ``lapse_days`` of a purchase is censored.
        ``"recognisable"`` (default): at the last day whose churn the data could still
        show, ``observation_end - lapse_days - 1`` (a churn is seen only after more than
        ``lapse_days`` of silence), so every customer is followed exactly as long as a
        churn of theirs would be visible and the Kaplan-Meier estimate is unbiased;
        customers acquired after that day carry no information yet and get a NaN
        ``duration_days``. ``"last_purchase"``: at the last purchase, the older rule,
        biased upward (a customer who churned in the last ``lapse_days`` is kept at
        risk); kept for comparison and backtests (:func:`lapse_backtest`).

    Returns
    -------
    DataFrame
        Indexed by ``customer_id``: ``first_purchase``, ``last_purchase`` (end of the
        first spell), ``purchases`` (purchase days in the spell), ``duration_days``
        (float; NaN for a customer acquired too late to show a churn, see
        ``censoring``), ``churned`` (bool; False = censored), ``reactivated`` (bought again
        after lapsing), ``days_since_last_purchase`` (at observation end, any spell),
        ``cohort``, ``first_order_amount``, ``first_order_band`` and, when the log has
        them, ``first_order_quantity`` and ``channel`` (of the first order). The first
        order is the whole first purchase day, as in the BTYD summary: its amount is the
        day's total spend (labelled "first-day spend" in reports). A customer who buys
        again on that day shows a larger amount, and such customers buy more often, so
        this amount carries some of the purchase rate as well as the order value.

    Raises
    ------
    ParamsError
        ``lapse_days`` not a positive number or an unknown ``event_time``.
    DataValidationError
        Missing columns or no purchase on or before ``observation_end``.

    Examples
    --------
    >>> tx = pd.DataFrame({"customer_id": ["a", "a", "b"],
    ...                    "date": pd.to_datetime(["2020-01-01", "2020-01-11", "2020-01-05"]),
    ...                    "amount": [10.0, 5.0, 8.0]})
    >>> churn = time_to_churn(tx, lapse_days=30, observation_end="2020-03-01")
    >>> churn["duration_days"].tolist(), churn["churned"].tolist()
    ([10.0, 0.0], [True, True])
    """
    _check_churn_arguments(transactions, lapse_days=lapse_days, event_time=event_time, censoring=censoring)
    days, end = _purchase_days(transactions, observation_end)
    return _churn_from_days(days, end, lapse_days=lapse_days, event_time=event_time, cohort_freq=cohort_freq,
                            value_bands=value_bands, censoring=censoring)


def _churn_from_days(days: pd.DataFrame, end: pd.Timestamp, *, lapse_days, event_time: str = "last_purchase",
                     cohort_freq: str = "M", value_bands: int = 3, censoring: str = "recognisable") -> pd.DataFrame:
    """:func:`time_to_churn` from the purchase days of :func:`_purchase_days` (computed once, reused
    for several thresholds, rules and window ends)."""
    runs = sorted_id_runs(days["customer_id"])  # integer codes, not one Python string per purchase day
    customer = days["customer_id"].to_numpy() if runs is None else runs[0]
    day = days["day"].to_numpy()
    spells = _spells(customer, day, end, lapse_days=lapse_days, event_time=event_time, censoring=censoring)
    first_idx, end_idx, last_idx = spells["first_idx"], spells["end_idx"], spells["last_idx"]
    first_day = day[first_idx]
    index = pd.Index(customer[first_idx] if runs is None else days["customer_id"].array.take(first_idx),
                     name="customer_id")
    out = pd.DataFrame(
        {
            "first_purchase": pd.to_datetime(first_day.astype("datetime64[D]")),
            "last_purchase": pd.to_datetime(day[end_idx].astype("datetime64[D]")),
            "purchases": (end_idx - first_idx + 1).astype(int),
            "duration_days": spells["duration_days"],
            "churned": spells["churned"],
            "reactivated": spells["reactivated"],
            "days_since_last_purchase": (spells["end_day"] - day[last_idx]).astype(float),
            "cohort": _period_labels(first_day, cohort_freq),
            "first_order_amount": days["amount"].to_numpy(dtype=float)[first_idx],
        },
        index=index,
    )
    if "quantity" in days:
        out["first_order_quantity"] = days["quantity"].to_numpy(dtype=float)[first_idx]
    # Same index (object): the labels are set without aligning millions of ids.
    out["first_order_band"] = value_band_labels(out["first_order_amount"], bands=value_bands).array
    if "channel" in days:
        out["channel"] = days["channel"].to_numpy()[first_idx]
    out.attrs.update(lapse_days=lapse_days, observation_end=end, event_time=event_time, censoring=censoring)
    return out


def _spells(customer: np.ndarray, day: np.ndarray, end: pd.Timestamp, *, lapse_days, event_time: str = "last_purchase",
            censoring: str = "recognisable") -> dict[str, np.ndarray]:
    """The first spell of every customer as arrays (rows of :func:`_purchase_days`, customers in order).

    ``first_idx``, ``end_idx``, ``last_idx`` (row of the first day, the first spell's last
    day and the last day), ``duration_days``, ``churned``, ``reactivated``, ``first_day``
    (days since 1970) and ``end_day`` (the window's end, a 0-d array).
    """
    end_day = int(np.datetime64(end, "D").astype(np.int64))
    first_idx, end_idx, last_idx, churned = _first_spells(customer, day, end_day, lapse_days)
    first_day = day[first_idx]
    spell_last_day = day[end_idx]
    shift = 0.0 if event_time == "last_purchase" else float(lapse_days)
    if censoring == "recognisable":
        # A churn at last purchase L shows only when end - L > lapse_days: the last such
        # day is the last whole day before end - lapse_days. Censoring everyone there
        # makes the observed churns exactly those with duration <= censoring time.
        last_visible = int(np.ceil(end_day - float(lapse_days))) - 1
        censor_at = (last_visible - first_day).astype(float)
        censor_at[censor_at < 0] = np.nan  # acquired too late: no churn can show yet
    elif event_time == "last_purchase":
        censor_at = (spell_last_day - first_day).astype(float)
    else:
        censor_at = (end_day - first_day - shift).astype(float)
    return {"first_idx": first_idx, "end_idx": end_idx, "last_idx": last_idx,
            "duration_days": np.where(churned, spell_last_day - first_day, censor_at) + shift,
            "churned": churned.astype(bool), "reactivated": end_idx != last_idx, "first_day": first_day,
            "end_day": np.asarray(end_day)}


def _customer_codes(days: pd.DataFrame) -> np.ndarray:
    """Customer codes of the purchase days, equal for equal ids (runs of the sorted ids when they are text)."""
    if "customer" in days:  # _purchase_days(..., with_ids=False): codes already
        return days["customer"].to_numpy()
    runs = sorted_id_runs(days["customer_id"])
    return days["customer_id"].to_numpy() if runs is None else runs[0]


def _lean_churn(days: pd.DataFrame, end: pd.Timestamp, *, lapse_days, event_time: str = "last_purchase",
                censoring: str = "recognisable", customer: np.ndarray | None = None) -> pd.DataFrame:
    """``duration_days``, ``churned``, ``reactivated`` and ``first_day`` of :func:`_churn_from_days`,
    one row per customer in the same order, on a RangeIndex: what Kaplan-Meier needs, without the
    ids, dates and labels that cost most of the time and memory on millions of customers.
    ``customer``: :func:`_customer_codes` of ``days``, when several calls share them."""
    customer = _customer_codes(days) if customer is None else customer
    spells = _spells(customer, days["day"].to_numpy(), end, lapse_days=lapse_days, event_time=event_time,
                     censoring=censoring)
    out = pd.DataFrame({column: spells[column] for column in ("duration_days", "churned", "reactivated", "first_day")})
    out.attrs.update(lapse_days=lapse_days, observation_end=end, event_time=event_time, censoring=censoring)
    return out


def _check_churn_arguments(transactions: pd.DataFrame, *, lapse_days, event_time: str, censoring: str) -> None:
    """The checks of :func:`time_to_churn`'s arguments, in the order their messages come."""
    if censoring not in CENSORING_RULES:
        raise ParamsError(f"censoring={censoring!r} is not supported; use one of {', '.join(CENSORING_RULES)}.")
    if event_time not in EVENT_TIMES:
        raise ParamsError(f"event_time={event_time!r} is not supported; use one of {', '.join(EVENT_TIMES)}.")
    if not np.isscalar(lapse_days) or not float(lapse_days) > 0:
        raise ParamsError(f"lapse_days={lapse_days!r} must be a positive number of days (e.g. 180).")
    for column in ("customer_id", "date", "amount"):
        if column not in transactions.columns:
            raise DataValidationError(
                f"transactions: column '{column}' not found; the frame has {list(transactions.columns)}. "
                "Load the log with crm_lib.data.load_transactions."
            )


def _purchase_days(transactions: pd.DataFrame, observation_end, *,
                   with_ids: bool = True) -> tuple[pd.DataFrame, pd.Timestamp]:
    """One row per customer and purchase day up to the end (sorted), and that end day.

    Several orders on a day are one purchase occasion, as in the RFM summary; the first
    day's amount and quantity describe the first order. ``day`` counts days since 1970.
    ``with_ids=False`` may return, for a log sorted by text ids, only integer ``customer``
    codes and ``day`` (no ids, no amounts): enough for :func:`_lean_churn`.
    """
    dates = pd.to_datetime(transactions["date"]).dt.normalize()
    end = dates.max() if observation_end is None else pd.Timestamp(observation_end).normalize()
    inside = (dates <= end).to_numpy()
    if not inside.any():
        _nothing_before(end, dates.min())
    columns = ["customer_id", "amount"] + [c for c in ("quantity", "channel") if c in transactions.columns]
    tx = transactions.loc[inside, columns] if not inside.all() else transactions[columns]
    day = dates[inside].to_numpy().astype("datetime64[D]").astype(np.int64)
    agg = {"amount": "sum"}
    if "quantity" in tx:
        agg["quantity"] = "sum"
    if "channel" in tx:
        agg["channel"] = "first"
    by_key = _sorted_day_keys(tx["customer_id"], day)
    if by_key is not None and not with_ids:
        # Purchase days only (what the lapse rule needs): customer codes, no ids and no sums.
        key, _, low, span = by_key
        group_key = key[np.r_[True, key[1:] != key[:-1]]]
        return pd.DataFrame({"customer": group_key // span, "day": group_key % span + low}), end
    if by_key is None:
        tx = tx.assign(day=day)
        return tx.groupby(["customer_id", "day"], sort=True, observed=True).agg(agg).reset_index(), end
    # A loaded log is sorted by customer and date: one int64 key per (customer, day), grouped in
    # the same row order (the same sums), and the ids taken back from their runs.
    key, uniques, low, span = by_key
    grouped = tx.drop(columns="customer_id").assign(key=key).groupby("key", sort=True).agg(agg)
    group_key = grouped.index.to_numpy()
    out = pd.DataFrame({"customer_id": uniques.take(group_key // span).array, "day": group_key % span + low})
    for column in agg:
        out[column] = grouped[column].to_numpy()
    return out, end


def _sorted_day_keys(ids: pd.Series, day: np.ndarray) -> tuple[np.ndarray, pd.Index, int, int] | None:
    """``(key, uniques, low, span)`` with key = code * span + day - low, for text ids in order
    (:func:`crm_lib.summary.sorted_id_runs`) whose days are in order within each customer; else None."""
    runs = sorted_id_runs(ids)
    if runs is None:
        return None
    low = int(day.min())
    span = int(day.max()) - low + 1
    key = runs[0] * span + (day - low)
    return (key, runs[1], low, span) if (key[1:] >= key[:-1]).all() else None


def _nothing_before(end: pd.Timestamp, start: pd.Timestamp) -> None:
    """Raise the error for a window that ends before the first purchase."""
    raise DataValidationError(
        f"no purchase on or before observation_end ({end:%Y-%m-%d}); the data start on "
        f"{start:%Y-%m-%d}. Move observation_end later in params."
    )


def _days_until(days: pd.DataFrame, end: pd.Timestamp) -> pd.DataFrame:
    """The purchase days of :func:`_purchase_days` up to ``end``: a shorter window of the same log.

    Equal to :func:`_purchase_days` with ``observation_end=end`` (days are whole days, so
    cutting the per-day rows cuts the purchases).
    """
    day = days["day"].to_numpy()
    inside = day <= int(np.datetime64(end, "D").astype(np.int64))
    if not inside.any():
        _nothing_before(end, pd.Timestamp(np.datetime64(int(day.min()), "D")))
    return days.loc[inside].reset_index(drop=True)


def _period_labels(day: np.ndarray, freq: str) -> np.ndarray:
    """``YYYY-MM``-style labels of the calendar periods of days since 1970, as ``to_period(freq).astype(str)``,
    computed once per distinct day."""
    unique, inverse = np.unique(day, return_inverse=True)
    labels = pd.to_datetime(unique.astype("datetime64[D]")).to_period(freq).astype(str)
    return np.asarray(labels, dtype=object)[inverse.reshape(-1)]


def _first_spells(customer: np.ndarray, day: np.ndarray, end_day: int,
                  lapse_days: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Row positions of each customer's first day, first-spell end and last day, and whether the spell lapsed.

    Rows are purchase days sorted by customer and day. The first spell ends at the first
    purchase day followed by more than ``lapse_days`` without purchase (or at the last day).
    """
    is_first = np.r_[True, customer[1:] != customer[:-1]]
    is_last = np.r_[customer[1:] != customer[:-1], True]
    gap_after = np.where(is_last, end_day - day, np.r_[day[1:], 0] - day)
    lapse = gap_after > lapse_days
    spell_end = lapse | is_last
    codes = np.cumsum(is_first) - 1
    end_mask_idx = np.flatnonzero(spell_end)
    # First spell-ending row of each customer.
    end_idx = end_mask_idx[np.r_[True, codes[end_mask_idx][1:] != codes[end_mask_idx][:-1]]]
    return np.flatnonzero(is_first), end_idx, np.flatnonzero(is_last), lapse[end_idx]


def value_band_labels(amounts: pd.Series, *, bands: int = 3) -> pd.Series:
    """Equal-count bands of an amount, labelled with their ranges (``"1 (0-12.5)"``).

    Parameters
    ----------
    amounts : Series
        One amount per customer.
    bands : int
        Number of bands; fewer when many amounts are tied at a cut point.

    Returns
    -------
    Series
        String labels ``"<band> (<low>-<high>)"``, band 1 the lowest amounts.
    """
    if bands < 1:
        raise ParamsError(f"value_bands={bands!r} must be at least 1.")
    cut = pd.qcut(amounts.rank(method="average"), q=bands, labels=False, duplicates="drop")
    # qcut keeps the Series' index: no realignment (which would hash millions of ids).
    cut = cut.fillna(0).astype(int)
    lows = amounts.groupby(cut.to_numpy()).min()  # by the codes: no alignment on the ids
    highs = amounts.groupby(cut.to_numpy()).max()
    names = {k: f"{i + 1} ({lows[k]:,.0f}-{highs[k]:,.0f})" for i, k in enumerate(sorted(lows.index))}
    return cut.map(names).astype(str)


# ---------------------------------------------------------------------------------------
# Sensitivity to the lapse definition, and the model-based alternative
# ---------------------------------------------------------------------------------------


def lapse_sensitivity(
    transactions: pd.DataFrame,
    *,
    lapse_days: tuple[int, ...] | list[int] = (90, 180, 270, 365),
    horizon_days: float = 365,
    observation_end: str | pd.Timestamp | None = None,
    event_time: str = "last_purchase",
    alpha: float = 0.05,
    censoring: str = "recognisable",
) -> pd.DataFrame:
    """How the median lifetime and the retention at a horizon move with the lapse definition.

    Parameters
    ----------
    transactions : DataFrame
        One row per purchase.
    lapse_days : sequence of int
        Lapse thresholds to compare (days without purchase).
    horizon_days : float
        Horizon of the retention figure (365: 12-month retention).
    observation_end, event_time, censoring
        As in :func:`time_to_churn`.
    alpha : float
        1 - confidence level of the intervals.

    Returns
    -------
    DataFrame
        Indexed by ``lapse_days``: ``customers``, ``churned_share``, ``reactivated_share``,
        ``median_days``, ``median_lower``, ``median_upper``, ``retention_at_horizon``,
        ``retention_lower``, ``retention_upper`` (NaN when the horizon is beyond
        ``identified_until_days``, the last day of the curve: with the default censoring
        the data cannot show a churn after it).
    """
    for n_days in lapse_days:
        _check_churn_arguments(transactions, lapse_days=n_days, event_time=event_time, censoring=censoring)
    days, end = _purchase_days(transactions, observation_end, with_ids=False) if len(lapse_days) else (None, None)
    customer = _customer_codes(days) if len(lapse_days) else None
    rows = []
    for n_days in lapse_days:
        churn = km = None  # the previous threshold's table is freed before the next one is built
        churn = _lean_churn(days, end, lapse_days=n_days, event_time=event_time, censoring=censoring,
                            customer=customer)
        km = kaplan_meier(churn, alpha=alpha, errors="report")
        if km.error:
            # Nobody can show a churn yet with this threshold: no curve, the row says so.
            logger.info("lapse %s: %s", n_days, km.error)
            rows.append({"lapse_days": int(n_days), "customers": len(churn),
                         "churned_share": float(churn["churned"].mean()),
                         "reactivated_share": float(churn["reactivated"].mean()),
                         "identified_until_days": np.nan})
            continue
        at = km.survival_at(horizon_days).loc["all"]
        med = km.medians.loc["all"]
        rows.append(
            {
                "lapse_days": int(n_days),
                "customers": len(churn),
                "churned_share": float(churn["churned"].mean()),
                "reactivated_share": float(churn["reactivated"].mean()),
                "median_days": med["median_days"],
                "median_lower": med["median_lower"],
                "median_upper": med["median_upper"],
                "retention_at_horizon": at["survival"],
                "retention_lower": at["lower"],
                "retention_upper": at["upper"],
                "identified_until_days": float(km.curves["time"].max()),
            }
        )
    columns = ["lapse_days", "customers", "churned_share", "reactivated_share", "median_days", "median_lower",
               "median_upper", "retention_at_horizon", "retention_lower", "retention_upper", "identified_until_days"]
    return pd.DataFrame(rows, columns=columns).set_index("lapse_days")


def format_lapse_sensitivity(sensitivity: pd.DataFrame, *, horizon_days: float = 365) -> pd.DataFrame:
    """The output of :func:`lapse_sensitivity` as a table for people (percentages, days, intervals)."""
    def pct(value: float) -> str:
        return "n/a" if np.isnan(value) else f"{value:.1%}"

    out = pd.DataFrame(
        {
            "customers": sensitivity["customers"].map("{:,}".format),
            "churned": sensitivity["churned_share"].map(pct),
            "came back after a lapse": sensitivity["reactivated_share"].map(pct),
            "median lifetime": sensitivity["median_days"].map(format_days),
            f"retention at {horizon_days:,.0f} days": [
                f"not identified (curve ends at {until:,.0f} days)" if np.isnan(value) and until < horizon_days
                else pct(value)
                for value, until in zip(sensitivity["retention_at_horizon"], sensitivity["identified_until_days"])
            ],
            "interval": [f"{pct(lo)} to {pct(hi)}" for lo, hi in
                         zip(sensitivity["retention_lower"], sensitivity["retention_upper"])],
        },
        index=sensitivity.index,
    )
    out.index.name = "lapse (days)"
    return out


def lapse_vs_p_alive(churn: pd.DataFrame, p_alive: pd.Series | pd.DataFrame | None, *, lapse_days: int) -> pd.DataFrame | None:
    """Customers declared lapsed at the observation end beside a model's P(alive).

    The lapse rule says a customer is gone when the last purchase is more than
    ``lapse_days`` days before the observation end; a buy-till-you-die model gives each
    customer a probability of still being alive instead. ``1 - P(alive)`` summed over
    customers is the model's expected number of churned customers.

    Parameters
    ----------
    churn : DataFrame
        Output of :func:`time_to_churn` (uses ``days_since_last_purchase``).
    p_alive : Series or one-column DataFrame, optional
        P(alive) per customer id (e.g. from :mod:`crm_lib.clv`). None gives None, so a
        report can call this whether or not a model was fitted.
    lapse_days : int
        The lapse threshold used for ``churn``.

    Returns
    -------
    DataFrame or None
        Rows ``lapsed`` / ``not lapsed`` / ``all``: ``customers``, ``mean_p_alive``,
        ``expected_churned_by_model`` (sum of 1 - P(alive)), ``churned_by_rule``.

    Raises
    ------
    DataValidationError
        P(alive) outside [0, 1] or no customer in common.
    """
    if p_alive is None:
        return None
    if isinstance(p_alive, pd.DataFrame):
        if p_alive.shape[1] != 1:
            raise DataValidationError(
                f"p_alive has {p_alive.shape[1]} columns {list(p_alive.columns)}; pass one column of P(alive)."
            )
        p_alive = p_alive.iloc[:, 0]
    p_alive = p_alive.astype(float)
    bad = (p_alive < 0) | (p_alive > 1) | p_alive.isna()
    if bad.any():
        raise DataValidationError(
            f"p_alive has {int(bad.sum()):,} of {len(p_alive):,} values outside [0, 1] "
            f"(e.g. customer {bad.idxmax()!r}: {float(p_alive[bad].iloc[0]):g}); pass probabilities."
        )
    joined = churn[["days_since_last_purchase"]].join(p_alive.rename("p_alive"), how="inner")
    if joined.empty:
        raise DataValidationError(
            "p_alive and the churn table have no customer id in common "
            f"(e.g. {churn.index[0]!r} vs {p_alive.index[0]!r}); compute both from the same log."
        )
    lapsed = joined["days_since_last_purchase"] > lapse_days
    rows = {}
    for name, mask in (("lapsed", lapsed), ("not lapsed", ~lapsed), ("all", lapsed | ~lapsed)):
        part = joined[mask]
        rows[name] = {
            "customers": len(part),
            "mean_p_alive": float(part["p_alive"].mean()) if len(part) else np.nan,
            "expected_churned_by_model": float((1 - part["p_alive"]).sum()),
            "churned_by_rule": int(lapsed[mask].sum()),
        }
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = f"lapse rule ({lapse_days} days)"
    return out



def curve_cut_note(km: KaplanMeierResult, *, lapse_days: float, horizon_days: float | None = None) -> str:
    """Where the data stop identifying the retention curve, in words.

    With the default censoring of :func:`time_to_churn` a curve ends at the last day
    after the first purchase at which the data could still show a churn of the earliest
    customers: ``observation_end - lapse_days - 1`` minus their first purchase. Past it
    the retention is not estimated (it is not a flat tail).

    Parameters
    ----------
    km : KaplanMeierResult
    lapse_days : float
        The lapse threshold of the churn table.
    horizon_days : float, optional
        A horizon to say something about (12-month retention: 365).

    Returns
    -------
    str
        One or two sentences.
    """
    if km.error:
        return ""
    until = km.curves.groupby("group", sort=False)["time"].max()
    shortest = until.min()
    where = f"{shortest:,.0f} days" if until.nunique() == 1 else (
        f"between {shortest:,.0f} and {until.max():,.0f} days depending on the group")
    text = (
        f"The curve ends at {where} after the first purchase: a churn is recognised only after more than "
        f"{lapse_days:,.0f} days of silence, so even the earliest customers could not yet show a churn later than that."
    )
    if horizon_days is not None and (until < horizon_days).any():
        at = km.survival_at(float(shortest))
        text += (
            f" Retention at {horizon_days:,.0f} days is therefore not identified by these data; at "
            f"{shortest:,.0f} days it is {at['survival'].iloc[0]:.1%}"
            + (" (first group)." if len(at) > 1 else ".")
        )
    return text


@dataclass(frozen=True)
class LapseBacktest:
    """Retention estimated on a shortened window against what the full window shows.

    Attributes
    ----------
    table : DataFrame
        One row per ``horizon_days`` and ``censoring`` rule: ``estimate`` with its
        interval ``lower`` / ``upper`` from the shortened window (NaN where that window
        does not identify the horizon), ``truth`` (the same customers' retention in the
        full window), ``difference`` (estimate - truth) and ``covered`` (truth inside
        the interval).
    lapse_days : float
    truncate_at, observation_end : Timestamp
        End of the shortened window and of the full one.
    customers : int
        Customers acquired in time to show a churn in the shortened window.
    alpha : float
    """

    table: pd.DataFrame
    lapse_days: float
    truncate_at: pd.Timestamp
    observation_end: pd.Timestamp
    customers: int
    alpha: float = 0.05
    method: str = "Kaplan-Meier on a shortened window vs the full window's retention of the same customers"

    def to_frame(self) -> pd.DataFrame:
        """The comparison table."""
        return self.table.copy()

    def people_table(self) -> pd.DataFrame:
        """The comparison for people: estimate with its interval, the full window, and whether it is covered."""
        level = f"{1 - self.alpha:.0%}"

        def estimate(row) -> str:
            if np.isnan(row["estimate"]):
                return "not identified"
            return f"{row['estimate']:.1%} ({row['lower']:.1%} to {row['upper']:.1%})"

        out = pd.DataFrame({
            f"estimate to {self.truncate_at:%Y-%m-%d} ({level} interval)": self.table.apply(estimate, axis=1),
            f"full window to {self.observation_end:%Y-%m-%d}": self.table["truth"].map(
                lambda v: "not identified" if np.isnan(v) else f"{v:.1%}"),
            "truth inside the interval": [
                "" if np.isnan(row["estimate"]) or np.isnan(row["truth"]) else ("yes" if row["covered"] else "no")
                for _, row in self.table.iterrows()
            ],
        }, index=self.table.index)
        out.index = out.index.set_names(["retention at (days)", "censoring"])
        return out

    def sentence(self) -> str:
        """The backtest in words: the longest horizon both windows identify, and what is not identified."""
        rows = self.table.xs("recognisable", level="censoring") if "recognisable" in self.table.index.get_level_values(
            "censoring") else self.table.xs(self.table.index.get_level_values("censoring")[0], level="censoring")
        usable = rows.dropna(subset=["estimate", "truth"])
        head = (f"Estimated on the data up to {self.truncate_at:%Y-%m-%d} ({self.customers:,} customers, lapse "
                f"{self.lapse_days:,.0f} days)")
        if usable.empty:
            return head + ", no horizon is identified both there and in the full window."
        horizon = usable.index.max()
        row = usable.loc[horizon]
        level = f"{1 - self.alpha:.0%}"
        verdict = "within" if row["covered"] else "outside"
        text = (f"{head}, the {horizon:,.0f}-day retention is {row['estimate']:.1%} ({level} interval "
                f"{row['lower']:.1%} to {row['upper']:.1%}); the window to {self.observation_end:%Y-%m-%d} shows "
                f"{row['truth']:.1%} for the same customers, {verdict} the interval.")
        if (horizon, "last_purchase") in self.table.index:
            old = self.table.loc[(horizon, "last_purchase")]
            text += f" Censoring at the last purchase (the older rule) would have given {old['estimate']:.1%}."
        missing = rows.index[rows["estimate"].isna() & rows["truth"].notna()]
        if len(missing):
            text += (f" At {', '.join(f'{h:,.0f}' for h in missing)} days the shortened window identifies nothing "
                     "(no churn that late could show in it yet), where the older rule printed a flat tail.")
        return text

    def summary(self) -> str:
        """One line per horizon and rule."""
        lines = [
            f"Backtest of lapse-rule retention (lapse {self.lapse_days:,.0f} days): estimated on data to "
            f"{self.truncate_at:%Y-%m-%d}, checked against the window to {self.observation_end:%Y-%m-%d} "
            f"({self.customers:,} customers)"
        ]
        for (horizon, rule), row in self.table.iterrows():
            estimate = "not identified" if np.isnan(row["estimate"]) else (
                f"{row['estimate']:.3f} [{row['lower']:.3f}, {row['upper']:.3f}]")
            lines.append(f"  S({horizon:g}) censoring={rule}: {estimate}; full window {row['truth']:.3f}")
        return "\n".join(lines)


def lapse_backtest(
    transactions: pd.DataFrame,
    *,
    truncate_at: str | pd.Timestamp | None = None,
    holdout_days: int | None = None,
    lapse_days: int = 180,
    observation_end: str | pd.Timestamp | None = None,
    horizons_days: tuple[float, ...] | list[float] = (90, 180, 270),
    rules: tuple[str, ...] = CENSORING_RULES,
    alpha: float = 0.05,
) -> LapseBacktest:
    """Estimate retention on data up to ``truncate_at`` and compare with what the full window shows.

    The customers are those the shortened window can follow (acquired early enough to
    show a churn there). Their lapse-rule lifetimes are taken again from the full window;
    the truth at a horizon is those customers' Kaplan-Meier retention there (with the
    unbiased censoring: an empirical share when every one of them is followed that long).

    Parameters
    ----------
    transactions : DataFrame
        One row per purchase, covering the full window.
    truncate_at : str or Timestamp, optional
        End of the shortened window.
    holdout_days : int, optional
        Instead of ``truncate_at``: the shortened window ends this many days before the
        full one (181 on CDNOW: 1997-12-31).
    lapse_days : int
    observation_end : str or Timestamp, optional
        End of the full window (default: the last purchase).
    horizons_days : sequence of float
        Days after the first purchase to compare.
    rules : sequence of str
        Censoring rules to backtest (see :func:`time_to_churn`).
    alpha : float
        1 - confidence level of the estimate's interval.

    Returns
    -------
    LapseBacktest

    Raises
    ------
    ParamsError
        ``truncate_at`` not before the full window's end, or not exactly one of
        ``truncate_at`` and ``holdout_days``.
    """
    if (truncate_at is None) == (holdout_days is None):
        raise ParamsError("give either truncate_at (a date) or holdout_days (days before the end), not both or neither.")
    dates = pd.to_datetime(transactions["date"])
    end = dates.max().normalize() if observation_end is None else pd.Timestamp(observation_end).normalize()
    cut = end - pd.Timedelta(days=int(holdout_days)) if truncate_at is None else pd.Timestamp(truncate_at).normalize()
    if not cut < end:
        raise ParamsError(f"truncate_at={cut:%Y-%m-%d} must be before the end of the data ({end:%Y-%m-%d}).")
    for rule in rules:
        _check_churn_arguments(transactions, lapse_days=lapse_days, event_time="last_purchase", censoring=rule)
    days, end = _purchase_days(transactions, end, with_ids=False)  # once: the short window is a cut of the same days
    short_days = _days_until(days, cut)
    short = {rule: _lean_churn(short_days, cut, lapse_days=lapse_days, censoring=rule) for rule in rules}
    del short_days
    full = _lean_churn(days, end, lapse_days=lapse_days)
    del days
    # Both tables are sorted by customer, and the short window's customers are the full window's
    # who bought by the cut: rows are matched by position, not by looking up millions of ids.
    cut_day = int(np.datetime64(cut, "D").astype(np.int64))
    in_short = np.flatnonzero(full["first_day"].to_numpy() <= cut_day)
    keep = np.arange(len(in_short))
    if CENSORING_RULES[0] in short:
        keep = np.flatnonzero(short[CENSORING_RULES[0]]["duration_days"].notna().to_numpy())
    n_customers = len(keep)
    truth_km = kaplan_meier(full.iloc[in_short[keep]], alpha=alpha)
    del full
    # One Kaplan-Meier curve per rule for every horizon; each table is freed once its curve is made.
    estimate_km = {rule: kaplan_meier(short.pop(rule).iloc[keep], alpha=alpha) for rule in list(short)}
    rows = []
    for horizon in horizons_days:
        truth = float(truth_km.survival_at(horizon).loc["all", "survival"])
        for rule in rules:
            at = estimate_km[rule].survival_at(horizon).loc["all"]
            rows.append({
                "horizon_days": horizon, "censoring": rule, "estimate": at["survival"], "lower": at["lower"],
                "upper": at["upper"], "truth": truth, "difference": at["survival"] - truth,
                "covered": bool(at["lower"] <= truth <= at["upper"]) if not np.isnan(at["survival"]) else np.nan,
            })
    table = pd.DataFrame(rows).set_index(["horizon_days", "censoring"])
    return LapseBacktest(table=table, lapse_days=lapse_days, truncate_at=cut, observation_end=end,
                         customers=n_customers, alpha=alpha)
