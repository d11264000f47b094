"""Figures of the data overview: activity, retention and cohorts. Drawing only; every
function sets a caption with the figure's numbers (:func:`crm_lib.plots.theme.set_caption`)."""
from __future__ import annotations

import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.ticker import PercentFormatter

from crm_lib.kpi import PERIODS
from crm_lib.plots.theme import axes_or_new as _axes, money_formatter, set_caption, wrap_label



def _period_labels(index: pd.Index) -> list[str]:
    return [str(p) for p in index]


def _period_axes(ax: Axes, title: str, xlabel: str, ylabel: str, counts: bool = False) -> None:
    """Title, axis labels and the vertical period labels of a chart over periods; whole-number ticks for counts."""
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    if counts:
        ax.yaxis.set_major_formatter(lambda v, _pos: f"{v:,.0f}")
    ax.tick_params(axis="x", rotation=90)


def plot_active_customers(activity: pd.DataFrame, period: str = "M", ax: Axes | None = None) -> Axes:
    """Stacked bars of new and returning active customers per period.

    Parameters
    ----------
    activity : DataFrame
        Output of :func:`crm_lib.kpi.activity_by_period`.
    period : str
        The period of ``activity`` (for the axis label).
    ax : Axes, optional
    """
    ax = _axes(ax)
    labels = _period_labels(activity.index)
    ax.bar(labels, activity["returning_customers"], label="returning", color=sns.color_palette()[0])
    ax.bar(labels, activity["new_customers"], bottom=activity["returning_customers"], label="new",
           color=sns.color_palette()[1])
    _period_axes(ax, f"Active customers per {PERIODS[period]}", PERIODS[period], "active customers (count)", True)
    ax.legend(title="customers")
    busiest = activity["active_customers"].idxmax()
    set_caption(ax, f"Active customers per {PERIODS[period]}, returning (blue) and new (orange). The busiest "
                    f"{PERIODS[period]} is {busiest} with {int(activity.loc[busiest, 'active_customers']):,} customers, "
                    f"{int(activity.loc[busiest, 'new_customers']):,} of them new; the last, {activity.index[-1]}, has "
                    f"{int(activity['active_customers'].iloc[-1]):,}.")
    return ax


def plot_revenue(activity: pd.DataFrame, period: str = "M", currency: str = "USD", ax: Axes | None = None) -> Axes:
    """Revenue per period as bars."""
    ax = _axes(ax)
    ax.bar(_period_labels(activity.index), activity["revenue"], color=sns.color_palette()[2])
    _period_axes(ax, f"Revenue per {PERIODS[period]}", PERIODS[period], f"revenue ({currency})")
    ax.yaxis.set_major_formatter(money_formatter(currency))
    revenue = activity["revenue"]
    set_caption(ax, f"Revenue per {PERIODS[period]}: {revenue.sum():,.0f} {currency} in all; the highest {PERIODS[period]}, "
                    f"{revenue.idxmax()}, brought {revenue.max():,.0f} {currency} ({revenue.max() / revenue.sum():.1%}).")
    return ax


def plot_retention_rates(activity: pd.DataFrame, period: str = "M", ax: Axes | None = None) -> Axes:
    """Period-on-period retention and attrition rates as lines, in percent."""
    ax = _axes(ax)
    rates = activity[["retention_rate", "attrition_rate"]].dropna()
    labels = _period_labels(rates.index)
    ax.plot(labels, rates["retention_rate"], marker="o", label="retention rate")
    ax.plot(labels, rates["attrition_rate"], marker="s", linestyle="--", label="attrition rate")
    ax.set_ylim(0, 1)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    _period_axes(ax, f"Retention and attrition, {PERIODS[period]} on {PERIODS[period]}", PERIODS[period],
                 wrap_label(f"share of previous {PERIODS[period]}'s active customers (%)", 30))
    ax.legend()
    if len(rates):
        set_caption(ax, f"Share of each {PERIODS[period]}'s active customers who buy again the next {PERIODS[period]} "
                        f"(retention, blue) or do not (attrition, orange dashed). Retention ranges from "
                        f"{rates['retention_rate'].min():.1%} to {rates['retention_rate'].max():.1%}, "
                        f"median {rates['retention_rate'].median():.1%}.")
    return ax


def plot_cohort_sizes(cohorts: pd.DataFrame, cohort_period: str = "M", ax: Axes | None = None) -> Axes:
    """New customers per acquisition cohort."""
    ax = _axes(ax)
    ax.bar(_period_labels(cohorts.index), cohorts["new_customers"], color=sns.color_palette()[1])
    _period_axes(ax, f"New customers per acquisition {PERIODS[cohort_period]}",
                 f"acquisition cohort ({PERIODS[cohort_period]} of first purchase)", "new customers (count)", True)
    largest = cohorts["new_customers"].idxmax()
    set_caption(ax, f"New customers by the {PERIODS[cohort_period]} of their first purchase: "
                    f"{int((cohorts['new_customers'] > 0).sum())} cohorts; the largest, {largest}, has "
                    f"{int(cohorts.loc[largest, 'new_customers']):,} of {int(cohorts['new_customers'].sum()):,} customers.")
    return ax


def plot_cohort_retention(retention: pd.DataFrame, cohort_period: str = "M", ax: Axes | None = None) -> Axes:
    """Heatmap of the share of each cohort active k periods after acquisition."""
    n_rows, n_cols = retention.shape
    # Tall enough for the axis and colour-bar labels (on three cohorts they stuck out above the plot).
    ax = _axes(ax, figsize=(min(11.0, max(6.0, 0.5 * n_cols + 2.5)), max(3.6, 0.4 * n_rows + 2.2)))
    sns.heatmap(
        retention * 100,
        ax=ax,
        annot=n_cols <= 24,
        fmt=".0f",
        cmap="Blues",
        vmin=0,
        vmax=100,
        cbar_kws={"label": "active customers\n(% of cohort)"},
        yticklabels=_period_labels(retention.index),
    )
    ax.grid(False)
    unit = PERIODS[cohort_period]
    ax.set_title(f"Cohort retention: % of each cohort active k {unit}s after acquisition")
    ax.set_xlabel(f"{unit}s since acquisition (k)")
    ax.set_ylabel(wrap_label(f"acquisition cohort ({unit})", 16))
    ax.tick_params(axis="y", rotation=0)
    after_one = retention.iloc[:, 1] if n_cols > 1 else retention.iloc[:, 0]
    set_caption(ax, f"Share of each acquisition cohort that buys k {unit}s after its first {unit} (darker = more). "
                    + (f"One {unit} after acquisition {after_one.min():.0%} to {after_one.max():.0%} of a cohort is "
                       f"active (median {after_one.median():.0%})." if n_cols > 1 and after_one.notna().any() else ""))
    return ax
