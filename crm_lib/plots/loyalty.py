"""Figures of the loyalty-versus-profit analysis (Reinartz & Kumar 2000, 2002). Drawing only.

Every function takes results of :mod:`crm_lib.loyalty` and an optional ``ax``, labels
the axes with units and returns the ``Axes``; nothing here fits a model.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.ticker import MaxNLocator, PercentFormatter

from crm_lib.loyalty import SEGMENT_ORDER, LoyaltyMatrix
from crm_lib.plots.theme import axes_or_new as _axes, money_formatter

#: Unit names of the time units of crm_lib.summary, for axis labels.
UNIT_NAMES = {"D": "days", "W": "weeks", "h": "hours"}



def _segment_colors() -> dict[str, tuple]:
    palette = sns.color_palette(n_colors=len(SEGMENT_ORDER))
    return dict(zip(SEGMENT_ORDER, palette))


def plot_p_alive_paths(
    paths: pd.DataFrame,
    threshold: float,
    *,
    examples: pd.Series | None = None,
    time_unit: str = "D",
    ax: Axes | None = None,
) -> Axes:
    """P(alive) of a few customers against their age, with purchases and the threshold.

    Parameters
    ----------
    paths : DataFrame
        Output of :func:`crm_lib.loyalty.p_alive_path`.
    threshold : float
        The P(alive) threshold that ends a lifetime (dashed line).
    examples : Series, optional
        Customer id per loyalty-profit cell (:func:`crm_lib.loyalty.segment_examples`):
        curves are then labelled and coloured by cell, as in :func:`plot_duration_profit`.
    time_unit : {"D", "W", "h"}
        Unit of ``age``.
    ax : Axes, optional
    """
    ax = _axes(ax)
    colors = _segment_colors()
    cell_of = {} if examples is None else {cid: cell for cell, cid in examples.items()}
    customers = list(dict.fromkeys(paths["customer_id"]))
    if cell_of:
        customers.sort(key=lambda cid: SEGMENT_ORDER.index(cell_of[cid]) if cid in cell_of else len(SEGMENT_ORDER))
    for i, customer in enumerate(customers):
        path = paths[paths["customer_id"] == customer]
        cell = cell_of.get(customer)
        color = colors[cell] if cell else sns.color_palette()[i % 10]
        label = f"{cell} ({customer})" if cell else str(customer)
        ax.plot(path["age"], path["p_alive"], color=color, label=label, lw=1.6)
        bought = path[path["purchase"]]
        ax.plot(bought["age"], bought["p_alive"], "o", color=color, ms=4)
    ax.axhline(threshold, color="0.3", ls="--", lw=1)
    ax.annotate(f"threshold {threshold:g}", (0, threshold), xytext=(2, 3), textcoords="offset points", fontsize=9)
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("How a lifetime is measured: P(alive) after each customer's first purchase")
    ax.set_xlabel(f"age: time since first purchase ({UNIT_NAMES[time_unit]})")
    ax.set_ylabel("P(alive) (probability)")
    ax.legend(title="customer (dots: purchases)", fontsize=8, title_fontsize=9)
    return ax


def plot_duration_profit(
    customers: pd.DataFrame,
    matrix: LoyaltyMatrix,
    *,
    currency: str = "USD",
    time_unit: str = "D",
    ax: Axes | None = None,
) -> Axes:
    """Scatter of lifetime duration against lifetime profit, coloured by matrix cell.

    Profit is drawn on a symmetric log scale (linear within +-1 currency unit), so that
    a few large customers do not flatten everyone else; dashed lines are the split points.

    Parameters
    ----------
    customers : DataFrame
        ``LoyaltyAnalysis.customers`` (``duration``, ``profit``).
    matrix : LoyaltyMatrix
        Its ``segment`` colours the points; its cuts are drawn.
    currency : str
    time_unit : {"D", "W", "h"}
    ax : Axes, optional
    """
    ax = _axes(ax, (8.0, 5.0))
    colors = _segment_colors()
    # A fixed jitter of durations (ties at the split are common) that does not depend on the clock.
    jitter = np.random.default_rng(0).uniform(-0.4, 0.4, len(customers))
    for segment in SEGMENT_ORDER:
        cell = (matrix.segment.reindex(customers.index) == segment).to_numpy()
        ax.scatter(
            customers["duration"].to_numpy()[cell] + jitter[cell],
            customers["profit"].to_numpy()[cell],
            s=4,
            alpha=0.35,
            color=colors[segment],
            label=f"{segment} ({cell.sum():,})",
            rasterized=True,
        )
    ax.axvline(matrix.duration_cut, color="0.3", ls="--", lw=1)
    ax.axhline(matrix.profit_cut, color="0.3", ls="--", lw=1)
    ax.set_yscale("symlog", linthresh=1.0)
    low, high = float(customers["profit"].min()), float(customers["profit"].max())
    ax.set_ylim(min(-1.0, low * 1.5), max(10.0, high * 1.5))
    ax.yaxis.set_major_formatter(money_formatter(currency))
    ax.set_title("Lifetime duration against lifetime profit, by loyalty-profit cell")
    ax.set_xlabel(f"lifetime duration ({UNIT_NAMES[time_unit]})")
    ax.set_ylabel(f"lifetime profit ({currency}, symmetric log scale)")
    ax.legend(title="cell (customers)", markerscale=3, fontsize=8, title_fontsize=9, loc="upper left")
    return ax


def plot_profit_by_tenure(
    curve: pd.DataFrame,
    *,
    period_days: int = 30,
    currency: str = "USD",
    min_customers: int = 30,
    ax: Axes | None = None,
) -> Axes:
    """Average profit per tenure period for long- and short-lived customers, with 95% bands.

    Parameters
    ----------
    curve : DataFrame
        Output of :func:`crm_lib.loyalty.profit_by_tenure`.
    period_days : int
        Length of a tenure period (for the axis label).
    currency : str
    min_customers : int
        Periods with fewer customers alive are not drawn (their mean is noise).
    ax : Axes, optional
    """
    ax = _axes(ax)
    for i, (group, rows) in enumerate(curve[curve["customers"] >= min_customers].groupby("group")):
        color = sns.color_palette()[i]
        ax.plot(rows["tenure_period"], rows["mean_profit"], marker="o", ms=3, color=color, label=group)
        ax.fill_between(
            rows["tenure_period"],
            rows["mean_profit"] - 1.96 * rows["sem"].fillna(0),
            rows["mean_profit"] + 1.96 * rows["sem"].fillna(0),
            color=color,
            alpha=0.2,
        )
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title("Average profit per period by tenure")
    ax.set_xlabel(f"tenure period ({period_days}-day periods since first purchase; 0 = first)")
    ax.set_ylabel(f"mean profit per customer and period ({currency})")
    ax.yaxis.set_major_formatter(money_formatter(currency))
    ax.legend(title="customers")
    return ax


def plot_segment_shares(matrix: LoyaltyMatrix, ax: Axes | None = None) -> Axes:
    """Share of customers, revenue and profit in each cell of the loyalty-profit matrix.

    Parameters
    ----------
    matrix : LoyaltyMatrix
    ax : Axes, optional
    """
    ax = _axes(ax)
    table = matrix.table[["share_of_customers", "revenue_share", "profit_share"]]
    table = table.rename(columns={"share_of_customers": "customers", "revenue_share": "revenue", "profit_share": "profit"})
    long = table.reset_index().melt(id_vars="segment", var_name="share of", value_name="share")
    sns.barplot(data=long, x="segment", y="share", hue="share of", ax=ax)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_title("Who brings the profit: share of customers, revenue and profit by cell")
    ax.set_xlabel("loyalty-profit cell")
    ax.set_ylabel("share of the total (%)")
    for container in ax.containers:
        ax.bar_label(container, labels=[f"{v:.0%}" for v in container.datavalues], fontsize=8)
    return ax


__all__ = [
    "plot_duration_profit",
    "plot_p_alive_paths",
    "plot_profit_by_tenure",
    "plot_segment_shares",
]
