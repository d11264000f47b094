"""Retention and survival in a non-contractual log: time to churn, Kaplan-Meier, log-rank, Cox.

Churn is not observed when customers can leave without telling anyone, so it is
*defined* (:func:`time_to_churn`):

- a customer has **lapsed** after a gap of more than ``lapse_days`` days without a
  purchase, or when more than ``lapse_days`` days separate the last purchase from the
  observation end;
- the lifetime studied is the customer's **first spell**: from the first purchase to the
  purchase before the first such gap. A customer who buys again after a gap is counted
  as churned at the gap (what was knowable then) and flagged ``reactivated``;
- the **event time** is, by default, the last purchase of the spell
  (``event_time="last_purchase"``: a one-time buyer who never returns has a lifetime of
  0 days). With ``event_time="lapse_recognised"`` it is the last purchase plus
  ``lapse_days``, the day the lapse becomes visible; every lifetime is then at least
  ``lapse_days`` long, so read curves from that point on;
- customers whose window is still open at the observation end (last purchase at most
  ``lapse_days`` days earlier) are **censored**: at their last purchase with
  ``"last_purchase"`` (they lived at least that long), at the observation end with
  ``"lapse_recognised"``.

Estimation uses statsmodels' duration module: :class:`~statsmodels.duration.survfunc.SurvfuncRight`
(Kaplan-Meier, Greenwood variance), :func:`~statsmodels.duration.survfunc.survdiff`
(log-rank) and :class:`~statsmodels.duration.hazard_regression.PHReg` (Cox). Functions
that the report calls take ``errors="report"`` to turn a specific, expected failure
(unknown column, groups too small, a Cox model that cannot be fitted) into a result that
carries the message, so the rest of the report still renders.

Calendar-period retention and attrition rates (active customers who buy again in the
next period) are KPIs of :mod:`crm_lib.kpi` (``activity_by_period``,
``cohort_retention``); :func:`retention_rates_by_cohort` applies them per acquisition
cohort.
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from crm_lib.exceptions import DataValidationError, ModelFitError, ParamsError

logger = logging.getLogger(__name__)

EVENT_TIMES = ("last_purchase", "lapse_recognised")
ERROR_MODES = ("raise", "report")

#: Columns of :func:`time_to_churn` that are known at acquisition (candidate Cox covariates
#: and grouping columns).
ACQUISITION_COLUMNS = ("cohort", "first_order_amount", "first_order_quantity", "first_order_band", "channel")
#: Below this absolute correlation of scaled Schoenfeld residuals with time, a significant
#: proportional-hazards test is called a small drift in the verdict.
SMALL_PH_CORRELATION = 0.1
#: Acquisition columns that exist only when the log has a quantity / channel column.
OPTIONAL_LOG_COLUMNS = ("first_order_quantity", "channel")


def _check_errors_mode(errors: str) -> None:
    if errors not in ERROR_MODES:
        raise ParamsError(f"errors={errors!r} is not supported; use 'raise' or 'report'.")


def _require_columns(frame: pd.DataFrame, columns, what: str, knob: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ParamsError(
            f"{what}: column(s) {missing} not found; the table has {list(frame.columns)}. "
            f"Set {knob} in params to one of those."
        )


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
        Number of equal-count bands of first-order amount in ``first_order_band``.

    Returns
    -------
    DataFrame
        Indexed by ``customer_id``: ``first_purchase``, ``last_purchase`` (end of the
        first spell), ``purchases`` (purchase days in the spell), ``duration_days``
        (float), ``churned`` (bool; False = censored), ``reactivated`` (bought again
        after lapsing), ``days_since_last_purchase`` (at observation end, any spell),
        ``cohort``, ``first_order_amount``, ``first_order_band`` and, when the log has
        them, ``first_order_quantity`` and ``channel`` (of the first order).

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
    dates = pd.to_datetime(transactions["date"]).dt.normalize()
    end = dates.max() if observation_end is None else pd.Timestamp(observation_end).normalize()
    inside = (dates <= end).to_numpy()
    if not inside.any():
        raise DataValidationError(
            f"no purchase on or before observation_end ({end:%Y-%m-%d}); the data start on "
            f"{dates.min():%Y-%m-%d}. Move observation_end later in params."
        )
    columns = ["customer_id", "amount"] + [c for c in ("quantity", "channel") if c in transactions.columns]
    tx = transactions.loc[inside, columns].copy()
    tx["day"] = dates[inside].to_numpy().astype("datetime64[D]").astype(np.int64)

    # One row per purchase day (several orders on a day are one purchase occasion, as in
    # the RFM summary); the first day's amount and quantity describe the first order.
    agg = {"amount": "sum"}
    if "quantity" in tx:
        agg["quantity"] = "sum"
    if "channel" in tx:
        agg["channel"] = "first"
    days = tx.groupby(["customer_id", "day"], sort=True, observed=True).agg(agg).reset_index()
    customer = days["customer_id"].to_numpy()
    day = days["day"].to_numpy()
    end_day = int(np.datetime64(end, "D").astype(np.int64))

    is_first = np.r_[True, customer[1:] != customer[:-1]]
    is_last = np.r_[customer[1:] != customer[:-1], True]
    gap_after = np.where(is_last, end_day - day, np.r_[day[1:], 0] - day)
    lapse = gap_after > lapse_days
    # The spell ends at the first purchase day followed by a lapse (or at the last day).
    spell_end = lapse | is_last
    codes = np.cumsum(is_first) - 1
    first_idx = np.flatnonzero(is_first)
    end_mask_idx = np.flatnonzero(spell_end)
    # First spell-ending row of each customer.
    end_idx = end_mask_idx[np.r_[True, codes[end_mask_idx][1:] != codes[end_mask_idx][:-1]]]
    last_idx = np.flatnonzero(is_last)

    churned = lapse[end_idx]
    first_day = day[first_idx]
    spell_last_day = day[end_idx]
    if event_time == "last_purchase":
        duration = (spell_last_day - first_day).astype(float)
    else:
        duration = np.where(churned, spell_last_day + lapse_days - first_day, end_day - first_day).astype(float)

    index = pd.Index(customer[first_idx], name="customer_id")
    first_dates = pd.to_datetime(first_day.astype("datetime64[D]"))
    out = pd.DataFrame(
        {
            "first_purchase": first_dates,
            "last_purchase": pd.to_datetime(spell_last_day.astype("datetime64[D]")),
            "purchases": (end_idx - first_idx + 1).astype(int),
            "duration_days": duration,
            "churned": churned.astype(bool),
            "reactivated": (end_idx != last_idx),
            "days_since_last_purchase": (end_day - day[last_idx]).astype(float),
            "cohort": first_dates.to_period(cohort_freq).astype(str),
            "first_order_amount": days["amount"].to_numpy(dtype=float)[first_idx],
        },
        index=index,
    )
    if "quantity" in days:
        out["first_order_quantity"] = days["quantity"].to_numpy(dtype=float)[first_idx]
    out["first_order_band"] = value_band_labels(out["first_order_amount"], bands=value_bands)
    if "channel" in days:
        out["channel"] = days["channel"].to_numpy()[first_idx]
    return out


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
    cut = pd.Series(cut, index=amounts.index).fillna(0).astype(int)
    lows = amounts.groupby(cut).min()
    highs = amounts.groupby(cut).max()
    names = {k: f"{i + 1} ({lows[k]:,.0f}-{highs[k]:,.0f})" for i, k in enumerate(sorted(lows.index))}
    return cut.map(names).astype(str)


# ---------------------------------------------------------------------------------------
# Kaplan-Meier
# ---------------------------------------------------------------------------------------


def _km_curve(time: np.ndarray, status: np.ndarray, alpha: float):
    from statsmodels.duration.survfunc import SurvfuncRight

    sf = SurvfuncRight(time, status)
    z = stats.norm.ppf(1 - alpha / 2)
    s = np.asarray(sf.surv_prob, dtype=float)
    se = np.asarray(sf.surv_prob_se, dtype=float)
    # Pointwise band on the log(-log S) scale (Kalbfleisch & Prentice 2002, eq. 1.16);
    # it stays within (0, 1). Undefined where S is 0 or 1: the band collapses to S.
    with np.errstate(divide="ignore", invalid="ignore"):
        loglog = np.log(-np.log(s))
        se_loglog = se / (s * np.abs(np.log(s)))
        lower = np.exp(-np.exp(loglog + z * se_loglog))
        upper = np.exp(-np.exp(loglog - z * se_loglog))
    undefined = ~np.isfinite(lower) | ~np.isfinite(upper)
    lower[undefined] = s[undefined]
    upper[undefined] = s[undefined]
    curve = pd.DataFrame(
        {
            "time": np.asarray(sf.surv_times, dtype=float),
            "at_risk": np.asarray(sf.n_risk, dtype=float).astype(int),
            "events": np.asarray(sf.n_events, dtype=float).astype(int),
            "survival": s,
            "lower": lower,
            "upper": upper,
        }
    )
    last_time = float(time.max())
    if curve.empty or last_time > curve["time"].iloc[-1]:
        # Extend the curve flat to the longest follow-up (censored customers) so that it
        # shows how far the data reach.
        tail = {"time": last_time, "at_risk": int((time >= last_time).sum()), "events": 0,
                "survival": s[-1] if len(s) else 1.0, "lower": lower[-1] if len(s) else 1.0,
                "upper": upper[-1] if len(s) else 1.0}
        curve = pd.concat([curve, pd.DataFrame([tail])], ignore_index=True)
    if status.sum() == 0:
        median, (mlow, mhigh) = np.nan, (np.nan, np.nan)
    else:
        # statsmodels (as SAS) takes the first time S drops strictly below 0.5.
        median = float(sf.quantile(0.5))
        # log(0) at S = 0 only makes statsmodels skip those times in the inversion.
        with np.errstate(divide="ignore", invalid="ignore"):
            mlow, mhigh = sf.quantile_ci(0.5, alpha=alpha, method="cloglog")
    return curve, median, float(mlow), float(mhigh)


@dataclass(frozen=True)
class KaplanMeierResult:
    """Kaplan-Meier retention curves, overall or by group.

    Attributes
    ----------
    curves : DataFrame
        ``group``, ``time`` (days), ``at_risk``, ``events``, ``survival`` and its
        pointwise ``lower`` / ``upper`` band, one row per event time and group, plus a
        last row with no event at the longest follow-up when it is censored.
    medians : DataFrame
        Per group: ``customers``, ``churned``, ``censored``, ``median_days`` and its
        interval ``median_lower`` / ``median_upper`` (NaN: not reached or not
        estimable; inf: the upper limit is beyond the data), ``longest_follow_up_days``.
    group_col : str or None
        The grouping column (None: one overall curve, group ``"all"``).
    alpha : float
        1 - confidence level of the bands.
    notes : tuple of str
        Groups left out because they were too small, and why.
    error : str or None
        Set when the curves could not be computed (``errors="report"``).
    """

    curves: pd.DataFrame
    medians: pd.DataFrame
    group_col: str | None
    alpha: float = 0.05
    notes: tuple[str, ...] = ()
    error: str | None = None
    method: str = "Kaplan-Meier (statsmodels SurvfuncRight), Greenwood variance, log(-log) bands"

    @classmethod
    def failed(cls, message: str, group_col: str | None = None) -> KaplanMeierResult:
        """A result that carries only the reason the curves are missing."""
        return cls(curves=pd.DataFrame(columns=["group", "time", "survival", "lower", "upper"]),
                   medians=pd.DataFrame(), group_col=group_col, error=message)

    @property
    def groups(self) -> list[str]:
        """Group labels in the order of ``medians``."""
        return [] if self.medians.empty else list(self.medians.index)

    def survival_at(self, days: float) -> pd.DataFrame:
        """Retention (survival) at ``days`` after the first purchase, per group, with its band.

        Parameters
        ----------
        days : float
            Time since the first purchase, in days.

        Returns
        -------
        DataFrame
            Indexed by group: ``survival``, ``lower``, ``upper``; NaN beyond a group's
            last observed time.
        """
        rows = {}
        for group, curve in self.curves.groupby("group", sort=False):
            before = curve[curve["time"] <= days]
            last = curve.iloc[-1]
            if days > last["time"]:
                # Beyond the data: 0 if everybody churned, unknown otherwise.
                value = 0.0 if last["survival"] == 0 else np.nan
                rows[group] = {"survival": value, "lower": value, "upper": value}
            elif before.empty:
                rows[group] = {"survival": 1.0, "lower": 1.0, "upper": 1.0}
            else:
                rows[group] = before[["survival", "lower", "upper"]].iloc[-1].to_dict()
        out = pd.DataFrame.from_dict(rows, orient="index")
        out.index.name = "group"
        return out

    def to_frame(self) -> pd.DataFrame:
        """The per-group medians table."""
        return self.medians.copy()

    def median_after(self, days: float = 0) -> pd.Series:
        """Median lifetime of the customers still active after ``days``, per group.

        The first time the curve falls below half its value at ``days``; with
        ``days=0`` it is the median lifetime of the customers who bought again (when
        most customers buy once, the plain median is 0 days). NaN when not reached.
        """
        out = {}
        for group, curve in self.curves.groupby("group", sort=False):
            at = curve.loc[curve["time"] <= days, "survival"]
            base = at.iloc[-1] if len(at) else 1.0
            below = curve[(curve["time"] > days) & (curve["survival"] < 0.5 * base)]
            out[group] = float(below["time"].iloc[0]) if len(below) and base > 0 else np.nan
        return pd.Series(out, name=f"median_after_{days:g}_days")

    def table(self, horizon_days: float = 365) -> pd.DataFrame:
        """A table for people: per group, customers, churned, median lifetime and retention at a horizon.

        Parameters
        ----------
        horizon_days : float
            Horizon of the retention column (365: 12-month retention).

        Returns
        -------
        DataFrame
            Indexed by group, text columns with the intervals written out, and the
            median lifetime of the customers who bought again (:meth:`median_after`).
        """
        if self.error:
            return _error_table(self.error)
        at = self.survival_at(horizon_days)
        after_day_0 = self.median_after(0)
        level = f"{1 - self.alpha:.0%}"

        def pct(value: float) -> str:
            return "n/a" if np.isnan(value) else f"{value:.1%}"

        rows = {}
        for group, row in self.medians.iterrows():
            rows[group] = {
                "customers": f"{int(row['customers']):,}",
                "churned": f"{int(row['churned']):,}",
                "censored": f"{int(row['censored']):,}",
                "median lifetime": format_days(row["median_days"]),
                f"median {level} interval": _interval_text(row["median_lower"], row["median_upper"]),
                "median of those who bought again": format_days(after_day_0[group]),
                f"retention at {horizon_days:,.0f} days": pct(at.loc[group, "survival"]),
                f"retention {level} interval": f"{pct(at.loc[group, 'lower'])} to {pct(at.loc[group, 'upper'])}",
            }
        out = pd.DataFrame.from_dict(rows, orient="index")
        out.index.name = self.group_col or "group"
        return out

    def summary(self) -> str:
        """One line per group: customers, churned, median lifetime and its interval."""
        if self.error:
            return f"Kaplan-Meier not available: {self.error}"
        level = f"{1 - self.alpha:.0%}"
        lines = [f"Kaplan-Meier retention by {self.group_col or 'all customers'} ({level} intervals)"]
        for group, row in self.medians.iterrows():
            lines.append(
                f"  {group}: {int(row['customers']):,} customers, {int(row['churned']):,} churned, "
                f"median lifetime {format_days(row['median_days'])} "
                f"[{format_days(row['median_lower'], 'not estimable')}, {format_days(row['median_upper'], 'not estimable')}]"
            )
        lines.extend(f"  note: {n}" for n in self.notes)
        return "\n".join(lines)


def _error_table(error: str) -> pd.DataFrame:
    """A one-cell table saying why a result is missing (its first clause; the full message
    is in the result's summary and verdict)."""
    return pd.DataFrame({"not available": [error.split(";")[0]]}, index=pd.Index(["reason"], name=""))


def _interval_text(lower: float, upper: float) -> str:
    if np.isnan(lower) and np.isnan(upper):
        return "n/a (the curve drops past 50% at once)"
    return f"{format_days(lower, 'not estimable')} to {format_days(upper, 'not estimable')}"


def format_days(days: float, missing: str = "not reached") -> str:
    """``"123 days"``; ``missing`` for NaN (``"not reached"``), ``"beyond the data"`` for inf."""
    if days is None or np.isnan(days):
        return missing
    if np.isinf(days):
        return "beyond the data"
    return f"{days:,.0f} days"


def _split_groups(churn: pd.DataFrame, group_col: str | None, min_group_size: int):
    """Groups large enough for a curve, and notes on those left out."""
    if group_col is None:
        return [("all", churn)], []
    _require_columns(churn, [group_col], "grouping column", "group_col")
    labels = churn[group_col].astype("string").fillna("(missing)").astype(str)
    sizes = labels.value_counts().sort_index()
    small = sizes[sizes < min_group_size]
    notes = []
    if len(small):
        listed = ", ".join(f"'{g}' ({n:,} customers)" for g, n in small.items())
        notes.append(
            f"{len(small)} group(s) of {group_col} left out, fewer than {min_group_size} customers: {listed}; "
            "merge small groups or lower min_group_size in params."
        )
    keep = [g for g in sizes.index if g not in small.index]
    if not keep:
        raise DataValidationError(
            f"grouping column '{group_col}': every group has fewer than {min_group_size} customers "
            f"(largest: '{sizes.idxmax()}' with {sizes.max():,}); choose a coarser grouping or lower "
            "min_group_size in params."
        )
    return [(g, churn[labels == g]) for g in keep], notes


def kaplan_meier(
    churn: pd.DataFrame,
    *,
    group_col: str | None = None,
    min_group_size: int = 20,
    alpha: float = 0.05,
    errors: str = "raise",
) -> KaplanMeierResult:
    """Kaplan-Meier retention curves with pointwise bands and median lifetimes.

    Parameters
    ----------
    churn : DataFrame
        Output of :func:`time_to_churn` (``duration_days``, ``churned`` and the
        grouping column).
    group_col : str, optional
        Column to split by (``cohort``, ``first_order_band``, ``channel``, ...).
    min_group_size : int
        Groups with fewer customers get no curve; they are named in ``notes``.
    alpha : float
        1 - confidence level (0.05: 95% bands and intervals).
    errors : {"raise", "report"}
        ``"report"`` returns a result whose ``error`` says what went wrong instead of
        raising :class:`ParamsError` / :class:`DataValidationError`.

    Returns
    -------
    KaplanMeierResult

    Raises
    ------
    ParamsError
        ``group_col`` is not a column of ``churn``.
    DataValidationError
        Every group is smaller than ``min_group_size``.

    Examples
    --------
    >>> churn = pd.DataFrame({"duration_days": [1.0, 2, 2, 3], "churned": [True, True, False, True]})
    >>> kaplan_meier(churn).survival_at(2)["survival"].round(3).tolist()
    [0.5]
    """
    _check_errors_mode(errors)
    try:
        _require_columns(churn, ["duration_days", "churned"], "time to churn", "the churn table")
        groups, notes = _split_groups(churn, group_col, min_group_size)
        curves, medians = [], {}
        for group, part in groups:
            time = part["duration_days"].to_numpy(dtype=float)
            status = part["churned"].to_numpy(dtype=bool).astype(int)
            curve, median, mlow, mhigh = _km_curve(time, status, alpha)
            curve.insert(0, "group", group)
            curves.append(curve)
            medians[group] = {
                "customers": len(part),
                "churned": int(status.sum()),
                "censored": int(len(part) - status.sum()),
                "median_days": median,
                "median_lower": mlow,
                "median_upper": mhigh,
                "longest_follow_up_days": float(time.max()),
            }
    except (ParamsError, DataValidationError) as exc:
        if errors == "raise":
            raise
        logger.info("Kaplan-Meier not computed: %s", exc)
        return KaplanMeierResult.failed(str(exc), group_col)
    table = pd.DataFrame.from_dict(medians, orient="index")
    table.index.name = group_col or "group"
    return KaplanMeierResult(
        curves=pd.concat(curves, ignore_index=True), medians=table, group_col=group_col, alpha=alpha, notes=tuple(notes)
    )


# ---------------------------------------------------------------------------------------
# Log-rank test
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LogRankResult:
    """Log-rank test that retention is the same in every group.

    Attributes
    ----------
    statistic : float
        Chi-square statistic.
    df : int
        Degrees of freedom (groups - 1).
    p_value : float
    n : int
        Customers in the groups tested.
    groups : tuple of str
    group_col : str
    alpha : float
        Significance level of the verdict.
    notes : tuple of str
        Groups left out (too small).
    error : str or None
        Why the test could not be run (``errors="report"``).
    """

    statistic: float
    df: int
    p_value: float
    n: int
    groups: tuple[str, ...]
    group_col: str | None
    alpha: float = 0.05
    notes: tuple[str, ...] = ()
    error: str | None = None
    method: str = "log-rank test (statsmodels survdiff)"

    @property
    def verdict(self) -> str:
        """The result as a sentence."""
        if self.error:
            return f"The log-rank test could not be run: {self.error}"
        stat = f"log-rank χ² = {self.statistic:,.1f} on {self.df} df, {p_text(self.p_value)}, {self.n:,} customers"
        if self.p_value < self.alpha:
            return (
                f"Retention differs between the {len(self.groups)} groups of {self.group_col} ({stat}): "
                "the curves are not all the same."
            )
        return (
            f"There is no evidence that retention differs between the {len(self.groups)} groups of "
            f"{self.group_col} ({stat})."
        )

    def summary(self) -> str:
        """The verdict and any notes."""
        return "\n".join([self.verdict, *(f"note: {n}" for n in self.notes)])

    def to_frame(self) -> pd.DataFrame:
        """One row: statistic, df, p-value, n, groups."""
        return pd.DataFrame(
            [{"statistic": self.statistic, "df": self.df, "p_value": self.p_value, "customers": self.n,
              "groups": ", ".join(self.groups), "method": self.method}]
        )


def format_p(p: float) -> str:
    """A p-value for a table: ``"<0.001"`` below one in a thousand."""
    if p is None or np.isnan(p):
        return "n/a"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def p_text(p: float) -> str:
    """A p-value for a sentence: ``"p < 0.001"`` or ``"p = 0.042"``."""
    text = format_p(p)
    return f"p {text[0]} {text[1:]}" if text.startswith("<") else f"p = {text}"


def log_rank_test(
    churn: pd.DataFrame,
    *,
    group_col: str,
    min_group_size: int = 20,
    alpha: float = 0.05,
    errors: str = "raise",
) -> LogRankResult:
    """Log-rank test of equal retention across the groups of ``group_col``.

    Parameters
    ----------
    churn : DataFrame
        Output of :func:`time_to_churn`.
    group_col : str
        Grouping column; groups smaller than ``min_group_size`` are left out (and named
        in ``notes``), as in :func:`kaplan_meier`.
    min_group_size : int
    alpha : float
        Significance level of the verdict.
    errors : {"raise", "report"}

    Returns
    -------
    LogRankResult

    Raises
    ------
    ParamsError
        ``group_col`` is not a column of ``churn``.
    DataValidationError
        Fewer than two groups are large enough.
    """
    from statsmodels.duration.survfunc import survdiff

    _check_errors_mode(errors)
    try:
        groups, notes = _split_groups(churn, group_col, min_group_size)
        if len(groups) < 2:
            raise DataValidationError(
                f"grouping column '{group_col}' has {len(groups)} group with at least {min_group_size} customers "
                f"('{groups[0][0]}', {len(groups[0][1]):,} customers); a comparison needs two. "
                + (notes[0] if notes else "Choose a column with more than one value.")
            )
        parts = pd.concat([part.assign(_group=g) for g, part in groups])
        chisq, p_value = survdiff(
            parts["duration_days"].to_numpy(dtype=float),
            parts["churned"].to_numpy(dtype=bool).astype(int),
            parts["_group"].to_numpy(),
        )
    except (ParamsError, DataValidationError) as exc:
        if errors == "raise":
            raise
        logger.info("log-rank test not run: %s", exc)
        return LogRankResult(np.nan, 0, np.nan, 0, (), group_col, alpha, error=str(exc))
    return LogRankResult(
        statistic=float(chisq), df=len(groups) - 1, p_value=float(p_value), n=len(parts),
        groups=tuple(g for g, _ in groups), group_col=group_col, alpha=alpha, notes=tuple(notes),
    )


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
    observation_end, event_time
        As in :func:`time_to_churn`.
    alpha : float
        1 - confidence level of the intervals.

    Returns
    -------
    DataFrame
        Indexed by ``lapse_days``: ``customers``, ``churned_share``, ``reactivated_share``,
        ``median_days``, ``median_lower``, ``median_upper``, ``retention_at_horizon``,
        ``retention_lower``, ``retention_upper``.
    """
    rows = []
    for n_days in lapse_days:
        churn = time_to_churn(transactions, lapse_days=n_days, observation_end=observation_end, event_time=event_time)
        km = kaplan_meier(churn, alpha=alpha)
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
            }
        )
    return pd.DataFrame(rows).set_index("lapse_days")


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
            f"retention at {horizon_days:,.0f} days": sensitivity["retention_at_horizon"].map(pct),
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


# ---------------------------------------------------------------------------------------
# Cox proportional hazards
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CoxResult:
    """A Cox proportional-hazards fit: hazard ratios and the proportional-hazards check.

    Attributes
    ----------
    hazard_ratios : DataFrame
        Indexed by term: ``meaning`` (what one unit is), ``hazard_ratio``, ``lower``,
        ``upper`` (interval at 1 - alpha), ``p_value``, ``coef``, ``se``.
    ph_test : DataFrame
        Grambsch & Therneau (1994) test per term and ``GLOBAL``: ``rho`` (correlation of
        the scaled Schoenfeld residuals with the rank of time), ``chi2``, ``df``,
        ``p_value``.
    scaled_schoenfeld : DataFrame
        ``time`` and one column per term: scaled Schoenfeld residuals at each churn
        (their trend over time is the hazard ratio's drift, in log units).
    n, events : int
        Customers and churn events used.
    covariates : tuple of str
    alpha : float
    error : str or None
        Why the model could not be fitted (``errors="report"``).
    notes : tuple of str
        Covariates left out because the log lacks them.
    """

    hazard_ratios: pd.DataFrame
    ph_test: pd.DataFrame
    scaled_schoenfeld: pd.DataFrame
    n: int
    events: int
    covariates: tuple[str, ...]
    alpha: float = 0.05
    log_likelihood: float = np.nan
    error: str | None = None
    notes: tuple[str, ...] = ()
    method: str = "Cox proportional hazards (statsmodels PHReg, Efron ties)"

    @classmethod
    def failed(cls, message: str, covariates=()) -> CoxResult:
        """A result that carries only the reason the model is missing."""
        return cls(pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), 0, 0, tuple(covariates), error=message)

    @property
    def ph_verdict(self) -> str:
        """The proportional-hazards check as a sentence."""
        if self.error:
            return f"The proportional-hazards check could not be run: {self.error}"
        terms = self.ph_test.drop(index="GLOBAL")
        violated = terms[terms["p_value"] < self.alpha]
        glob = self.ph_test.loc["GLOBAL"]
        head = f"global test χ² = {glob['chi2']:,.1f} on {int(glob['df'])} df, {p_text(glob['p_value'])}"
        if violated.empty:
            return (
                f"No evidence against proportional hazards ({head}; smallest per-term "
                f"{p_text(terms['p_value'].min())}): the hazard ratios can be read as constant over time."
            )
        listed = ", ".join(f"{t} (ρ = {r['rho']:+.2f}, {p_text(r['p_value'])})" for t, r in violated.iterrows())
        largest = float(np.nanmax(np.abs(violated["rho"])))
        size = (
            f" The drift is small (|ρ| ≤ {largest:.2f}) and detectable mainly because of the {self.events:,} churn "
            "events, so the hazard ratios remain fair averages."
            if largest < SMALL_PH_CORRELATION
            else ""
        )
        return (
            f"Proportional hazards is doubtful for {listed} ({head}): their effect changes with time "
            f"since acquisition, so read those hazard ratios as averages over the observed lifetimes.{size}"
        )

    @property
    def verdict(self) -> str:
        """The strongest effect as a sentence."""
        if self.error:
            return f"The Cox model could not be fitted: {self.error}"
        hr = self.hazard_ratios
        significant = hr[(hr["lower"] > 1) | (hr["upper"] < 1)]
        level = f"{1 - self.alpha:.0%}"
        if significant.empty:
            return f"No covariate changes the churn hazard clearly ({level} intervals all include 1; {self.n:,} customers)."
        top = significant.assign(strength=np.abs(np.log(significant["hazard_ratio"]))).sort_values("strength").iloc[-1]
        direction = "higher" if top["hazard_ratio"] > 1 else "lower"
        return (
            f"{len(significant)} of {len(hr)} terms change the churn hazard ({level} interval excludes 1). "
            f"The largest: {top.name} ({top['meaning']}) has a hazard ratio of {top['hazard_ratio']:.2f} "
            f"[{top['lower']:.2f}, {top['upper']:.2f}], a {abs(top['hazard_ratio'] - 1):.0%} {direction} churn hazard."
        )

    def to_frame(self) -> pd.DataFrame:
        """The hazard-ratio table."""
        return self.hazard_ratios.copy()

    def table(self) -> pd.DataFrame:
        """The hazard ratios for people: meaning, ratio, interval and p-value as text."""
        if self.error:
            return _error_table(self.error)
        hr = self.hazard_ratios
        level = f"{1 - self.alpha:.0%}"
        return pd.DataFrame(
            {
                "meaning": hr["meaning"],
                "hazard ratio": hr["hazard_ratio"].map("{:.3f}".format),
                f"{level} interval": [f"{lo:.3f} to {hi:.3f}" for lo, hi in zip(hr["lower"], hr["upper"])],
                "p-value": hr["p_value"].map(format_p),
                "churn hazard": [
                    "higher" if lo > 1 else "lower" if hi < 1 else "no clear difference"
                    for lo, hi in zip(hr["lower"], hr["upper"])
                ],
            },
            index=hr.index,
        )

    def ph_table(self) -> pd.DataFrame:
        """The proportional-hazards test for people: correlation with time, chi-square, p-value, reading."""
        if self.error:
            return _error_table(self.error)
        test = self.ph_test
        return pd.DataFrame(
            {
                "correlation with time (ρ)": test["rho"].map(lambda r: "" if np.isnan(r) else f"{r:+.3f}"),
                "χ²": test["chi2"].map("{:.2f}".format),
                "df": test["df"],
                "p-value": test["p_value"].map(format_p),
                "proportional hazards": np.where(test["p_value"] < self.alpha, "doubtful", "no evidence against"),
            },
            index=test.index,
        )

    def summary(self) -> str:
        """Hazard ratios and the proportional-hazards verdict."""
        if self.error:
            return self.verdict
        lines = [f"{self.method}: {self.n:,} customers, {self.events:,} churned"]
        for term, row in self.hazard_ratios.iterrows():
            lines.append(
                f"  {term:<30} HR {row['hazard_ratio']:.3f} [{row['lower']:.3f}, {row['upper']:.3f}] "
                f"p {format_p(row['p_value'])}"
            )
        lines.append(self.ph_verdict)
        lines.extend(f"note: {n}" for n in self.notes)
        return "\n".join(lines)


def cox_design(
    churn: pd.DataFrame,
    covariates: tuple[str, ...] | list[str],
    *,
    log2_covariates: tuple[str, ...] | list[str] = ("first_order_amount", "first_order_quantity"),
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Design matrix of a Cox model: numeric columns (log2 where asked) and dummy-coded labels.

    A categorical covariate gets one column per level except the reference, its most
    frequent level. A covariate in ``log2_covariates`` enters as ``log2(1 + x)``, so its
    hazard ratio is per doubling of ``1 + x``.

    Returns
    -------
    design : DataFrame
        One float column per term, indexed like ``churn``.
    meanings : dict
        Term -> what one unit of it is, for the hazard-ratio table.

    Raises
    ------
    ParamsError
        A covariate is not a column of ``churn``.
    DataValidationError
        Missing values, or a negative value in a log2 covariate.
    ModelFitError
        A covariate takes one value for every customer.
    """
    covariates = list(covariates)
    if not covariates:
        raise ParamsError("cox_covariates is empty; name at least one column known at acquisition.")
    _require_columns(churn, covariates, "Cox covariates", "cox_covariates")
    columns, meanings = {}, {}
    n = len(churn)
    for name in covariates:
        values = churn[name]
        missing = values.isna()
        if missing.any():
            raise DataValidationError(
                f"Cox covariate '{name}' is missing for {int(missing.sum()):,} of {n:,} customers "
                f"(e.g. customer {values.index[missing.to_numpy()][0]!r}); fill it in or leave it out of cox_covariates."
            )
        if values.nunique() < 2:
            raise ModelFitError(
                f"Cox covariate '{name}' has the same value ({values.iloc[0]!r}) for all {n:,} customers, so its "
                "effect cannot be estimated; remove it from cox_covariates."
            )
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            x = values.astype(float)
            if name in log2_covariates:
                if (x < 0).any():
                    raise DataValidationError(
                        f"Cox covariate '{name}' has {int((x < 0).sum()):,} negative values (e.g. {x[x < 0].iloc[0]!r}); "
                        "a log2 term needs values >= 0: drop it from log2_covariates or fix the rows."
                    )
                columns[name] = np.log2(1 + x)
                meanings[name] = f"per doubling of (1 + {name.replace('_', ' ')})"
            else:
                columns[name] = x
                meanings[name] = f"per unit of {name.replace('_', ' ')}"
        else:
            labels = values.astype(str)
            counts = labels.value_counts()
            order = sorted(counts.index, key=lambda level: (-counts[level], level))
            reference = order[0]
            for level in sorted(order[1:]):
                term = f"{name}[{level}]"
                columns[term] = (labels == level).astype(float)
                meanings[term] = f"{name} {level} vs {reference}"
    design = pd.DataFrame(columns, index=churn.index)
    rank = np.linalg.matrix_rank(np.column_stack([np.ones(n), design.to_numpy()]))
    if rank < design.shape[1] + 1:
        raise ModelFitError(
            f"the Cox covariates {covariates} are collinear ({design.shape[1]} terms, rank {rank - 1} after the "
            "baseline): one is a function of the others; remove one of them from cox_covariates."
        )
    return design, meanings


def _schoenfeld_test(result, time: np.ndarray, status: np.ndarray, terms: list[str]):
    """Grambsch & Therneau (1994) test of proportional hazards on scaled Schoenfeld residuals."""
    resid = np.asarray(result.schoenfeld_residuals)
    events = (status == 1) & np.all(np.isfinite(resid), axis=1)
    r = resid[events]
    d = r.shape[0]
    cov = np.asarray(result.cov_params())
    beta = np.asarray(result.params)
    # Scaled residuals: beta + d * V r_j (Grambsch & Therneau 1994, eq. 3's approximation);
    # their expected value is beta(t), so a trend in time means a time-varying effect.
    scaled = beta + d * r @ cov
    # g(t): ranks of the event times, robust to a long right tail.
    g = stats.rankdata(time[events])
    gc = g - g.mean()
    sxx = float(gc @ gc)
    u = gc @ r
    # Per-term score test (Therneau & Grambsch 2000, sec. 6.2; R survival cox.zph before 3.0).
    chi2 = d * (u @ cov) ** 2 / (np.diag(cov) * sxx)
    chi2_global = float(d * u @ cov @ u / sxx)
    rho = [stats.pearsonr(gc, scaled[:, k])[0] if np.std(scaled[:, k]) > 0 else np.nan for k in range(len(terms))]
    table = pd.DataFrame(
        {"rho": rho, "chi2": chi2, "df": 1, "p_value": stats.chi2.sf(chi2, 1)}, index=pd.Index(terms, name="term")
    )
    table.loc["GLOBAL"] = [np.nan, chi2_global, len(terms), stats.chi2.sf(chi2_global, len(terms))]
    table["df"] = table["df"].astype(int)
    residuals = pd.DataFrame(scaled, columns=terms)
    residuals.insert(0, "time", time[events])
    return table, residuals.sort_values("time", kind="stable").reset_index(drop=True)


def cox_proportional_hazards(
    churn: pd.DataFrame,
    *,
    covariates: tuple[str, ...] | list[str] = ("first_order_amount", "first_order_quantity", "cohort"),
    log2_covariates: tuple[str, ...] | list[str] = ("first_order_amount", "first_order_quantity"),
    ties: str = "efron",
    alpha: float = 0.05,
    max_iterations: int = 100,
    skip_absent: bool = False,
    errors: str = "raise",
) -> CoxResult:
    """Fit a Cox model of the churn hazard on covariates known at acquisition.

    Parameters
    ----------
    churn : DataFrame
        Output of :func:`time_to_churn`.
    covariates : sequence of str
        Columns of ``churn``; covariates the table does not have (``first_order_quantity``,
        ``channel`` in a log without them) must be left out.
    log2_covariates : sequence of str
        Numeric covariates entered as ``log2(1 + x)`` (hazard ratio per doubling).
    ties : {"efron", "breslow"}
    alpha : float
        1 - confidence level of the hazard-ratio intervals; also the level of the
        proportional-hazards verdict.
    max_iterations : int
        Newton iterations allowed before the fit counts as not converged.
    skip_absent : bool
        Leave out ``first_order_quantity`` and ``channel`` when the log has no quantity
        or channel column (named in ``notes``); other unknown names still raise.
    errors : {"raise", "report"}
        ``"report"`` returns a result carrying the message instead of raising.

    Returns
    -------
    CoxResult

    Raises
    ------
    ParamsError
        A covariate is not a column.
    ModelFitError
        A constant or collinear covariate, or the fit did not converge.
    DataValidationError
        Missing covariate values, or no churn event.
    """
    from statsmodels.duration.hazard_regression import PHReg
    from statsmodels.tools.sm_exceptions import ConvergenceWarning, HessianInversionWarning

    _check_errors_mode(errors)
    notes = []
    if skip_absent:
        absent = [c for c in covariates if c in OPTIONAL_LOG_COLUMNS and c not in churn.columns]
        if absent:
            notes.append(
                f"Left out {', '.join(absent)}: the transaction log has no such column "
                "(map it in column_map to use it)."
            )
            covariates = [c for c in covariates if c not in absent]
    try:
        _require_columns(churn, ["duration_days", "churned"], "time to churn", "the churn table")
        design, meanings = cox_design(churn, covariates, log2_covariates=log2_covariates)
        time = churn["duration_days"].to_numpy(dtype=float)
        status = churn["churned"].to_numpy(dtype=bool).astype(int)
        if status.sum() == 0:
            raise DataValidationError(
                f"no churn event among {len(churn):,} customers (all censored); lower lapse_days or use a longer log."
            )
        # Centre the columns: same hazard ratios, better conditioned Newton steps.
        x = design - design.mean()
        model = PHReg(time, x.to_numpy(), status=status, ties=ties)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = model.fit(method="newton", maxiter=max_iterations)
        trouble = [w for w in caught if issubclass(w.category, (ConvergenceWarning, HessianInversionWarning))]
        params = np.asarray(result.params)
        bse = np.asarray(result.bse)
        if trouble or not (np.all(np.isfinite(params)) and np.all(np.isfinite(bse))):
            reason = str(trouble[0].message).splitlines()[0] if trouble else "non-finite estimates"
            raise ModelFitError(
                f"the Cox model with covariates {list(covariates)} did not converge after {max_iterations} "
                f"iterations ({reason}); check for a covariate that separates churners from non-churners, "
                "or remove covariates from cox_covariates."
            )
    except (ParamsError, DataValidationError, ModelFitError) as exc:
        if errors == "raise":
            raise
        logger.info("Cox model not fitted: %s", exc)
        return CoxResult.failed(" ".join([str(exc), *notes]), covariates)

    terms = list(design.columns)
    z = stats.norm.ppf(1 - alpha / 2)
    hazard = pd.DataFrame(
        {
            "meaning": [meanings[t] for t in terms],
            "hazard_ratio": np.exp(params),
            "lower": np.exp(params - z * bse),
            "upper": np.exp(params + z * bse),
            "p_value": 2 * stats.norm.sf(np.abs(params / bse)),
            "coef": params,
            "se": bse,
        },
        index=pd.Index(terms, name="term"),
    )
    ph_test, scaled = _schoenfeld_test(result, time, status, terms)
    return CoxResult(
        hazard_ratios=hazard, ph_test=ph_test, scaled_schoenfeld=scaled, n=len(churn), events=int(status.sum()),
        covariates=tuple(covariates), alpha=alpha, log_likelihood=float(result.llf), notes=tuple(notes),
    )


# ---------------------------------------------------------------------------------------
# Calendar-period retention per cohort (the rates themselves are crm_lib.kpi's)
# ---------------------------------------------------------------------------------------


def retention_rates_by_cohort(
    transactions: pd.DataFrame, *, period: str = "Q", cohort_period: str = "M", min_cohort_size: int = 20
) -> pd.DataFrame:
    """Period-on-period retention and attrition rates of each acquisition cohort.

    The definitions are those of :func:`crm_lib.kpi.activity_by_period` (retention rate
    of period p: the share of the customers active in p - 1 who are active again in p;
    attrition = 1 - retention), applied to each cohort's customers separately.

    Parameters
    ----------
    transactions : DataFrame
        One row per purchase.
    period : {"W", "M", "Q", "Y"}
        Calendar period of the rates.
    cohort_period : {"W", "M", "Q", "Y"}
        Period of the first purchase that defines a cohort.
    min_cohort_size : int
        Smaller cohorts are left out (their rates are noise).

    Returns
    -------
    DataFrame
        Long format: ``cohort``, ``period`` (str), ``cohort_customers``,
        ``active_customers``, ``retained_customers``, ``retention_rate``,
        ``attrition_rate``; periods before a cohort's second period are left out.
    """
    from crm_lib.kpi import activity_by_period

    _require_columns(transactions, ["customer_id", "date"], "transactions", "column_map")
    first = pd.to_datetime(transactions.groupby("customer_id")["date"].transform("min"))
    cohort = first.dt.to_period(cohort_period).astype(str)
    frames = []
    for name, part in transactions.groupby(cohort, sort=True):
        size = part["customer_id"].nunique()
        if size < min_cohort_size:
            continue
        activity = activity_by_period(part, period)
        rates = activity[["active_customers", "retained_customers", "retention_rate", "attrition_rate"]].dropna()
        frames.append(rates.reset_index().assign(cohort=name, cohort_customers=size))
    if not frames:
        raise DataValidationError(
            f"no acquisition cohort ({cohort_period}) has {min_cohort_size} customers and two {period} periods; "
            "use a coarser cohort_period or lower min_group_size."
        )
    out = pd.concat(frames, ignore_index=True)
    out["period"] = out["period"].astype(str)
    return out[["cohort", "period", "cohort_customers", "active_customers", "retained_customers",
                "retention_rate", "attrition_rate"]]


__all__ = [
    "ACQUISITION_COLUMNS",
    "CoxResult",
    "KaplanMeierResult",
    "LogRankResult",
    "cox_design",
    "cox_proportional_hazards",
    "format_days",
    "format_lapse_sensitivity",
    "format_p",
    "p_text",
    "kaplan_meier",
    "lapse_sensitivity",
    "lapse_vs_p_alive",
    "log_rank_test",
    "retention_rates_by_cohort",
    "time_to_churn",
    "value_band_labels",
]
