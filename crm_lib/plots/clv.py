"""Figures of the lifetime-value analysis (:mod:`crm_lib.clv`). Drawing only: every function
takes results computed by ``crm_lib.clv``, draws on ``ax`` (or a new figure), labels the
axes with units, sets a caption with the figure's numbers and returns the ``Axes``.
Nothing here fits a model."""
from __future__ import annotations

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.ticker import PercentFormatter

from crm_lib.plots.theme import DENSITY_MIN_POINTS, PALETTE, draw_points, money_formatter, set_caption, wrap_label
from crm_lib.plots.theme import axes_or_new as _axes

#: Plural names of the summary time units, for labels.
UNIT_NAMES = {"W": "weeks", "D": "days", "h": "hours", "M": "months"}



def _unit(time_unit: str) -> str:
    return UNIT_NAMES.get(time_unit, time_unit)


def plot_holdout_by_frequency(table: pd.DataFrame, *, model_label: str = "model", duration: float | None = None,
                              time_unit: str = "W", ax: Axes | None = None) -> Axes:
    """Mean holdout repeat purchases, actual vs predicted, per calibration-frequency group.

    Parameters
    ----------
    table : DataFrame
        From :func:`crm_lib.clv.holdout_by_calibration_frequency`.
    model_label : str
        Name of the model in the legend.
    duration : float, optional
        Holdout length, for the axis label.
    """
    ax = _axes(ax)
    top = table.attrs.get("max_frequency", int(table.index.max()))
    labels = [f"{i}+" if i == top else str(i) for i in table.index]
    ax.plot(labels, table["actual"], marker="o", label="actual")
    ax.plot(labels, table["predicted"], marker="s", linestyle="--", label=model_label)
    span = f" ({duration:.0f} {_unit(time_unit)})" if duration is not None else ""
    ax.set_title(f"Holdout repeat purchases by calibration frequency: actual vs {model_label}")
    ax.set_xlabel("repeat purchases in the calibration period (count)")
    ax.set_ylabel(wrap_label(f"mean repeat purchases in holdout{span}", 30) + "\n(per customer)")
    ax.legend()
    gap = (table["predicted"] - table["actual"]).abs()
    set_caption(ax, f"Mean repeat purchases per customer in the holdout period{span}, actual (blue) and predicted by "
                    f"{model_label} (orange dashed), by the number of repeat purchases in calibration. The largest gap is "
                    f"{gap.max():.2f} purchases per customer, in group {labels[int(np.argmax(gap.to_numpy()))]}.")
    return ax


def plot_tracking(tracking: pd.DataFrame, *, cumulative: bool = False, model_label: str = "model",
                  ax: Axes | None = None) -> Axes:
    """Repeat transactions per period (or cumulative), actual vs model, with the end of
    calibration marked.

    Parameters
    ----------
    tracking : DataFrame
        From :func:`crm_lib.clv.repeat_transactions_tracking`.
    """
    ax = _axes(ax)
    unit = _unit(tracking.attrs.get("time_unit", "W"))[:-1]
    actual, expected = ("actual_cumulative", "expected_cumulative") if cumulative else ("actual", "expected")
    ax.plot(tracking.index, tracking[actual], label="actual")
    ax.plot(tracking.index, tracking[expected], linestyle="--", label=model_label)
    holdout = tracking.index[tracking["holdout"].to_numpy()]
    if len(holdout):
        ax.axvline(holdout[0], color="grey", linestyle=":", label="end of calibration")
    kind = "Cumulative repeat transactions" if cumulative else f"Repeat transactions per {unit}"
    ax.set_title(f"{kind}: actual vs {model_label}")
    ax.set_xlabel(f"{unit} (start date)")
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m"))
    ax.tick_params(axis="x", rotation=45)
    ax.set_ylabel("repeat transactions (count)" if cumulative else f"repeat transactions per {unit} (count)")
    ax.yaxis.set_major_formatter(lambda v, _pos: f"{v:,.0f}")
    ax.legend()
    later = tracking[tracking["holdout"]]
    predicted, observed = float(later["expected"].sum()), float(later["actual"].sum())
    set_caption(ax, f"{kind} of the calibration customers, actual (blue) and expected by {model_label} (orange "
                    f"dashed); the dotted line ends calibration."
                    + (f" Over the holdout {model_label} expects {predicted:,.0f} repeat transactions against "
                       f"{observed:,.0f} actual ({predicted / observed - 1:+.1%})." if observed else ""))
    return ax


def plot_repeat_purchase_counts(counts: pd.DataFrame, *, model_label: str = "model", ax: Axes | None = None) -> Axes:
    """Customers by number of repeat purchases in calibration: actual vs model (grouped bars).

    Parameters
    ----------
    counts : DataFrame
        From :func:`crm_lib.clv.repeat_purchase_counts`.
    """
    ax = _axes(ax)
    top = int(counts.index.max())
    labels = [f"{i}+" if i == top else str(i) for i in counts.index]
    positions = np.arange(len(labels))
    ax.bar(positions - 0.2, counts["actual"], width=0.4, label="actual")
    ax.bar(positions + 0.2, counts["expected"], width=0.4, label=model_label, hatch="//", edgecolor="white")
    ax.set_xticks(positions, labels)
    ax.set_title(f"Customers by number of repeat purchases: actual vs {model_label}")
    ax.set_xlabel("repeat purchases in the calibration period (count)")
    ax.set_ylabel("customers (count)")
    ax.yaxis.set_major_formatter(lambda v, _pos: f"{v:,.0f}")
    ax.legend()
    set_caption(ax, f"Customers by their number of repeat purchases in calibration, actual (blue) and expected by "
                    f"{model_label} (orange, hatched): {counts.loc[counts.index[0], 'actual']:,.0f} made none, the model "
                    f"expects {counts.loc[counts.index[0], 'expected']:,.0f}.")
    return ax


def plot_spend_vs_frequency(summary: pd.DataFrame, *, correlation: float | None = None, currency: str = "USD",
                            ax: Axes | None = None) -> Axes:
    """Mean spend per repeat purchase against repeat frequency, repeat buyers only
    (the Gamma-Gamma independence check); a 2-D histogram above
    :data:`~crm_lib.plots.theme.DENSITY_MIN_POINTS` repeat buyers."""
    ax = _axes(ax)
    buyers = summary[(summary["frequency"] > 0) & (summary["monetary_value"] > 0)]
    ax.set_yscale("log")
    density = draw_points(ax, buyers["frequency"], buyers["monetary_value"], size=8)
    ax.yaxis.set_major_formatter(money_formatter(currency))
    suffix = f" (Pearson r = {correlation:.2f})" if correlation is not None else ""
    ax.set_title(f"Spend per purchase vs frequency, repeat buyers{suffix}")
    ax.set_xlabel("repeat purchases (count)")
    ax.set_ylabel(wrap_label(f"mean spend per repeat purchase ({currency}, log scale)", 30))
    drawn = (f"drawn as a 2-D histogram of the {len(buyers):,} buyers (more than {DENSITY_MIN_POINTS:,}; darker = more "
             "customers)" if density else f"one dot per buyer ({len(buyers):,})")
    set_caption(ax, f"Mean spend per repeat purchase against the number of repeat purchases, repeat buyers with a "
                    f"positive spend, {drawn}. The Gamma-Gamma spend model assumes the two are independent"
                    + (f"; the Pearson correlation is {correlation:.2f}." if correlation is not None else "."))
    return ax


def plot_lorenz(concentration, *, ax: Axes | None = None) -> Axes:
    """Lorenz curve of customer value with the line of equality.

    Parameters
    ----------
    concentration : ValueConcentration
        From :func:`crm_lib.clv.value_concentration`.
    """
    ax = _axes(ax, (5.5, 5.0))
    lorenz = concentration.lorenz
    ax.plot(lorenz["customer_share"], lorenz["value_share"], label=f"customers (Gini {concentration.gini:.2f})")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="equal value")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_title("Concentration of customer value (Lorenz curve)")
    ax.set_xlabel("customers, least valuable first (cumulative %)")
    ax.set_ylabel("customer value (cumulative %)")
    ax.legend(loc="upper left")
    shares = concentration.top_shares
    top = ", ".join(f"the top {q:.0%} hold {v:.1%}" for q, v in shares.items())
    set_caption(ax, f"Lorenz curve: cumulative share of customer value against the cumulative share of the "
                    f"{concentration.n_customers:,} customers, least valuable first; {top} (Gini "
                    f"{concentration.gini:.2f}; 0 = equal value, 1 = one customer holds all).")
    return ax


def plot_equity_draws(equity, *, currency: str = "USD", ax: Axes | None = None) -> Axes:
    """The two distributions behind customer equity's intervals, with the estimate and both
    intervals marked.

    The expected equity over the parameter draws (its central range is the
    parameter-uncertainty interval) and the simulated realised equity (its central range
    is the predictive interval), on shared bins.

    Parameters
    ----------
    equity : CustomerEquity
        From :func:`crm_lib.clv.customer_equity`.
    """
    ax = _axes(ax)
    expected = np.asarray(equity.draws, dtype=float)
    expected = expected[np.isfinite(expected)]
    realised = np.asarray(equity.predictive_draws, dtype=float)
    realised = realised[np.isfinite(realised)]
    bins = np.histogram_bin_edges(np.concatenate([expected, realised]), bins=30)
    colors = PALETTE
    level = f"{equity.level:.0%}"
    ax.axvline(equity.estimate, color="black", label="expected equity (estimate)")
    ax.hist(realised, bins=bins, color=colors[1], alpha=0.45,
            label=f"realised equity: parameters and customer noise ({level} predictive interval, dotted)")
    ax.hist(expected, bins=bins, color=colors[0], alpha=0.7,
            label=f"expected equity: parameter draws ({level} parameter-uncertainty interval, dashed)")
    for value in (equity.expected_lower, equity.expected_upper):
        ax.axvline(value, color=colors[0], linestyle="--")
    for value in (equity.predictive_lower, equity.predictive_upper):
        ax.axvline(value, color=colors[1], linestyle=":")
    ax.xaxis.set_major_formatter(money_formatter(currency))
    ax.set_title(f"Customer equity over {equity.horizon_months} months: {equity.n_draws} parameter draws")
    ax.set_xlabel(f"customer equity ({currency}, discounted)")
    ax.set_ylabel("draws (count)")
    # Below the axes: the histograms fill the plot area.
    ax.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=1, frameon=False)
    set_caption(ax, f"Customer equity over {equity.horizon_months} months: expected equity over {equity.n_draws} "
                    f"parameter draws (blue) and realised equity with customer noise (orange). Estimate "
                    f"{equity.estimate:,.0f} {currency}; {level} parameter-uncertainty interval "
                    f"{equity.expected_lower:,.0f} to {equity.expected_upper:,.0f} (dashed); {level} predictive "
                    f"interval {equity.predictive_lower:,.0f} to {equity.predictive_upper:,.0f} (dotted).")
    return ax


def plot_p_alive_grid(grid: pd.DataFrame, *, time_unit: str = "W", ax: Axes | None = None) -> Axes:
    """Heatmap of P(alive) over repeat frequency (x) and recency (y) at a fixed age.

    Parameters
    ----------
    grid : DataFrame
        From :func:`crm_lib.clv.p_alive_grid` (index recency, columns frequency).
    """
    ax = _axes(ax, (7.0, 5.0))
    age = int(grid.index.max())
    image = ax.imshow(grid.to_numpy(), origin="lower", aspect="auto", cmap="viridis", vmin=0, vmax=1,
                      extent=(-0.5, grid.columns.max() + 0.5, -0.5, age + 0.5))
    plt.colorbar(image, ax=ax, label="probability still active")
    ax.set_title(f"P(alive) by frequency and recency, customers aged {age} {_unit(time_unit)}")
    ax.set_xlabel("repeat purchases (count)")
    ax.set_ylabel(f"age at last purchase ({_unit(time_unit)})")
    ax.grid(False)
    top = int(grid.columns.max())
    set_caption(ax, f"Probability that a customer aged {age} {_unit(time_unit)} is still active, by repeat purchases "
                    f"(x) and age at the last purchase (y); yellow = likely active. With {top} repeat purchases it is "
                    f"{grid.iloc[-1, -1]:.1%} if the last was just now and {grid.iloc[age // 2, -1]:.1%} at age "
                    f"{age // 2}.")
    return ax


def plot_p_alive_history(history: pd.DataFrame, *, customer_label: str | None = None,
                         ax: Axes | None = None) -> Axes:
    """One customer's P(alive) period by period, with her purchases marked.

    The real customer id kept in ``history.attrs`` is never drawn: a report shows only
    the ``customer_label`` it is given (e.g. a pseudonymous id from
    :func:`crm_lib.segments.pseudonymize`).

    Parameters
    ----------
    history : DataFrame
        From :func:`crm_lib.clv.p_alive_history`.
    customer_label : str, optional
        How the customer is named in the title; None titles the chart "one customer".
    ax : Axes, optional

    Returns
    -------
    Axes
    """
    ax = _axes(ax)
    ax.plot(history.index, history["p_alive"], drawstyle="steps-post", label="P(alive)")
    bought = history[history["purchase"]]
    ax.scatter(bought.index, bought["p_alive"], color=PALETTE[3], marker="D", zorder=3, label="purchase")
    ax.set_ylim(0, 1.05)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_title(f"P(alive) history of customer {customer_label}" if customer_label is not None
                 else "P(alive) history of one customer")
    unit = _unit(history.attrs.get("time_unit", "W"))[:-1]
    ax.set_xlabel(f"{unit} (start date)")
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m"))
    ax.tick_params(axis="x", rotation=45)
    ax.set_ylabel("probability still active (%)")
    ax.legend()
    who = f"customer {customer_label}" if customer_label is not None else "one customer"
    set_caption(ax, f"P(alive) of {who} {unit} by {unit}, with her {len(bought)} purchase {unit}s marked: it fell "
                    f"from {history['p_alive'].max():.0%} to {history['p_alive'].iloc[-1]:.0%} at the end of the data.")
    return ax
