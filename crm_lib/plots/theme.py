"""The one visual theme of the reports, figure captions, and what makes figures reproducible.

- One colour-blind-safe palette, Okabe & Ito (2008), "Color Universal Design": eight colours
  that stay distinct under the common colour-vision deficiencies. Series that must be told
  apart also get distinct markers or line styles (:data:`MARKERS`, :data:`LINESTYLES`).
- Captions: a plot function states what its figure shows, with the computed numbers, by
  :func:`set_caption`; in a notebook the caption travels with the PNG as output metadata
  (``image/png`` ``crm_caption`` and ``alt``) and the report renderer prints it under the
  chart with the figure number (:mod:`crm_lib.report.chrome`).
- Large samples: :func:`draw_points` draws a scatter up to :data:`DENSITY_MIN_POINTS` points
  and a 2-D histogram above, so a page stays the same size at any number of customers.
"""
from __future__ import annotations

import textwrap
from typing import Any, Mapping

import matplotlib as mpl
import numpy as np
import pandas as pd
import seaborn as sns

#: Okabe & Ito (2008) colours, in the order series take them (yellow last: weak on white).
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#F0E442")
#: Palette used for groups across all analyses.
PALETTE = list(OKABE_ITO)
#: Markers and line styles given to series in palette order (a second cue besides colour).
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
LINESTYLES = ("-", "--", "-.", ":", (0, (5, 1, 1, 1)), (0, (3, 1)), (0, (1, 1)), (0, (8, 2)))
#: Above this many points a scatter is drawn as a 2-D histogram. Rule: a PNG scatter grows by
#: about 20 bytes per point and dots overplot into a blot long before 5,000 points on an
#: 8-inch chart; a histogram of :data:`DENSITY_BINS` cells has a bounded size at any n.
DENSITY_MIN_POINTS = 5_000
#: Cells of the 2-D histogram along x and y.
DENSITY_BINS = (60, 40)
#: Attribute of a matplotlib Figure that holds its caption.
CAPTION_ATTRIBUTE = "crm_caption"


def set_theme() -> None:
    """Apply the report theme (seaborn ``whitegrid``, Okabe-Ito palette) and make figure bytes reproducible.

    SVG output carries a date and salted ids by default; both are fixed here so that a
    report re-rendered from the same data is byte-identical. Notebooks show PNG figures,
    which carry neither. In an IPython kernel the PNG of a figure carries its caption
    (see :func:`set_caption`).
    """
    sns.set_theme(context="notebook", style="whitegrid", palette=PALETTE)
    mpl.rcParams.update(
        {
            "figure.figsize": (8.0, 4.2),
            "figure.dpi": 96,
            "savefig.dpi": 96,
            "axes.titleweight": "bold",
            "axes.titlesize": 12,
            "axes.prop_cycle": mpl.cycler(color=PALETTE),
            "image.cmap": "viridis",
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
    _install_caption_display()


def _install_caption_display() -> None:
    """In an IPython kernel, make a figure's PNG output carry its caption as metadata."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is a dependency of the notebooks
        return
    shell = get_ipython()
    if shell is None or not hasattr(shell, "display_formatter"):
        return
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    # Load the inline backend now: its set-up re-registers the PNG formatter and would drop ours.
    plt.switch_backend(mpl.get_backend())
    png = shell.display_formatter.formatters["image/png"]
    try:
        draw = png.lookup_by_type(Figure)
    except KeyError:
        return
    if getattr(draw, "crm_captioned", False):
        return

    def captioned(fig: Figure) -> Any:
        data = draw(fig)
        text = caption_of(fig)
        return (data, {"crm_caption": text, "alt": text}) if text and data is not None else data

    captioned.crm_captioned = True  # type: ignore[attr-defined]
    png.for_type(Figure, captioned)


def set_caption(ax, text: str) -> None:
    """Attach ``text`` (what the figure shows, with its numbers) to the figure of ``ax``."""
    setattr(ax.figure, CAPTION_ATTRIBUTE, " ".join(text.split()))


def caption_of(ax_or_figure) -> str:
    """The caption set by :func:`set_caption` ("" when none)."""
    figure = getattr(ax_or_figure, "figure", None) or ax_or_figure
    return getattr(figure, CAPTION_ATTRIBUTE, "")


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


def series_style(i: int) -> dict[str, Any]:
    """Colour, marker and line style of the ``i``-th series (colour and a second cue)."""
    return {"color": PALETTE[i % len(PALETTE)], "marker": MARKERS[i % len(MARKERS)],
            "linestyle": LINESTYLES[i % len(LINESTYLES)]}


def wrap_label(text: str, width: int = 38) -> str:
    """A long axis label on several lines, so it never reaches past the plot."""
    return "\n".join(textwrap.wrap(text, width)) or text


def money_formatter(currency: str = "USD"):
    """Axis tick formatter for amounts: ``$1.2k``-style short labels, the sign before the symbol (``-$1``)."""
    from matplotlib.ticker import FuncFormatter

    symbol = {"USD": "$", "EUR": "€", "GBP": "£"}.get(currency, "")

    def fmt(value: float, _pos: int) -> str:
        sign, size = ("-" if value < 0 else ""), abs(value)
        number = f"{size:,.0f}"
        for limit, suffix in ((1e9, "bn"), (1e6, "m"), (1e3, "k")):
            if size >= limit:
                number = f"{size / limit:,.1f}{suffix}"
                break
        return f"{sign}{symbol}{number}" if symbol else f"{sign}{number} {currency}"

    return FuncFormatter(fmt)


def _bin_edges(axis, values: np.ndarray, bins: int) -> np.ndarray:
    """``bins`` equal-width bins in the axis' scale (linear, log or symlog); unit bins for small integers."""
    transform = axis.get_transform()
    scaled = transform.transform(values.reshape(-1, 1)).ravel()
    scaled = scaled[np.isfinite(scaled)]
    if not len(scaled):
        return np.array([0.0, 1.0])
    low, high = float(scaled.min()), float(scaled.max())
    finite = values[np.isfinite(values)]
    if axis.get_scale() == "linear" and np.all(finite == np.round(finite)):
        # Whole numbers (counts, days, weeks): bins of whole widths centred on them, or columns alternate empty.
        step = max(1, int(np.ceil((high - low + 1) / bins)))
        return np.arange(low - 0.5, high + step, step)
    span = (high - low) or 1.0
    edges = np.linspace(low - 1e-9 * span, high + 1e-9 * span, bins + 1)
    return transform.inverted().transform(edges.reshape(-1, 1)).ravel()


def draw_points(ax, x, y, *, groups=None, colors: Mapping[Any, Any] | None = None,
                labels: Mapping[Any, str] | None = None, max_points: int = DENSITY_MIN_POINTS,
                bins: tuple[int, int] = DENSITY_BINS, size: float = 6, alpha: float = 0.3) -> bool:
    """A scatter of (x, y), or above ``max_points`` points a 2-D histogram, one colour per group.

    Set the axis scales before calling: bins are equal-width in the scale drawn. In the
    histogram a group's cells shade from pale (1 point) to its full colour (the most
    crowded cell of any group), on a log scale; empty cells stay blank.

    Parameters
    ----------
    ax : Axes
    x, y : array-like
    groups : array-like, optional
        Group of every point; None draws all points in the first palette colour.
    colors : mapping, optional
        Colour per group, in drawing order (default: the palette in order of appearance).
    labels : mapping, optional
        Legend label per group.
    max_points : int
        Largest number of points drawn as a scatter.

    Returns
    -------
    bool
        True when drawn as a density.
    """
    from matplotlib.colors import LinearSegmentedColormap, LogNorm, to_rgb

    # to_numpy for a Series: np.asarray would make the index cache its ids as Python strings (+0.3 GB at 4.7 M).
    x, y = (v.to_numpy(dtype=float) if isinstance(v, pd.Series) else np.asarray(v, dtype=float) for v in (x, y))
    if groups is None:
        codes, names = np.zeros(len(x), dtype=int), [0]
    else:  # integer codes in order of appearance: no Python string per point for millions of customers
        codes, uniques = pd.factorize(groups if isinstance(groups, (pd.Series, pd.Index)) else np.asarray(groups))
        names = uniques.tolist()
    position = {name: i for i, name in enumerate(names)}
    if colors is None:
        colors = dict(zip(names, PALETTE))
    labels = labels or {}
    density = len(x) > max_points
    if not density:
        for key, color in colors.items():
            mask = codes == position.get(key, -2)
            ax.scatter(x[mask], y[mask], s=size, alpha=alpha, color=color, linewidths=0, label=labels.get(key))
        return False
    x_edges, y_edges = _bin_edges(ax.xaxis, x, bins[0]), _bin_edges(ax.yaxis, y, bins[1])
    counts = {key: np.histogram2d(x[codes == position.get(key, -2)], y[codes == position.get(key, -2)],
                                  bins=[x_edges, y_edges])[0] for key in colors}
    top = max([2.0, *(float(c.max()) for c in counts.values())])
    mesh = None
    for key, color in colors.items():
        rgb = np.array(to_rgb(color))
        cmap = LinearSegmentedColormap.from_list(f"density-{key}", [0.8 + 0.2 * rgb, rgb])
        mesh = ax.pcolormesh(x_edges, y_edges, np.ma.masked_equal(counts[key].T, 0), cmap=cmap,
                             norm=LogNorm(1, top), linewidth=0, rasterized=True)
        if labels.get(key):
            ax.scatter([], [], marker="s", s=40, color=color, label=labels[key])
    if len(colors) == 1 and mesh is not None:
        ax.figure.colorbar(mesh, ax=ax, label="customers per cell\n(count, log scale)", pad=0.01)
    ax.grid(False)
    return True
