"""Kaplan-Meier retention curves and the log-rank test."""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from crm_lib.exceptions import DataValidationError, ParamsError

from crm_lib.survival._common import (
    _check_errors_mode,
    _error_table,
    _followed,
    _interval_text,
    _require_columns,
    format_days,
    p_text,
)

logger = logging.getLogger(__name__)

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
        ends = self.curves.groupby("group", sort=False)["time"].max()
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
                f"retention at {horizon_days:,.0f} days": (
                    f"not identified (curve ends at {ends[group]:,.0f} days)"
                    if np.isnan(at.loc[group, "survival"]) else pct(at.loc[group, "survival"])),
                f"retention {level} interval": "n/a" if np.isnan(at.loc[group, "lower"]) else
                f"{pct(at.loc[group, 'lower'])} to {pct(at.loc[group, 'upper'])}",
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


def _followed_groups(churn: pd.DataFrame, group_col: str | None, min_group_size: int):
    """The churn table checked, the customers never followed left out, and split into groups.

    Returns the ``(group, rows)`` pairs and the notes on what was left out (unfollowed first).
    """
    _require_columns(churn, ["duration_days", "churned"], "time to churn", "the churn table")
    if churn.empty:
        raise DataValidationError("the churn table has no rows (no customer to follow); build it with "
                                  "crm_lib.survival.time_to_churn on a log with purchases in the window.")
    churn, unfollowed = _followed(churn)
    groups, notes = _split_groups(churn, group_col, min_group_size)
    return groups, unfollowed + notes


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
        groups, notes = _followed_groups(churn, group_col, min_group_size)
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
        groups, notes = _followed_groups(churn, group_col, min_group_size)
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


