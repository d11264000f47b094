"""Figures of the data overview: activity, retention and cohorts. Drawing only."""
from __future__ import annotations

import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.ticker import PercentFormatter

from crm_lib.kpi import PERIODS
from crm_lib.plots.theme import axes_or_new as _axes, money_formatter



def _period_labels(index: pd.Index) -> list[str]:
    return [str(p) for p in index]


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
    ax.set_title(f"Active customers per {PERIODS[period]}")
    ax.set_xlabel(PERIODS[period])
    ax.set_ylabel("active customers (count)")
    ax.yaxis.set_major_formatter(lambda v, _pos: f"{v:,.0f}")
    ax.tick_params(axis="x", rotation=90)
    ax.legend(title="customers")
    return ax


def plot_revenue(activity: pd.DataFrame, period: str = "M", currency: str = "USD", ax: Axes | None = None) -> Axes:
    """Revenue per period as bars."""
    ax = _axes(ax)
    ax.bar(_period_labels(activity.index), activity["revenue"], color=sns.color_palette()[2])
    ax.set_title(f"Revenue per {PERIODS[period]}")
    ax.set_xlabel(PERIODS[period])
    ax.set_ylabel(f"revenue ({currency})")
    ax.yaxis.set_major_formatter(money_formatter(currency))
    ax.tick_params(axis="x", rotation=90)
    return ax


def plot_retention_rates(activity: pd.DataFrame, period: str = "M", ax: Axes | None = None) -> Axes:
    """Period-on-period retention and attrition rates as lines, in percent."""
    ax = _axes(ax)
    rates = activity[["retention_rate", "attrition_rate"]].dropna()
    labels = _period_labels(rates.index)
    ax.plot(labels, rates["retention_rate"], marker="o", label="retention rate")
    ax.plot(labels, rates["attrition_rate"], marker="s", label="attrition rate")
    ax.set_ylim(0, 1)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_title(f"Retention and attrition, {PERIODS[period]} on {PERIODS[period]}")
    ax.set_xlabel(PERIODS[period])
    ax.set_ylabel(f"share of previous {PERIODS[period]}'s active customers (%)")
    ax.tick_params(axis="x", rotation=90)
    ax.legend()
    return ax


def plot_cohort_sizes(cohorts: pd.DataFrame, cohort_period: str = "M", ax: Axes | None = None) -> Axes:
    """New customers per acquisition cohort."""
    ax = _axes(ax)
    ax.bar(_period_labels(cohorts.index), cohorts["new_customers"], color=sns.color_palette()[1])
    ax.set_title(f"New customers per acquisition {PERIODS[cohort_period]}")
    ax.set_xlabel(f"acquisition cohort ({PERIODS[cohort_period]} of first purchase)")
    ax.set_ylabel("new customers (count)")
    ax.yaxis.set_major_formatter(lambda v, _pos: f"{v:,.0f}")
    ax.tick_params(axis="x", rotation=90)
    return ax


def plot_cohort_retention(retention: pd.DataFrame, cohort_period: str = "M", ax: Axes | None = None) -> Axes:
    """Heatmap of the share of each cohort active k periods after acquisition."""
    n_rows, n_cols = retention.shape
    ax = _axes(ax, figsize=(max(6.0, 0.55 * n_cols + 2), max(2.5, 0.4 * n_rows + 1.5)))
    sns.heatmap(
        retention * 100,
        ax=ax,
        annot=n_cols <= 24,
        fmt=".0f",
        cmap="Blues",
        vmin=0,
        vmax=100,
        cbar_kws={"label": "active customers (% of cohort)"},
        yticklabels=_period_labels(retention.index),
    )
    ax.grid(False)
    unit = PERIODS[cohort_period]
    ax.set_title(f"Cohort retention: % of each cohort active k {unit}s after acquisition")
    ax.set_xlabel(f"{unit}s since acquisition (k)")
    ax.set_ylabel(f"acquisition cohort ({unit})")
    return ax
