"""Figures of the loyalty-versus-profit analysis (Reinartz & Kumar 2000, 2002). Drawing only.

Every function takes results of :mod:`crm_lib.loyalty` and an optional ``ax``, labels
the axes with units, sets a caption with the figure's numbers and returns the ``Axes``;
nothing here fits a model. The duration-profit scatter becomes a 2-D histogram above
:data:`~crm_lib.plots.theme.DENSITY_MIN_POINTS` customers.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.ticker import MaxNLocator, PercentFormatter

from crm_lib.loyalty import SEGMENT_ORDER, LoyaltyMatrix
from crm_lib.plots.theme import (
    DENSITY_MIN_POINTS,
    LINESTYLES,
    PALETTE,
    axes_or_new as _axes,
    draw_points,
    money_formatter,
    series_style,
    set_caption,
    wrap_label,
)

#: Unit names of the time units of crm_lib.summary, for axis labels.
UNIT_NAMES = {"D": "days", "W": "weeks", "h": "hours"}



def _segment_colors() -> dict[str, str]:
    return dict(zip(SEGMENT_ORDER, PALETTE))


def plot_p_alive_paths(paths: pd.DataFrame, threshold: float, *, examples: pd.Series | None = None,
                       time_unit: str = "D", crossing: str = "last", ax: Axes | None = None) -> Axes:
    """P(alive) of a few customers against their age, with purchases and the threshold;
    a lifetime ends where a curve drops below the threshold after the last purchase
    (``crossing="last"``) or at its first drop (``"first"``), as in the analysis.

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
    crossing : {"last", "first"}
        The analysis' crossing rule, stated in the caption.
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
        color = colors[cell] if cell else series_style(i)["color"]
        label = f"{cell} ({customer})" if cell else str(customer)
        # Each cell its own line style too: two customers' curves can coincide.
        style = LINESTYLES[SEGMENT_ORDER.index(cell) if cell else i % len(LINESTYLES)]
        ax.plot(path["age"], path["p_alive"], color=color, label=label, lw=1.8, linestyle=style)
        bought = path[path["purchase"]]
        ax.plot(bought["age"], bought["p_alive"], "o", color=color, ms=4)
    ax.axhline(threshold, color="0.3", ls="--", lw=1)
    ax.annotate(f"threshold {threshold:g}", (0, threshold), xytext=(2, 3), textcoords="offset points", fontsize=9)
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("How a lifetime is measured: P(alive) after each customer's first purchase")
    ax.set_xlabel(f"age: time since first purchase ({UNIT_NAMES[time_unit]})")
    ax.set_ylabel("P(alive) (probability)")
    ax.legend(title="customer (dots: purchases)", fontsize=8, title_fontsize=9, loc="upper center",
              bbox_to_anchor=(0.5, -0.18), ncol=2, frameon=False)
    set_caption(ax, f"P(alive) of {len(customers)} example customers against the time since their first purchase, "
                    f"dots at their purchases; a lifetime ends when P(alive) falls below {threshold:g} (dashed line) "
                    + ("after the customer's last purchase." if crossing == "last" else "for the first time."))
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
    ax = _axes(ax, (8.0, 6.0))
    colors = _segment_colors()
    segment = matrix.segment.reindex(customers.index).to_numpy()
    counts = pd.Series(segment).value_counts()
    ax.set_yscale("symlog", linthresh=1.0)
    low, high = float(customers["profit"].min()), float(customers["profit"].max())
    ax.set_ylim(min(-1.0, low * 1.5), max(10.0, high * 1.5))
    duration = customers["duration"].to_numpy(dtype=float)
    if len(customers) <= DENSITY_MIN_POINTS:
        # A fixed jitter of durations (ties at the split are common) that does not depend on the clock.
        duration = duration + np.random.default_rng(0).uniform(-0.4, 0.4, len(customers))
    density = draw_points(ax, duration, customers["profit"], groups=segment, colors=colors, size=4, alpha=0.35,
                          labels={cell: f"{cell} ({int(counts.get(cell, 0)):,})" for cell in SEGMENT_ORDER})
    ax.axvline(matrix.duration_cut, color="0.3", ls="--", lw=1)
    ax.axhline(matrix.profit_cut, color="0.3", ls="--", lw=1)
    ax.yaxis.set_major_formatter(money_formatter(currency))
    ax.set_title("Lifetime duration against lifetime profit, by loyalty-profit cell")
    ax.set_xlabel(f"lifetime duration ({UNIT_NAMES[time_unit]})")
    ax.set_ylabel(f"lifetime profit ({currency}, symmetric log scale)")
    # Below the axes: inside, the legend covered the butterflies (short-lived, high profit, upper left).
    ax.legend(title="cell (customers)", markerscale=2, fontsize=9, title_fontsize=9, loc="upper center",
              bbox_to_anchor=(0.5, -0.14), ncol=4, frameon=False)
    drawn = (f"drawn as a 2-D histogram (more than {DENSITY_MIN_POINTS:,} customers; darker = more customers)"
             if density else "one dot per customer, durations jittered by less than half a unit")
    set_caption(ax, f"Lifetime duration against lifetime profit of {len(customers):,} customers, {drawn}; dashed "
                    f"lines split long from short lifetimes at {matrix.duration_cut:,.0f} {UNIT_NAMES[time_unit]} and "
                    f"high from low profit at {matrix.profit_cut:,.2f} {currency}. "
                    f"{matrix.share_long_low_profit:.0%} of long-lived customers have low profit (barnacles) and "
                    f"{matrix.share_high_profit_short:.0%} of high-profit customers are short-lived (butterflies).")
    return ax


def plot_profit_by_tenure(curve: pd.DataFrame, *, period_days: int = 30, currency: str = "USD",
                          min_customers: int = 30, ax: Axes | None = None) -> Axes:
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
    shown = curve[curve["customers"] >= min_customers]
    for i, (group, rows) in enumerate(shown.groupby("group")):
        style = series_style(i)
        color = style["color"]
        ax.plot(rows["tenure_period"], rows["mean_profit"], marker=style["marker"], ms=3, color=color,
                linestyle=style["linestyle"], label=group)
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
    ax.set_ylabel(wrap_label(f"mean profit per customer and period ({currency})", 30))
    ax.yaxis.set_major_formatter(money_formatter(currency))
    ax.legend(title="customers")
    means = shown.groupby("group")["mean_profit"].mean()
    set_caption(ax, f"Mean profit per customer in each {period_days}-day period since the first purchase, long- and "
                    f"short-lived customers, with 95% bands; periods with fewer than {min_customers} customers are left "
                    "out. Averaged over the periods shown: "
                    + ", ".join(f"{g} {v:,.2f} {currency}" for g, v in means.items()) + ".")
    return ax


def plot_segment_shares(matrix: LoyaltyMatrix, ax: Axes | None = None) -> Axes:
    """Share of customers, revenue and profit in each cell of the loyalty-profit matrix
    (``matrix``), on ``ax`` or a new figure."""
    ax = _axes(ax)
    table = matrix.table[["share_of_customers", "revenue_share", "profit_share"]]
    table = table.rename(columns={"share_of_customers": "customers", "revenue_share": "revenue", "profit_share": "profit"})
    long = table.reset_index().melt(id_vars="segment", var_name="share of", value_name="share")
    sns.barplot(data=long, x="segment", y="share", hue="share of", ax=ax, palette=PALETTE[:3])
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_title("Who brings the profit: share of customers, revenue and profit by cell")
    ax.set_xlabel("loyalty-profit cell")
    ax.set_ylabel("share of the total (%)")
    for container in ax.containers:
        ax.bar_label(container, labels=[f"{v:.0%}" for v in container.datavalues], fontsize=8)
    best = table["profit"].idxmax()
    set_caption(ax, f"Share of all customers (blue), revenue (orange) and profit (green) in each loyalty-profit cell. "
                    f"{str(best).capitalize()} bring {table.loc[best, 'profit']:.0%} of profit with "
                    f"{table.loc[best, 'customers']:.0%} of customers.")
    return ax


__all__ = [
    "plot_duration_profit",
    "plot_p_alive_paths",
    "plot_profit_by_tenure",
    "plot_segment_shares",
]
