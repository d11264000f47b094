"""Figures of retention and survival: Kaplan-Meier curves, hazard ratios, the
proportional-hazards check and sBG projections (calendar-period retention
rates are drawn by :mod:`crm_lib.plots.overview`).

Every function takes computed results (from :mod:`crm_lib.survival` or
:mod:`crm_lib.retention`) and an optional ``ax``, draws, labels the axes with units and
returns the ``Axes`` with a caption that states the figure's numbers. A result that carries
an ``error`` is drawn as a titled panel with the message, so a report still shows why the
figure is missing. Series differ in colour (Okabe-Ito) and in marker or line style.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.ticker import FuncFormatter, PercentFormatter

from crm_lib.format import column_label
from crm_lib.survival import CoxResult, KaplanMeierResult
from crm_lib.plots.theme import axes_or_new as _axes, series_style, set_caption, wrap_label



def _message_panel(ax: Axes, title: str, message: str) -> Axes:
    import textwrap

    ax.set_title(title)
    ax.text(0.5, 0.5, "\n".join(textwrap.wrap(message, 70)), ha="center", va="center", transform=ax.transAxes, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    set_caption(ax, f"{title}: {message}")
    return ax


def _legend_below(ax: Axes, title: str | None = None, ncol: int = 2) -> None:
    """The legend under the axes, where it hides no line."""
    ax.legend(title=title, fontsize=8, title_fontsize=9, loc="upper center", bbox_to_anchor=(0.5, -0.2),
              ncol=ncol, frameon=False)


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
    grouping = column_label(km.group_col) if km.group_col else None  # the grouping in words, not its column name
    title = title or (f"Retention by {grouping}" if grouping else "Retention of all customers")
    if km.error:
        return _message_panel(ax, title, f"Not available: {km.error}")
    for i, (group, curve) in enumerate(km.curves.groupby("group", sort=False)):
        # Every curve starts at 100% at day 0, before any churn (a churn at day 0 drops it at once).
        time = np.r_[0.0, curve["time"].to_numpy()]
        style = series_style(i)
        lines = ax.step(time, np.r_[1.0, curve["survival"].to_numpy()], where="post", color=style["color"],
                        linestyle=style["linestyle"], label=f"{group} (n={int(km.medians.loc[group, 'customers']):,})")
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
    _legend_below(ax, grouping)
    ends = km.curves.groupby("group", sort=False).last()
    set_caption(ax, f"Kaplan-Meier share of customers not yet churned against days since their first purchase, "
                    f"{'one curve per ' + grouping if grouping else 'all customers'}, with "
                    f"{1 - km.alpha:.0%} pointwise bands; a bar marks where a curve's data end. At its end "
                    + "; ".join(f"{'' if g == 'all' else str(g) + ': '}{row['survival']:.1%} remain after {row['time']:,.0f} days"
                                for g, row in ends.iterrows()) + ".")
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
    known = sensitivity["retention_at_horizon"].dropna()
    set_caption(ax, f"Retention {horizon_days:,.0f} days after the first purchase, with its interval, for each lapse "
                    "threshold (days without a purchase that count as churn). "
                    + (f"It moves from {known.min():.1%} to {known.max():.1%} between thresholds of "
                       f"{known.index.min():,} and {known.index.max():,} days." if len(known) > 1 else
                       f"Only a threshold of {known.index[0]:,} days identifies it: {known.iloc[0]:.1%}; longer "
                       "thresholds need more silent days before the end of the data than there are."
                       if len(known) else "No threshold shown identifies it with these data."))
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
    ax.set_yticks(y, [f"{column_label(t)}\n{m}" for t, m in zip(hr.index, hr["meaning"])], fontsize=8)
    ax.set_xscale("log")
    ticks = FuncFormatter(lambda value, _pos: f"{value:.2f}")
    ax.xaxis.set_major_formatter(ticks)
    ax.xaxis.set_minor_formatter(ticks)
    ax.tick_params(axis="x", which="minor", labelsize=7)
    ax.set_xlabel(f"hazard ratio (log scale; <1 = customers stay longer; {1 - cox.alpha:.0%} interval)")
    ax.set_title(title)
    strongest = (np.log(cox.hazard_ratios["hazard_ratio"])).abs().idxmax()
    set_caption(ax, f"Hazard ratio of churn for each term of the Cox model with its {1 - cox.alpha:.0%} interval "
                    f"({cox.n:,} customers, {cox.events:,} churn events); left of the dashed line at 1 customers stay "
                    f"longer. The largest effect is {column_label(strongest)}: hazard ratio "
                    f"{cox.hazard_ratios.loc[strongest, 'hazard_ratio']:.2f} "
                    f"({cox.hazard_ratios.loc[strongest, 'lower']:.2f} to {cox.hazard_ratios.loc[strongest, 'upper']:.2f}).")
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
    for i, term in enumerate(cox.hazard_ratios.index):
        ax.plot(binned["time"], binned[term] - cox.hazard_ratios.loc[term, "coef"], label=column_label(term),
                markersize=5, clip_on=False, zorder=3, **series_style(i))
    ax.axhline(0.0, color="grey", linestyle="--", linewidth=1)
    ax.margins(x=0.03)
    ax.set_xlabel("days since first purchase at churn (bin means)")
    ax.set_ylabel("log hazard ratio minus its average")
    ax.set_title(title)
    _legend_below(ax, "term")
    terms = cox.ph_test.drop(index="GLOBAL", errors="ignore")
    doubtful = terms.index[terms["p_value"] < cox.alpha].tolist()
    set_caption(ax, f"Mean scaled Schoenfeld residual of each term, minus its coefficient, in {len(binned)} bins of equal "
                    "numbers of churn events: a flat line at 0 means the hazard ratio is constant over time. "
                    + (f"The test doubts a constant effect for {', '.join(map(column_label, doubtful))}."
                       if doubtful else "The test finds no evidence against constant effects."))
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
    for i, (cohort, part) in enumerate(rates.groupby("cohort", sort=True)):
        ax.plot([position[p] for p in part["period"]], part["retention_rate"], markersize=5, **series_style(i),
                label=f"{cohort} (n={int(part['cohort_customers'].iloc[0]):,})")
    ax.set_xticks(range(len(periods)), periods, rotation=45, ha="right")
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_ylim(0, 1)
    ax.set_xlabel(period_label)
    ax.set_ylabel(wrap_label(f"share of previous {period_label}'s active customers (%)", 30))
    ax.set_title(f"Retention rate {period_label} on {period_label}, by acquisition cohort")
    _legend_below(ax, "cohort", ncol=3)
    set_caption(ax, f"Share of each acquisition cohort's customers active in one {period_label} who buy again in the "
                    f"next, one line per cohort ({rates['cohort'].nunique()} cohorts); rates range from "
                    f"{rates['retention_rate'].min():.1%} to {rates['retention_rate'].max():.1%}.")
    return ax


def _cohort_fit_lines(ax: Axes, projection: pd.DataFrame, expected: pd.Series, observed: pd.Series, *,
                      top: float = 1.0) -> float:
    """Per cohort a line of the model's values and dots of the observed ones, on a 0-``top`` percent
    axis with the legend below; the last observed period."""
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_ylim(0, top)
    last = np.nan
    for i, (cohort, part) in enumerate(projection.groupby("cohort", sort=False)):
        style = series_style(i)
        ax.plot(part["period"], expected[part.index], color=style["color"], linestyle=style["linestyle"],
                label=f"{cohort}: sBG")
        seen = part[part["observed"]]
        ax.plot(seen["period"], observed[seen.index], style["marker"], color=style["color"], label=f"{cohort}: observed")
        last = np.nanmax([last, seen["period"].max()])
    _legend_below(ax)
    return last


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
    first = projection.groupby("cohort", sort=False)
    expected = projection["survivors_expected"] / first["survivors_expected"].transform("first")
    observed = projection["survivors_observed"] / first["survivors_observed"].transform("first")
    last = _cohort_fit_lines(ax, projection, expected, observed, top=1.02)
    ax.axvline(last + 0.5, color="grey", linestyle=":", linewidth=1)
    ax.text(last + 0.6, 0.97, "projection →", transform=ax.get_xaxis_transform(), fontsize=8, va="top")
    ax.set(xlabel=f"{period_label}s since acquisition", ylabel="customers still active (% of cohort)",
           title="Survival: observed and shifted-beta-geometric projection")
    end = projection.groupby("cohort", sort=False)["period"].transform("max") == projection["period"]
    set_caption(ax, f"Share of each cohort still active by {period_label}s since acquisition: dots observed, lines the "
                    f"shifted-beta-geometric fit, projected right of the dotted line. At the end of the projection "
                    + ", ".join(f"{c}: {v:.1%}" for c, v in zip(projection.loc[end, "cohort"], expected[end]))
                    + " are expected to remain.")
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
    later = projection[projection["period"] >= 1]
    _cohort_fit_lines(ax, later, later["retention_expected"], later["retention_observed"])
    ax.set(xlabel=f"{period_label} (renewal decision)", ylabel="retention rate: renewed / active before (%)",
           title="Retention rates rise as the likely churners leave")
    set_caption(ax, f"Share of the customers active before each {period_label} who renew, per cohort: dots observed, "
                    f"lines the shifted-beta-geometric model; expected rates rise from "
                    f"{later['retention_expected'].min():.1%} to {later['retention_expected'].max():.1%} as the likely "
                    "churners leave first.")
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
