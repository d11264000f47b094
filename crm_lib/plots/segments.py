"""Figures of the segmentation analysis: segment sizes and value, the value x loyalty
portfolio, active versus passive loyalty, and migration between segments.

Every function takes results from :mod:`crm_lib.segments` and an optional ``ax``, draws,
titles and labels the axes with units, sets a caption with the figure's numbers and returns
the ``Axes``. Nothing is computed here beyond what drawing needs. Customer scatters become
2-D histograms above :data:`~crm_lib.plots.theme.DENSITY_MIN_POINTS` customers.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes

from crm_lib.plots.theme import (
    DENSITY_MIN_POINTS,
    PALETTE,
    axes_or_new as _axes,
    draw_points,
    money_formatter,
    set_caption,
)
from crm_lib.segments import LoyaltyStatus, SegmentMigration, ValueLoyaltyPortfolio

__all__ = ["plot_segment_profile", "plot_portfolio", "plot_loyalty_status", "plot_migration"]


def _legend_and_caption(ax: Axes, caption: str, *, density: bool, n: int, ncol: int = 1, title: str | None = None) -> None:
    """Legend under the axes (on them it hides customers) and the caption, which says how the points are drawn."""
    ax.legend(title=title, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=ncol, fontsize=9, title_fontsize=9,
              frameon=False, markerscale=2)
    drawn = (f"With {n:,} customers (more than {DENSITY_MIN_POINTS:,}) the points are drawn as a 2-D histogram: "
             "the darker a cell, the more customers in it (log scale)." if density else f"One dot per customer ({n:,}).")
    set_caption(ax, f"{caption} {drawn}")


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
    sns.barplot(data=long, y="segment", x="percent", hue="share of", orient="h", ax=ax,
                palette=PALETTE[:2])
    ax.set_xlabel("share of all customers / of all revenue (%)")
    ax.set_ylabel("RFM segment (best first)")
    ax.set_title("RFM segments: share of customers and of revenue")
    best, richest = profile.index[0], profile["share_of_revenue"].idxmax()
    set_caption(ax, f"Share of customers (blue) and of revenue (orange) per RFM segment, best first. {best.capitalize()} "
                    f"are {profile.loc[best, 'share_of_customers']:.1%} of customers and bring "
                    f"{profile.loc[best, 'share_of_revenue']:.1%} of revenue"
                    + (f"; the most revenue comes from {richest} ({profile.loc[richest, 'share_of_revenue']:.1%})."
                       if richest != best else "."))
    return ax


def plot_portfolio(portfolio: ValueLoyaltyPortfolio, ax: Axes | None = None, *, currency: str = "USD") -> Axes:
    """Every customer's value against loyalty, the split lines and the four named cells.

    Value is drawn on a symmetric-log axis (linear below 10 currency units) so that
    customers with no value stay visible. The cells are named in the legend below the
    chart, not on it, so no label hides customers.

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
    ax = _axes(ax, (8.0, 6.0))
    table, cells = portfolio.customers, portfolio.cells
    colors = dict(zip(cells.index, PALETTE))
    labels = {cell: f"{row['action'].upper()}: {cell} ({int(row['customers']):,} customers, {row['share_of_value']:.0%} of value)"
              for cell, row in cells.iterrows()}
    ax.set_xscale("symlog", linthresh=10)
    density = draw_points(ax, table["value"], table["loyalty"], groups=table["portfolio_cell"], colors=colors,
                          labels=labels)
    ax.axvline(portfolio.value_threshold, color="0.2", linestyle="--", linewidth=1)
    ax.axhline(portfolio.loyalty_split, color="0.2", linestyle="--", linewidth=1)
    low, high = max(table["value"].min(), 0), table["value"].max()
    ax.set_xlim(low, high * 1.5 if high > 0 else 1)
    ax.set_ylim(-0.02, 1.02)
    ax.xaxis.set_major_formatter(money_formatter(currency))
    ax.set_xlabel(f"business potential: {portfolio.value_basis} per customer ({currency}, symlog scale)")
    ax.set_ylabel(f"loyalty: {portfolio.loyalty_basis} (0 to 1)")
    ax.set_title("Value x loyalty portfolio: four cells, four actions")
    retain = cells["share_of_value"].idxmax()
    _legend_and_caption(
        ax, f"Customers by {portfolio.value_basis} (x) and {portfolio.loyalty_basis} (y); dashed lines: high value "
            f"above {portfolio.value_threshold:,.2f} {currency}, high loyalty at {portfolio.loyalty_split:g} or more. "
            f"The {retain} cell holds {cells.loc[retain, 'share_of_value']:.1%} of value with "
            f"{cells.loc[retain, 'share_of_customers']:.1%} of customers.",
        density=density, n=len(table), title="action: cell")
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
    ax = _axes(ax, (8.0, 5.5))
    # A NumPy mask: a boolean Series made the index keep its millions of ids as Python strings.
    table = loyalty.customers[(loyalty.customers["loyalty_status"] != "short relationship").to_numpy()]
    colors = {"active": PALETTE[0], "passive": PALETTE[1]}
    counts = table["loyalty_status"].value_counts()
    density = draw_points(ax, table["mean_interpurchase_days"], table["days_since_last_purchase"],
                          groups=table["loyalty_status"], colors=colors,
                          labels={s: f"{s} ({int(counts.get(s, 0)):,})" for s in colors})
    gaps = np.linspace(0, max(float(table["mean_interpurchase_days"].max()), 1.0) if len(table) else 1.0, 50)
    ax.plot(gaps, loyalty.silence_ratio * gaps, color="0.2", linestyle="--", linewidth=1,
            label=f"silence = {loyalty.silence_ratio:g} x usual gap")
    ax.axhline(loyalty.min_silence_days, color="0.2", linestyle=":", linewidth=1,
               label=f"silence = {loyalty.min_silence_days} days")
    if len(table):
        ax.set_ylim(0, float(table["days_since_last_purchase"].max()) * 1.03 + 1)
    ax.set_xlabel("own mean time between purchases (days)")
    ax.set_ylabel("days since last purchase (days)")
    ax.set_title("Active vs passive loyalty among long-lived customers")
    passive = int(counts.get("passive", 0))
    _legend_and_caption(
        ax, f"Long-lived customers by their usual gap between purchases (x) and their current silence (y): "
            f"{passive:,} of {len(table):,} ({passive / max(len(table), 1):.1%}) are passive, silent for more "
            f"than {loyalty.silence_ratio:g} times their usual gap (dashed) and at least "
            f"{loyalty.min_silence_days} days (dotted).", density=density, n=len(table), ncol=2)
    return ax


def plot_migration(migration: SegmentMigration, ax: Axes | None = None) -> Axes:
    """Transition matrix between segments as a heatmap of row shares (%); empty rows are
    hatched and labelled "no customers", without gridlines.

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
    ax.grid(False)
    empty = [i for i, (_, row) in enumerate(shares.iterrows()) if row.isna().all()]
    for i in empty:
        ax.add_patch(plt.Rectangle((0, i), shares.shape[1], 1, fill=False, hatch="//", edgecolor="0.75", linewidth=0))
        ax.text(shares.shape[1] / 2, i + 0.5, "no customers in this segment at calibration end", ha="center",
                va="center", fontsize=9, color="0.35")
    ax.set_xlabel(f"segment at {migration.observation_end:%Y-%m-%d} (end of data)")
    ax.set_ylabel(f"segment at {migration.calibration_end:%Y-%m-%d} (calibration end)")
    ax.set_title(
        f"Segment migration: {migration.moved_up:.0%} moved up, {migration.stayed:.0%} stayed, "
        f"{migration.moved_down:.0%} moved down"
    )
    ax.tick_params(axis="x", rotation=40)
    for label in ax.get_xticklabels():
        label.set_horizontalalignment("right")
    total = int(migration.counts.to_numpy().sum())
    set_caption(ax, f"Where the {total:,} customers in a segment at {migration.calibration_end:%Y-%m-%d} are at "
                    f"{migration.observation_end:%Y-%m-%d}: each row sums to 100%. {migration.moved_up:.1%} moved to a "
                    f"better segment, {migration.stayed:.1%} stayed and {migration.moved_down:.1%} moved to a worse one."
                    + (f" {len(empty)} segment{'s' if len(empty) != 1 else ''} had no customers at calibration end "
                       f"(hatched row{'s' if len(empty) != 1 else ''})." if empty else ""))
    return ax
