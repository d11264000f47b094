"""Figures of retention and survival: Kaplan-Meier curves, hazard ratios, the
proportional-hazards check and sBG projections (calendar-period retention
rates are drawn by :mod:`crm_lib.plots.overview`).

Every function takes computed results (from :mod:`crm_lib.survival` or
:mod:`crm_lib.retention`) and an optional ``ax``, draws, labels the axes with units and
returns the ``Axes``. A result that carries an ``error`` is drawn as a titled panel with
the message, so a report still shows why the figure is missing.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.ticker import FuncFormatter, PercentFormatter

from crm_lib.survival import CoxResult, KaplanMeierResult
from crm_lib.plots.theme import axes_or_new as _axes



def _message_panel(ax: Axes, title: str, message: str) -> Axes:
    import textwrap

    ax.set_title(title)
    ax.text(0.5, 0.5, "\n".join(textwrap.wrap(message, 70)), ha="center", va="center", transform=ax.transAxes, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    return ax


def plot_kaplan_meier(
    km: KaplanMeierResult, *, ax: Axes | None = None, max_days: float | None = None, title: str | None = None
) -> Axes:
    """Kaplan-Meier retention curves with their pointwise bands, one line per group.

    Parameters
    ----------
    km : KaplanMeierResult
        From :func:`crm_lib.survival.kaplan_meier`.
    ax : Axes, optional
    max_days : float, optional
        Right end of the time axis.
    title : str, optional
        Defaults to "Retention by <group>".

    Returns
    -------
    Axes
    """
    ax = _axes(ax)
    title = title or f"Retention by {km.group_col}" if km.group_col else (title or "Retention of all customers")
    if km.error:
        return _message_panel(ax, title, f"Not available: {km.error}")
    for group, curve in km.curves.groupby("group", sort=False):
        # Every curve starts at 100% at day 0, before any churn (a churn at day 0 drops it at once).
        time = np.r_[0.0, curve["time"].to_numpy()]
        lines = ax.step(time, np.r_[1.0, curve["survival"].to_numpy()], where="post",
                        label=f"{group} (n={int(km.medians.loc[group, 'customers']):,})")
        ax.fill_between(time, np.r_[1.0, curve["lower"].to_numpy()], np.r_[1.0, curve["upper"].to_numpy()],
                        step="post", alpha=0.2, color=lines[0].get_color(), linewidth=0)
        if curve["survival"].iloc[-1] > 0:
            # The curve stops where the data stop identifying it (no later churn can show yet):
            # mark the end so it is not read as a flat tail.
            ax.plot(time[-1], curve["survival"].iloc[-1], marker="|", markersize=12, color=lines[0].get_color())
    ax.set_xlabel("days since first purchase")
    ax.set_ylabel("customers not yet churned (%)")
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_ylim(0, 1.02)
    right = max_days if max_days is not None else float(km.curves["time"].max())
    # A small margin left of day 0 shows the drop at day 0 (one-time buyers).
    ax.set_xlim(-0.01 * right, right)
    ax.set_title(f"{title} ({1 - km.alpha:.0%} bands; | = end of the data)")
    ax.legend(title=km.group_col or None, fontsize=8)
    return ax


def plot_lapse_sensitivity(sensitivity: pd.DataFrame, *, horizon_days: float = 365, ax: Axes | None = None) -> Axes:
    """Retention at the horizon, with its interval, against the lapse threshold.

    Parameters
    ----------
    sensitivity : DataFrame
        From :func:`crm_lib.survival.lapse_sensitivity`.
    horizon_days : float
        The horizon the table was computed for (for the labels).
    """
    ax = _axes(ax)
    x = sensitivity.index.to_numpy(dtype=float)
    y = sensitivity["retention_at_horizon"].to_numpy(dtype=float)
    err = np.vstack([y - sensitivity["retention_lower"], sensitivity["retention_upper"] - y])
    ax.errorbar(x, y, yerr=err, marker="o", capsize=3)
    ax.set_xlabel("lapse threshold (days without purchase)")
    ax.set_ylabel(f"retention at {horizon_days:,.0f} days (%)")
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_ylim(0, max(0.05, float(np.nanmax(sensitivity["retention_upper"])) * 1.15))
    ax.set_title(f"How {horizon_days:,.0f}-day retention depends on the lapse definition")
    return ax


def plot_hazard_ratios(cox: CoxResult, *, ax: Axes | None = None) -> Axes:
    """Forest plot: hazard ratio and interval of every term, on a log scale, 1 marked.

    Parameters
    ----------
    cox : CoxResult
        From :func:`crm_lib.survival.cox_proportional_hazards`.
    """
    ax = _axes(ax)
    title = "Churn hazard ratios (Cox model)"
    if cox.error:
        return _message_panel(ax, title, f"Not available: {cox.error}")
    hr = cox.hazard_ratios.iloc[::-1]
    y = np.arange(len(hr))
    ax.errorbar(hr["hazard_ratio"], y, xerr=[hr["hazard_ratio"] - hr["lower"], hr["upper"] - hr["hazard_ratio"]],
                fmt="o", capsize=3)
    ax.axvline(1.0, color="grey", linestyle="--", linewidth=1)
    ax.set_yticks(y, [f"{t}\n{m}" for t, m in zip(hr.index, hr["meaning"])], fontsize=8)
    ax.set_xscale("log")
    ticks = FuncFormatter(lambda value, _pos: f"{value:.2f}")
    ax.xaxis.set_major_formatter(ticks)
    ax.xaxis.set_minor_formatter(ticks)
    ax.tick_params(axis="x", which="minor", labelsize=7)
    ax.set_xlabel(f"hazard ratio (log scale; <1 = customers stay longer; {1 - cox.alpha:.0%} interval)")
    ax.set_title(title)
    return ax


def plot_schoenfeld(cox: CoxResult, *, ax: Axes | None = None, bins: int = 20) -> Axes:
    """Scaled Schoenfeld residuals against time, binned means per term: flat lines = PH holds.

    The mean of the scaled residuals at time t estimates the coefficient (log hazard ratio)
    at t (Grambsch & Therneau 1994), drawn here minus the fitted coefficient so every term
    shares the zero line. Bins hold about equal numbers of churn events
    (tied times share a bin).

    Parameters
    ----------
    cox : CoxResult
    bins : int
        Number of equal-count bins of churn time.
    """
    ax = _axes(ax)
    title = "Proportional-hazards check: effect drift over time"
    if cox.error:
        return _message_panel(ax, title, f"Not available: {cox.error}")
    res = cox.scaled_schoenfeld
    # Tied churn times stay in one bin (many customers churn at day 0).
    edges = pd.qcut(res["time"], q=min(bins, len(res)), labels=False, duplicates="drop")
    binned = res.groupby(edges).mean()
    for term in cox.hazard_ratios.index:
        ax.plot(binned["time"], binned[term] - cox.hazard_ratios.loc[term, "coef"], marker=".", label=term)
    ax.axhline(0.0, color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel("days since first purchase at churn (bin means)")
    ax.set_ylabel("log hazard ratio minus its average")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return ax


def plot_cohort_retention_rates(rates: pd.DataFrame, *, ax: Axes | None = None, period_label: str = "quarter") -> Axes:
    """Retention rate per calendar period, one line per acquisition cohort.

    Parameters
    ----------
    rates : DataFrame
        From :func:`crm_lib.survival.retention_rates_by_cohort`.
    period_label : str
        Name of one period ("quarter", "month").
    """
    ax = _axes(ax)
    periods = sorted(rates["period"].unique())
    position = {p: i for i, p in enumerate(periods)}
    for cohort, part in rates.groupby("cohort", sort=True):
        ax.plot([position[p] for p in part["period"]], part["retention_rate"], marker="o",
                label=f"{cohort} (n={int(part['cohort_customers'].iloc[0]):,})")
    ax.set_xticks(range(len(periods)), periods, rotation=45, ha="right")
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_ylim(0, 1)
    ax.set_xlabel(period_label)
    ax.set_ylabel(f"share of previous {period_label}'s active customers (%)")
    ax.set_title(f"Retention rate {period_label} on {period_label}, by acquisition cohort")
    ax.legend(title="cohort", fontsize=8)
    return ax


def plot_sbg_survival(projection: pd.DataFrame, *, ax: Axes | None = None, period_label: str = "year") -> Axes:
    """Observed survivors (points) and the sBG fit and projection (lines), per cohort.

    Parameters
    ----------
    projection : DataFrame
        From :meth:`crm_lib.retention.ShiftedBetaGeometricFitter.projection` (several
        cohorts may be concatenated).
    period_label : str
        Name of one period ("year", "month").
    """
    ax = _axes(ax)
    for cohort, part in projection.groupby("cohort", sort=False):
        share = part["survivors_expected"] / part["survivors_expected"].iloc[0]
        line = ax.plot(part["period"], share, label=f"{cohort}: sBG")
        observed = part[part["observed"]]
        ax.plot(observed["period"], observed["survivors_observed"] / observed["survivors_observed"].iloc[0], "o",
                color=line[0].get_color(), label=f"{cohort}: observed")
        last = observed["period"].max()
    ax.axvline(last + 0.5, color="grey", linestyle=":", linewidth=1)
    ax.text(last + 0.6, 0.97, "projection →", transform=ax.get_xaxis_transform(), fontsize=8, va="top")
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_ylim(0, 1.02)
    ax.set_xlabel(f"{period_label}s since acquisition")
    ax.set_ylabel("customers still active (% of cohort)")
    ax.set_title("Survival: observed and shifted-beta-geometric projection")
    ax.legend(fontsize=8)
    return ax


def plot_sbg_retention(projection: pd.DataFrame, *, ax: Axes | None = None, period_label: str = "year") -> Axes:
    """Observed and expected retention rates r_t per cohort: the rise heterogeneity causes.

    Parameters
    ----------
    projection : DataFrame
        From :meth:`crm_lib.retention.ShiftedBetaGeometricFitter.projection`.
    period_label : str
    """
    ax = _axes(ax)
    for cohort, part in projection[projection["period"] >= 1].groupby("cohort", sort=False):
        line = ax.plot(part["period"], part["retention_expected"], label=f"{cohort}: sBG")
        observed = part[part["observed"]]
        ax.plot(observed["period"], observed["retention_observed"], "o", color=line[0].get_color(),
                label=f"{cohort}: observed")
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_ylim(0, 1)
    ax.set_xlabel(f"{period_label} (renewal decision)")
    ax.set_ylabel("retention rate: renewed / active before (%)")
    ax.set_title("Retention rates rise as the likely churners leave")
    ax.legend(fontsize=8)
    return ax


__all__ = [
    "plot_cohort_retention_rates",
    "plot_hazard_ratios",
    "plot_kaplan_meier",
    "plot_lapse_sensitivity",
    "plot_sbg_retention",
    "plot_sbg_survival",
    "plot_schoenfeld",
]
