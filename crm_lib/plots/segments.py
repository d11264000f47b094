"""Figures of the segmentation analysis: segment sizes and value, the value x loyalty
portfolio, active versus passive loyalty, and migration between segments.

Every function takes results from :mod:`crm_lib.segments` and an optional ``ax``, draws,
titles and labels the axes with units, and returns the ``Axes``. Nothing is computed here
beyond what drawing needs.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes

from crm_lib.plots.theme import axes_or_new as _axes, money_formatter
from crm_lib.segments import LoyaltyStatus, SegmentMigration, ValueLoyaltyPortfolio

__all__ = ["plot_segment_profile", "plot_portfolio", "plot_loyalty_status", "plot_migration"]



def plot_segment_profile(profile: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Share of customers next to share of revenue for every segment.

    Parameters
    ----------
    profile : DataFrame
        From :func:`crm_lib.segments.segment_profile` (best segment first).
    ax : Axes, optional

    Returns
    -------
    Axes
    """
    ax = _axes(ax, (8.0, 0.45 * len(profile) + 1.5))
    long = (
        profile[["share_of_customers", "share_of_revenue"]]
        .rename(columns={"share_of_customers": "customers", "share_of_revenue": "revenue"})
        .mul(100)
        .reset_index()
        .melt(id_vars="segment", var_name="share of", value_name="percent")
    )
    sns.barplot(data=long, y="segment", x="percent", hue="share of", orient="h", ax=ax)
    ax.set_xlabel("share of all customers / of all revenue (%)")
    ax.set_ylabel("RFM segment (best first)")
    ax.set_title("RFM segments: share of customers and of revenue")
    return ax


def plot_portfolio(portfolio: ValueLoyaltyPortfolio, ax: Axes | None = None, *, currency: str = "USD") -> Axes:
    """Every customer's value against loyalty, the split lines and the four named cells.

    Value is drawn on a symmetric-log axis (linear below 10 currency units) so that
    customers with no value stay visible.

    Parameters
    ----------
    portfolio : ValueLoyaltyPortfolio
    ax : Axes, optional
    currency : str
        Currency of the value axis.

    Returns
    -------
    Axes
    """
    ax = _axes(ax, (8.0, 5.5))
    table = portfolio.customers
    colors = dict(zip(portfolio.cells.index, sns.color_palette(n_colors=len(portfolio.cells))))
    for cell, group in table.groupby("portfolio_cell", sort=False):
        ax.scatter(group["value"], group["loyalty"], s=6, alpha=0.25, color=colors[cell], linewidths=0, rasterized=True)
    ax.set_xscale("symlog", linthresh=10)
    ax.axvline(portfolio.value_threshold, color="0.2", linestyle="--", linewidth=1)
    ax.axhline(portfolio.loyalty_split, color="0.2", linestyle="--", linewidth=1)
    low, high = max(table["value"].min(), 0), table["value"].max()
    positions = {
        "high value, high loyalty": (0.98, 0.97, "right", "top"),
        "high value, low loyalty": (0.98, 0.03, "right", "bottom"),
        "low value, high loyalty": (0.02, 0.97, "left", "top"),
        "low value, low loyalty": (0.02, 0.03, "left", "bottom"),
    }
    for cell, row in portfolio.cells.iterrows():
        x, y, ha, va = positions[cell]
        ax.text(
            x, y,
            f"{row['action'].upper()}\n{cell}\n{int(row['customers']):,} customers, {row['share_of_value']:.0%} of value",
            transform=ax.transAxes, ha=ha, va=va, fontsize=8.5, color=colors[cell],
            bbox={"facecolor": "white", "alpha": 0.85, "edgecolor": colors[cell], "boxstyle": "round,pad=0.3"},
        )
    ax.set_xlim(low, high * 1.5 if high > 0 else 1)
    ax.set_ylim(-0.02, 1.02)
    ax.xaxis.set_major_formatter(money_formatter(currency))
    ax.set_xlabel(f"business potential: {portfolio.value_basis} per customer ({currency}, symlog scale)")
    ax.set_ylabel(f"loyalty: {portfolio.loyalty_basis} (0 to 1)")
    ax.set_title("Value x loyalty portfolio: four cells, four actions")
    return ax


def plot_loyalty_status(loyalty: LoyaltyStatus, ax: Axes | None = None) -> Axes:
    """Long-lived customers: current silence against their own usual gap, by status.

    Customers above the dashed line (silence = ``silence_ratio`` x usual gap) and the
    dotted one (``min_silence_days``) are passive.

    Parameters
    ----------
    loyalty : LoyaltyStatus
    ax : Axes, optional

    Returns
    -------
    Axes
    """
    ax = _axes(ax, (8.0, 5.0))
    table = loyalty.customers[loyalty.customers["loyalty_status"] != "short relationship"]
    palette = dict(zip(("active", "passive"), sns.color_palette(n_colors=2)))
    for status, group in table.groupby("loyalty_status"):
        ax.scatter(
            group["mean_interpurchase_days"], group["days_since_last_purchase"], s=6, alpha=0.3,
            color=palette[status], linewidths=0, rasterized=True, label=f"{status} ({len(group):,})",
        )
    gaps = np.linspace(0, max(float(table["mean_interpurchase_days"].max()), 1.0) if len(table) else 1.0, 50)
    ax.plot(gaps, loyalty.silence_ratio * gaps, color="0.2", linestyle="--", linewidth=1,
            label=f"silence = {loyalty.silence_ratio:g} x usual gap")
    ax.axhline(loyalty.min_silence_days, color="0.2", linestyle=":", linewidth=1,
               label=f"silence = {loyalty.min_silence_days} days")
    ax.set_xlabel("own mean time between purchases (days)")
    ax.set_ylabel("days since last purchase (days)")
    ax.set_title("Active vs passive loyalty among long-lived customers")
    ax.legend(loc="upper right", fontsize=8, markerscale=3)
    return ax


def plot_migration(migration: SegmentMigration, ax: Axes | None = None) -> Axes:
    """Transition matrix between segments as a heatmap of row shares (%).

    Parameters
    ----------
    migration : SegmentMigration
    ax : Axes, optional

    Returns
    -------
    Axes
    """
    shares = migration.shares
    ax = _axes(ax, (9.0, 0.5 * len(shares) + 2.0))
    sns.heatmap(
        shares.mul(100), annot=True, fmt=".0f", cmap="Blues", vmin=0, vmax=100, linewidths=0.5,
        cbar_kws={"label": "share of the row's customers (%)"}, ax=ax,
    )
    ax.set_xlabel(f"segment at {migration.observation_end:%Y-%m-%d} (end of data)")
    ax.set_ylabel(f"segment at {migration.calibration_end:%Y-%m-%d} (calibration end)")
    ax.set_title(
        f"Segment migration: {migration.moved_up:.0%} moved up, {migration.stayed:.0%} stayed, "
        f"{migration.moved_down:.0%} moved down"
    )
    ax.tick_params(axis="x", rotation=40)
    for label in ax.get_xticklabels():
        label.set_horizontalalignment("right")
    return ax
