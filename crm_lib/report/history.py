"""The history page of a scheduled run: headline figures over every kept run, what changed, scored predictions.

With ``--keep-runs`` each run is kept as ``reports/<run>/<observation_end>/`` holding its
``headline.json`` (the figures every page states; schema in
:mod:`crm_lib.report.findings`) and ``tracking.json`` (earlier predictions scored against
the data that arrived since, :mod:`crm_lib.clv.tracking`). After each publish the runner
rewrites ``reports/<run>/history.html`` from them:

- "What changed since the last run": one sentence per figure (:func:`change_sentences`);
- charts of the numeric figures over the runs (intervals as bands) and a table of all of
  them, each cell linking to the page that states it;
- the latest run's scores of every earlier prediction set: predicted vs actual repeat
  purchases over the elapsed part of the horizon, with the predictive interval, mean
  absolute error, calibration by decile and a tracking chart.

The page is static and self-contained (PNG charts embedded as base64, no script) and
byte-identical for the same inputs: no clock, PNG metadata without the software version.
"""
from __future__ import annotations

import base64
import contextlib
import html
import io
import json
import logging
import os
from pathlib import Path
from typing import Any, Iterator

from crm_lib.format import currency, number, percent

logger = logging.getLogger(__name__)

HISTORY_PAGE = "history.html"
HEADLINE_FILE = "headline.json"

#: Short names of the schema's headline keys (others: the key in words).
LABELS = {
    "customers": "Customers",
    "transactions": "Transactions",
    "revenue": "Revenue",
    "retention_12m": "12-month retention",
    "retention_lapse": "Retention (lapse rule)",
    "share_alive": "Share of customers alive",
    "customer_equity": "Customer equity",
    "value_model": "Value model",
    "loyalty_M": "Loyalty verdict",
}
SEGMENT_PREFIX = "segment_share_"


def label(key: str) -> str:
    """A figure's name for people: ``customer_equity`` -> ``Customer equity``."""
    if key in LABELS:
        return LABELS[key]
    if key.startswith(SEGMENT_PREFIX):
        return f"Share in segment {key[len(SEGMENT_PREFIX):].replace('_', ' ')}"
    if key.startswith("loyalty_"):
        return f"Loyalty {key[len('loyalty_'):]}"
    return key.replace("_", " ").capitalize()


#: The time units of the data (crm_lib.summary) in words.
TIME_UNITS = {"W": ("weeks", "week"), "D": ("days", "day"), "h": ("hours", "hour")}


def time_unit_words(code: str) -> tuple[str, str]:
    """Plural and singular of a time unit code: ``"h"`` -> ``("hours", "hour")``."""
    return TIME_UNITS.get(code, (f"{code} periods", f"{code} period"))


def is_share(unit: str) -> bool:
    """A share (shown as %): ``"share"`` or a share at a stated age, ``"share at 364 days"``."""
    return unit == "share" or unit.startswith("share ")


def comparable(before: dict[str, Any], now: dict[str, Any]) -> bool:
    """Whether two runs' figures of one key measure the same thing: same unit (a retention at 364 days
    is not compared with one at 334), and neither carried over from an earlier run (``--only``)."""
    return (before.get("unit", "") == now.get("unit", "")
            and not before.get("carried_over") and not now.get("carried_over"))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


def format_value(value: Any, unit: str) -> str:
    """A figure's value with its unit: ``23,570 customers``, ``45.0%``, ``241,047 USD``."""
    if not _is_number(value):
        return "" if value is None else str(value)
    if is_share(unit):
        return percent(value) + unit[len("share"):]
    if unit in {"customers", "transactions", "weeks", "days", "months"}:
        return f"{number(value)} {unit}"
    if len(unit) == 3 and unit.isupper():  # a currency code
        return currency(value, unit)
    return f"{number(value, 2)} {unit}".rstrip()


def load_headlines(run_dir: str | Path) -> list[dict[str, Any]]:
    """Every kept run's ``headline.json`` in ``run_dir``, oldest first (runs without one are skipped)."""
    from crm_lib.report.publish import history_entries

    headlines = []
    for entry in history_entries(Path(run_dir)):
        path = Path(run_dir) / entry / HEADLINE_FILE
        if path.is_file():
            headline = json.loads(path.read_text(encoding="utf-8"))
            headlines.append({**headline, "entry": entry})
    return headlines


def _interval(figure: dict[str, Any]) -> str:
    lower, upper = figure.get("lower"), figure.get("upper")
    if not (_is_number(lower) and _is_number(upper)):
        return ""
    unit = figure.get("unit", "")
    return f" (interval {format_value(lower, unit)} to {format_value(upper, unit)})"


def _numeric_sentence(key: str, before: dict[str, Any], now: dict[str, Any], since: str) -> str:
    unit = now.get("unit", "")
    old, new = before["value"], now["value"]
    shown = format_value(new, unit)
    if is_share(unit):
        points = 100 * (new - old)
        if abs(points) < 0.05:
            return f"{label(key)} unchanged at {shown}."
        verb = "rose" if points > 0 else "fell"
        return f"{label(key)} {verb} {number(abs(points), 1)} percentage points to {shown} (from {format_value(old, unit)} on {since})."
    if new == old:
        return f"{label(key)} unchanged at {shown}{_interval(now)}."
    if old == 0:
        return f"{label(key)} {'rose' if new > old else 'fell'} to {shown}{_interval(now)} from 0 on {since}."
    change = (new - old) / abs(old)
    verb = "rose" if change > 0 else "fell"
    return (f"{label(key)} {verb} {percent(abs(change))} to {shown}{_interval(now)}, "
            f"from {format_value(old, unit)} on {since}.")


def _segment_sentence(moves: list[tuple[str, float, float]]) -> str:
    """One sentence for the segment shares: the two largest moves."""
    moves = sorted(moves, key=lambda m: (-abs(m[2] - m[1]), m[0]))
    if all(abs(new - old) < 0.0005 for _, old, new in moves):
        return "Segment shares unchanged."
    parts = [f"{key[len(SEGMENT_PREFIX):].replace('_', ' ')} ({number(100 * (new - old), 1, signed=True)} points, "
             f"to {percent(new)})" for key, old, new in moves[:2] if abs(new - old) >= 0.0005]
    return f"Segment shares moved most in {' and '.join(parts)}."


def change_sentences(previous: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """"What changed since the last run", one sentence per headline figure.

    Parameters
    ----------
    previous, current : dict
        Two ``headline.json`` contents (schema in :mod:`crm_lib.report.findings`).

    Returns
    -------
    list of str
        In the order of the current headline's keys (sorted), segment shares in one
        sentence, then the figures the current run no longer has.

    Examples
    --------
    >>> before = {"observation_end": "1998-05-31", "figures": {"customers": {"value": 100, "unit": "customers"}}}
    >>> now = {"observation_end": "1998-06-30", "figures": {"customers": {"value": 110, "unit": "customers"}}}
    >>> change_sentences(before, now)
    ['Customers rose 10.0% to 110 customers, from 100 customers on 1998-05-31.']
    """
    since = str(previous.get("observation_end", "the last run"))
    old_figures, new_figures = previous.get("figures", {}), current.get("figures", {})
    sentences, segments = [], []
    carried = []
    for key in sorted(new_figures):
        now, before = new_figures[key], old_figures.get(key)
        if now.get("carried_over"):
            carried.append(label(key))
        elif before is None:
            sentences.append(f"{label(key)} is new in this run: {format_value(now.get('value'), now.get('unit', ''))}.")
        elif not comparable(before, now):
            sentences.append(f"{label(key)} is {format_value(now.get('value'), now.get('unit', ''))}; not compared "
                             f"with {format_value(before.get('value'), before.get('unit', ''))} on {since}"
                             + (", a figure carried over from an earlier run." if before.get("carried_over")
                                else ", which measured something else."))
        elif _is_number(now.get("value")) and _is_number(before.get("value")):
            if key.startswith(SEGMENT_PREFIX) and now.get("unit") == "share":
                segments.append((key, before["value"], now["value"]))
            else:
                sentences.append(_numeric_sentence(key, before, now, since))
        elif now.get("value") != before.get("value"):
            sentences.append(f"{label(key)} changed from {before.get('value')} to {now.get('value')}.")
        else:
            sentences.append(f"{label(key)} unchanged: {now.get('value')}.")
    if segments:
        sentences.append(_segment_sentence(segments))
    if carried:
        sentences.append(f"Not recomputed in this run (pages carried over from an earlier run): {', '.join(carried)}.")
    for key in sorted(set(old_figures) - set(new_figures)):
        sentences.append(f"{label(key)} is not in this run (it was on {since}).")
    return sentences


# ---------------------------------------------------------------------------------- charts
def _png(figure) -> str:
    """A matplotlib figure as a base64 PNG data URI, without the software version (same bytes every time)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=96, metadata={"Software": None})
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _figure(n_panels: int, columns: int = 2, height: float = 2.6):
    from matplotlib.figure import Figure

    rows = -(-n_panels // columns)
    figure = Figure(figsize=(4.6 * min(columns, n_panels), height * rows))
    axes = [figure.add_subplot(rows, min(columns, n_panels), i + 1) for i in range(n_panels)]
    return figure, axes


def _series(headlines: list[dict[str, Any]], key: str, field: str = "value") -> list[float]:
    """One value per run; NaN where the run lacks it or carried it over from an earlier run (``--only``)."""
    figures = [h["figures"].get(key, {}) for h in headlines]
    return [f.get(field) if _is_number(f.get(field)) and not f.get("carried_over") else float("nan") for f in figures]


def _stretches(headlines: list[dict[str, Any]], key: str) -> list[list[int]]:
    """Positions of the runs grouped into consecutive stretches of one unit: a line joins only
    comparable figures (a retention at another age starts a new stretch)."""
    stretches: list[list[int]] = []
    previous = None
    for position, h in enumerate(headlines):
        unit = h["figures"].get(key, {}).get("unit")
        if not stretches or unit != previous:
            stretches.append([])
        stretches[-1].append(position)
        previous = unit
    return stretches


def trend_chart(headlines: list[dict[str, Any]]) -> str | None:
    """Small multiples of every numeric headline figure (segment shares apart) over the runs; None if none."""
    keys = sorted({k for h in headlines for k, f in h["figures"].items()
                   if _is_number(f.get("value")) and not k.startswith(SEGMENT_PREFIX)})
    if not keys:
        return None
    from matplotlib.ticker import FuncFormatter

    figure, axes = _figure(len(keys))
    ends = [h["observation_end"] for h in headlines]
    positions = list(range(len(ends)))
    for ax, key in zip(axes, keys):
        unit = next(h["figures"][key].get("unit", "") for h in headlines if key in h["figures"])
        scale = 100.0 if is_share(unit) else 1.0
        values = [v * scale for v in _series(headlines, key)]
        lower = [v * scale for v in _series(headlines, key, "lower")]
        upper = [v * scale for v in _series(headlines, key, "upper")]
        for stretch in _stretches(headlines, key):
            if any(lower[i] == lower[i] for i in stretch):
                ax.fill_between(stretch, [lower[i] for i in stretch], [upper[i] for i in stretch],
                                color="#9ecae1", alpha=0.6)
            ax.plot(stretch, [values[i] for i in stretch], marker="o", color="#08519c")
        ax.set_title(label(key), fontsize=10)
        ax.set_ylabel("%" if is_share(unit) else unit)
        decimals = 1 if is_share(unit) else 0
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _, decimals=decimals: number(v, decimals)))
        ax.set_xticks(positions, ends, rotation=45, ha="right", fontsize=7)
        ax.grid(alpha=0.3)
    figure.tight_layout()
    return _png(figure)


def segment_chart(headlines: list[dict[str, Any]]) -> str | None:
    """Segment shares (%) over the runs, one line per segment; None without segment shares."""
    keys = sorted({k for h in headlines for k in h["figures"] if k.startswith(SEGMENT_PREFIX)})
    if not keys:
        return None
    figure, (ax,) = _figure(1, height=3.4)
    figure.set_size_inches(8.0, 3.6)
    positions = list(range(len(headlines)))
    for key in keys:
        ax.plot(positions, [100 * v for v in _series(headlines, key)], marker="o",
                label=key[len(SEGMENT_PREFIX):].replace("_", " "))
    ax.set_xticks(positions, [h["observation_end"] for h in headlines], rotation=45, ha="right", fontsize=7)
    ax.set_ylabel("share of customers (%)")
    ax.set_title("RFM segment shares", fontsize=10)
    ax.legend(fontsize=7, ncol=2, loc="center left", bbox_to_anchor=(1.0, 0.5))
    ax.grid(alpha=0.3)
    figure.subplots_adjust(left=0.08, right=0.7, bottom=0.25)
    return _png(figure)


def tracking_charts(scores: list[dict[str, Any]]) -> str | None:
    """Predicted vs actual totals per prediction set, tracking curves, and the calibration of the oldest set."""
    if not scores:
        return None
    figure, (totals, curves, deciles) = _figure(3, columns=3, height=3.2)
    figure.set_size_inches(14.0, 3.8)
    positions = list(range(len(scores)))
    predicted = [s["predicted_purchases"] for s in scores]
    errors = [[p - s["interval_lower"] for p, s in zip(predicted, scores)],
              [s["interval_upper"] - p for p, s in zip(predicted, scores)]]
    totals.errorbar(positions, predicted, yerr=errors, fmt="o", color="#08519c", capsize=3,
                    label=f"predicted ({scores[0]['level']:.0%} interval)")
    totals.plot(positions, [s["actual_purchases"] for s in scores], "s", color="#d95f02", label="actual")
    totals.set_xticks(positions, [s["observation_end"] for s in scores], rotation=45, ha="right", fontsize=7)
    totals.set_ylabel("repeat purchases since")
    totals.set_title("Each prediction set, scored to " + scores[-1]["scored_to"], fontsize=10)
    totals.legend(fontsize=7, loc="upper right")
    for index, score in enumerate(scores):
        color = f"C{index % 10}"
        steps = [p["period"] for p in score["curve"]]
        curves.plot(steps, [p["actual"] for p in score["curve"]], color=color, label=score["observation_end"])
        curves.plot(steps, [p["predicted"] for p in score["curve"]], color=color, linestyle="--")
    unit = time_unit_words(scores[0]["time_unit"])[0]
    curves.set_xlabel(f"{unit} after the prediction")
    curves.set_ylabel("cumulative repeat purchases")
    curves.set_title("Tracking: actual (solid) vs predicted (dashed)", fontsize=10)
    curves.legend(fontsize=6, ncol=2, loc="upper left")
    oldest = scores[0]
    bars = [d["decile"] for d in oldest["deciles"]]
    deciles.bar([b - 0.2 for b in bars], [d["predicted"] for d in oldest["deciles"]], width=0.4, label="predicted")
    deciles.bar([b + 0.2 for b in bars], [d["actual"] for d in oldest["deciles"]], width=0.4, label="actual")
    deciles.set_xlabel("decile of predicted purchases (10 = highest)")
    deciles.set_ylabel("mean repeat purchases per customer")
    deciles.set_title(f"Calibration of the {oldest['observation_end']} predictions", fontsize=10)
    deciles.legend(fontsize=7, loc="upper left")
    for ax in (totals, curves, deciles):
        ax.grid(alpha=0.3)
    figure.tight_layout()
    return _png(figure)


# ---------------------------------------------------------------------------------- text and tables
def figures_table(headlines: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Header and rows (one per run, oldest first) of every headline figure, as HTML cells.

    A value links to the page of that run that states it (``<entry>/<page>``).
    """
    keys = sorted({k for h in headlines for k in h["figures"]})
    header = ["observation end"] + [label(k) for k in keys]
    rows = []
    for h in headlines:
        cells = [f'<a href="{html.escape(h["entry"])}/index.html">{html.escape(h["observation_end"])}</a>']
        for key in keys:
            figure = h["figures"].get(key)
            if figure is None:
                cells.append("")
                continue
            text = html.escape(format_value(figure.get("value"), figure.get("unit", "")) + _interval(figure)
                               + (" (carried over)" if figure.get("carried_over") else ""))
            page = figure.get("page")
            cells.append(f'<a href="{html.escape(h["entry"])}/{html.escape(page)}">{text}</a>' if page else text)
        rows.append(cells)
    return header, rows


def tracking_sentence(score: dict[str, Any]) -> str:
    """One sentence per scored prediction set: predicted vs actual, interval, error, MAE."""
    unit, one = time_unit_words(score["time_unit"])
    inside = "inside" if score["inside"] else "outside"
    horizon = f"{number(score['horizon_periods'])}-{one} horizon"
    span = (f"over its whole {horizon}" if score["elapsed_periods"] >= score["horizon_periods"] else
            f"in the {number(score['elapsed_periods'], 1)} {unit} since (of the {horizon})")
    if score["actual_purchases"]:
        error = 100 * (score["predicted_purchases"] - score["actual_purchases"]) / score["actual_purchases"]
        made = f"{number(score['actual_purchases'])} were made ({number(error, 1, signed=True)}% off)"
    else:
        made = "no purchases arrived"
    sentence = (
        f"The predictions of {score['observation_end']} expected {number(score['predicted_purchases'])} repeat "
        f"purchases from its {number(score['n_customers'])} customers {span}; {made}, {inside} the "
        f"{percent(score['level'], 0)} predictive interval {number(score['interval_lower'])} to "
        f"{number(score['interval_upper'])}. Mean absolute error {number(score['mae'], 3)} purchases per customer "
        f"({number(score['mae_naive'], 3)} for the naive past-rate forecast)."
    )
    equity = score.get("equity")
    if equity:
        sentence += (f" Its customer equity, {number(equity['estimate'])} ({percent(equity['level'], 0)} predictive "
                     f"interval {number(equity['predictive_lower'])} to {number(equity['predictive_upper'])}), "
                     + (f"was realised at {number(equity['realised'])}, {'inside' if equity['inside'] else 'outside'} "
                        "that interval." if equity.get("complete") else
                        f"can be checked once its {equity['horizon_months']}-month horizon has passed."))
    return sentence


def tracking_table(scores: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the scored prediction sets (aggregates only)."""
    header = ["predicted on", "model", "elapsed", "predicted purchases", "interval", "actual purchases",
              "inside", "MAE per customer", "naive MAE", "predicted revenue", "actual revenue"]
    rows = []
    for s in scores:
        rows.append([s["observation_end"], s["model"], f"{number(s['elapsed_periods'], 1)} of {number(s['horizon_periods'])}",
                     number(s["predicted_purchases"]), f"{number(s['interval_lower'])} to {number(s['interval_upper'])}",
                     number(s["actual_purchases"]), "yes" if s["inside"] else "no", number(s["mae"], 3),
                     number(s["mae_naive"], 3), number(s["predicted_revenue"]), number(s["actual_revenue"])])
    return header, [[html.escape(c) for c in row] for row in rows]


# ---------------------------------------------------------------------------------- the page
PAGE_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>{{ title }}: history</title>
<style>
  body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2rem auto; padding: 0 1rem; color: #1f1f1f; line-height: 1.5; }
  .crm-pager a { margin-right: 1rem; }
  .crm-scroll { overflow-x: auto; }
  table.history { border-collapse: collapse; font-size: 0.9rem; margin: 0.5rem 0 1.5rem 0; }
  table.history th, table.history td { padding: 0.25rem 0.7rem; border-bottom: 1px solid #e0e0e0; text-align: right; white-space: nowrap; }
  table.history th { background: #f2f2f2; }
  table.history td:first-child, table.history th:first-child { text-align: left; }
  img { max-width: 100%; height: auto; }
  .crm-footer { color: #666; font-size: 0.85rem; border-top: 1px solid #e0e0e0; margin-top: 2rem; }
</style>
</head>
<body>
<nav class="crm-pager" aria-label="Reports of this run"><a href="latest/index.html">&uarr; latest run</a> <a href="../index.html">all runs</a></nav>
<h1>{{ title }}: history of the run <code>{{ run_name }}</code></h1>
<p>{{ runs|length }} kept run{{ 's' if runs|length != 1 }}, observation ends {{ runs|join(', ') }}.</p>
<h2 id="changes">What changed since the last run</h2>
{% if changes %}<p>Run of {{ latest }} against {{ previous }}:</p>
<ul>{% for sentence in changes %}<li>{{ sentence }}</li>{% endfor %}</ul>
{% else %}<p>{{ no_changes }}</p>{% endif %}
<h2 id="trends">Headline figures over the runs</h2>
{% if trend %}<img src="{{ trend }}" alt="Headline figures of each kept run, by observation end; intervals shaded.">{% endif %}
{% if segments %}<img src="{{ segments }}" alt="Share of customers in each RFM segment, by observation end.">{% endif %}
{% if figure_rows %}<div class="crm-scroll"><table class="history">
<tr>{% for h in figure_header %}<th>{{ h }}</th>{% endfor %}</tr>
{% for row in figure_rows %}<tr>{% for cell in row %}<td>{{ cell|safe }}</td>{% endfor %}</tr>
{% endfor %}</table></div>
{% else %}<p>No kept run has a headline.json yet.</p>{% endif %}
<h2 id="predictions">Predictions scored against what happened</h2>
{% if scores %}<p>Each earlier run stored its per-customer predictions in the private folder; the run of {{ latest_scored }}
scored them against the transactions that arrived since. Only the elapsed part of each horizon is scored: the prediction
is the model's expected number of repeat purchases over the elapsed {{ unit }}, given each customer's history
(one purchase per customer and {{ unit_one }}, as the models count them).</p>
<ul>{% for sentence in tracking_sentences %}<li>{{ sentence }}</li>{% endfor %}</ul>
<img src="{{ tracking }}" alt="Predicted and actual repeat purchases of each earlier prediction set, tracking curves and calibration by decile.">
<div class="crm-scroll"><table class="history">
<tr>{% for h in tracking_header %}<th>{{ h }}</th>{% endfor %}</tr>
{% for row in tracking_rows %}<tr>{% for cell in row %}<td>{{ cell|safe }}</td>{% endfor %}</tr>
{% endfor %}</table></div>
{% else %}<p>{{ no_scores }}</p>{% endif %}
{{ footer|safe }}
</body>
</html>
"""


def _latest_scores(run_dir: Path, entries: list[str]) -> tuple[str, list[dict[str, Any]]]:
    """The scores of the newest kept run that scored anything (its end, its scores)."""
    from crm_lib.clv.tracking import TRACKING_FILE

    for entry in reversed(entries):
        path = run_dir / entry / TRACKING_FILE
        if path.is_file():
            payload = json.loads(path.read_text(encoding="utf-8"))
            if payload.get("scores"):
                return entry, payload["scores"]
    return "", []


def render_history(run_dir: str | Path, *, title: str, packages: dict[str, str] | None = None,
                   version: str | None = None) -> str:
    """HTML of the history page of the kept runs in ``run_dir`` (see the module docstring)."""
    import jinja2

    from crm_lib.report.chrome import code_version, footer
    from crm_lib.report.index import package_versions
    from crm_lib.report.publish import history_entries

    run_dir = Path(run_dir)
    entries = history_entries(run_dir)
    headlines = load_headlines(run_dir)
    changes = change_sentences(headlines[-2], headlines[-1]) if len(headlines) >= 2 else []
    figure_header, figure_rows = figures_table(headlines)
    scored_at, scores = _latest_scores(run_dir, entries)
    tracking_header, tracking_rows = tracking_table(scores)
    unit, unit_one = time_unit_words(scores[0]["time_unit"]) if scores else ("weeks", "week")
    template = jinja2.Template(PAGE_TEMPLATE, autoescape=True, trim_blocks=True, lstrip_blocks=True)
    return template.render(
        title=title, run_name=run_dir.name, runs=entries, changes=changes,
        latest=headlines[-1]["observation_end"] if headlines else "",
        previous=headlines[-2]["observation_end"] if len(headlines) >= 2 else "",
        no_changes="Only one kept run has headline figures: nothing to compare yet." if headlines
        else "No kept run has headline figures.",
        trend=trend_chart(headlines), segments=segment_chart(headlines),
        figure_header=figure_header, figure_rows=figure_rows,
        scores=scores, latest_scored=scored_at, unit=unit, unit_one=unit_one,
        tracking_sentences=[tracking_sentence(s) for s in scores], tracking=tracking_charts(scores),
        tracking_header=tracking_header, tracking_rows=tracking_rows,
        no_scores="No earlier predictions could be scored yet: the next run over a later window scores this run's.",
        footer=footer(packages if packages is not None else package_versions(),
                      version if version is not None else code_version()),
    )


def write_history_page(run_dir: str | Path, *, title: str) -> Path | None:
    """Write ``run_dir/history.html`` (replaced atomically); None when ``run_dir`` keeps no history."""
    from crm_lib.report.publish import history_entries

    run_dir = Path(run_dir)
    if not history_entries(run_dir):
        return None
    target = run_dir / HISTORY_PAGE
    temporary = run_dir / f".{HISTORY_PAGE}.{os.getpid()}"
    temporary.write_text(render_history(run_dir, title=title), encoding="utf-8")
    os.replace(temporary, target)
    return target


# ---------------------------------------------------------------------------------- the runner's hook
@contextlib.contextmanager
def _kernel_environment(private_staging: Path, private_root: Path) -> Iterator[None]:
    """The private-folder variables the runner gives the notebooks' kernels, so the run context
    here finds the very cache the notebooks filled."""
    from crm_lib.export import PRIVATE_DIR_ENV, PRIVATE_ROOT_ENV

    wanted = {PRIVATE_DIR_ENV: str(private_staging), PRIVATE_ROOT_ENV: str(private_root)}
    saved = {name: os.environ.pop(name, None) for name in wanted}
    os.environ.update(wanted)
    try:
        yield
    finally:
        for name, value in saved.items():
            os.environ.pop(name, None)
            os.environ.update({} if value is None else {name: value})


def context_headline(ctx, run_name: str) -> dict[str, Any]:
    """A ``headline.json`` from the run context alone (log figures; value figures when cached).

    For runs whose notebooks wrote no findings; the runner's findings-based headline
    (same schema) replaces it when present.
    """
    from crm_lib.kpi import headline_kpis

    log = ctx.log
    kpis = headline_kpis(log)
    money = str(ctx.knobs.get("currency") or "USD")
    figures = {
        "customers": {"value": int(log.n_customers), "unit": "customers", "page": "01_data_overview.html"},
        "transactions": {"value": int(log.n_transactions), "unit": "transactions", "page": "01_data_overview.html"},
        "revenue": {"value": float(kpis.revenue), "unit": money, "page": "01_data_overview.html"},
    }
    if (ctx.cache_dir / "customer_values.pkl").is_file():
        figures["share_alive"] = {"value": float(ctx.share_alive), "unit": "share", "page": "04_lifetime_value.html"}
        figures["value_model"] = {"value": str(ctx.value_model), "unit": "model", "page": "04_lifetime_value.html"}
        value = float(ctx.customer_values["clv"].sum())
        figures["customer_equity"] = {"value": value, "unit": money, "page": "04_lifetime_value.html"}
        if (ctx.cache_dir / "equity.pkl").is_file():
            figures["customer_equity"].update(lower=float(ctx.equity.expected_lower),
                                              upper=float(ctx.equity.expected_upper))
    for key, figure in figures.items():
        figure.update(key=key, text=f"{label(key)}: {format_value(figure['value'], figure['unit'])}",
                      notebook="run context", anchor="")
        figure.setdefault("lower", None)
        figure.setdefault("upper", None)
    return {"run": run_name, "observation_end": f"{log.observation_end:%Y-%m-%d}",
            "calibration_end": None if ctx.knobs.get("calibration_end") is None else f"{ctx.calibration_end:%Y-%m-%d}",
            "figures": figures}


def record_run(params, private_root: str | Path, private_staging: str | Path, report_staging: str | Path,
               keep_runs: int | None = None) -> None:
    """The runner's hook before publishing a kept run: score and store predictions, make sure of a headline.

    Opens the run context of ``params`` (the same knobs and cache as its notebooks), writes
    ``tracking.json`` (:func:`crm_lib.clv.tracking.track_run_predictions`) and, when the
    runner wrote no ``headline.json``, one from the run context (:func:`context_headline`).
    Prediction sets older than the ``keep_runs`` kept runs are deleted. A problem here is
    logged and leaves the report as it is.
    """
    from crm_lib.clv.tracking import track_run_predictions
    from crm_lib.context import session
    from crm_lib.exceptions import CRMWorkbenchError

    report_staging = Path(report_staging)
    try:
        with _kernel_environment(Path(private_staging), Path(private_root)):
            ctx = session(params.path, **params.parameters)
            track_run_predictions(ctx, private_root, params.run_name, report_staging, keep_runs=keep_runs)
            headline = report_staging / HEADLINE_FILE
            if not headline.exists():
                headline.write_text(json.dumps(context_headline(ctx, params.run_name), sort_keys=True, indent=1)
                                    + "\n", encoding="utf-8")
    except (CRMWorkbenchError, OSError, ValueError, KeyError) as error:
        logger.warning("history: no predictions scored or stored for the run %s (%s: %s)", params.run_name,
                       type(error).__name__, error)
    except Exception:  # noqa: BLE001 -- history and scoring are extras: never lose a good report to them
        logger.warning("history: an unexpected error while scoring or storing the predictions of the run %s; the "
                       "report is published without them", params.run_name, exc_info=True)
