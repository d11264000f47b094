"""The one visual theme of the reports, and what makes figures reproducible."""
from __future__ import annotations

import matplotlib as mpl
import seaborn as sns

#: Palette used for groups across all analyses.
PALETTE = "colorblind"


def set_theme() -> None:
    """Apply the report theme (seaborn ``whitegrid``) and make figure bytes reproducible.

    SVG output carries a date and salted ids by default; both are fixed here so that a
    report re-rendered from the same data is byte-identical. Notebooks show PNG figures,
    which carry neither.
    """
    sns.set_theme(context="notebook", style="whitegrid", palette=PALETTE)
    mpl.rcParams.update(
        {
            "figure.figsize": (8.0, 4.2),
            "figure.dpi": 96,
            "savefig.dpi": 96,
            "axes.titleweight": "bold",
            "axes.titlesize": 12,
            "svg.hashsalt": "crm-workbench",
            "svg.fonttype": "none",
            "figure.autolayout": True,
        }
    )
    mpl.rcParams["savefig.format"] = "png"
    # Tables in reports: whole cells (rules, verdicts), thousands separators for floats.
    import pandas as pd

    pd.set_option("display.max_colwidth", 200)
    pd.set_option("display.max_columns", 50)
    pd.set_option("display.float_format", "{:,.4g}".format)


def axes_or_new(ax=None, figsize: tuple[float, float] | None = None):
    """``ax`` itself, or the axes of a new figure of ``figsize`` (the theme's size by default).

    Every plot function takes an optional ``ax``; this is the one place that makes a figure
    when none is given.
    """
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, new_ax = plt.subplots(figsize=figsize)
    return new_ax


def money_formatter(currency: str = "USD"):
    """Axis tick formatter for amounts: ``$1.2k``-style short labels with the currency."""
    from matplotlib.ticker import FuncFormatter

    symbol = {"USD": "$", "EUR": "€", "GBP": "£"}.get(currency, "")

    def fmt(value: float, _pos: int) -> str:
        for limit, suffix in ((1e9, "bn"), (1e6, "m"), (1e3, "k")):
            if abs(value) >= limit:
                return f"{symbol}{value / limit:,.1f}{suffix}" if symbol else f"{value / limit:,.1f}{suffix} {currency}"
        return f"{symbol}{value:,.0f}" if symbol else f"{value:,.0f} {currency}"

    return FuncFormatter(fmt)
