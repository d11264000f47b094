"""The run's ``index.html`` (for reviewers), ``headline.json`` and ``manifest.json`` (for machines).

The index opens with the run's headline figures (customers, revenue, customer equity with
its interval, retention, the loyalty verdicts), each linking to the section of the report
that shows it. They come from the key findings each notebook wrote to
``$CRM_FINDINGS_DIR/<notebook>.json`` (:mod:`crm_lib.report.findings`), gathered into
``headline.json`` by :func:`write_headline`.

The index holds nothing that changes between two runs of the same params on the same
data (no clock time, no durations), so it is byte-identical on a re-run; the manifest
also records the time each notebook took.
"""
from __future__ import annotations

import json
import logging
import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

import jinja2
import yaml

from crm_lib import format as fmt

logger = logging.getLogger(__name__)

#: Packages whose versions are recorded with every report.
RECORDED_PACKAGES = (
    "crm-workbench",
    "pandas",
    "numpy",
    "scipy",
    "statsmodels",
    "lifetimes",
    "matplotlib",
    "seaborn",
    "papermill",
    "nbconvert",
    "nbformat",
    "ipykernel",
    "pyarrow",
)


def package_versions() -> dict[str, str]:
    """Installed versions of the packages a report depends on."""
    versions = {"python": platform.python_version()}
    for name in RECORDED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


#: File name of the run's headline figures in the report folder.
HEADLINE_FILE = "headline.json"
#: Headline figures in the order the index shows them as cards (keys by prefix); every other
#: finding follows in a folded list, segment shares first.
HEADLINE_ORDER = ("customers", "transactions", "revenue", "customer_equity", "value_model", "retention",
                  "share_alive", "loyalty_")
MORE_ORDER = ("segment_share_",)
#: Short names of the headline figures on the index.
HEADLINE_LABELS = {
    "customers": "Customers",
    "transactions": "Transactions",
    "revenue": "Revenue",
    "customer_equity": "Customer equity",
    "value_model": "Value model",
    "retention_12m": "12-month retention",
    "retention_lapse": "Retention (lapse rule)",
    "share_alive": "Customers more likely alive than not",
    "loyalty_M": "Loyalty-profit matrix",
}


def findings_dir(private_dir: Path) -> Path:
    """The folder where the notebooks of a run write their key findings: ``<private_dir>/findings``."""
    return Path(private_dir) / "findings"


def read_findings(folder: Path) -> dict[str, list[dict[str, Any]]]:
    """The findings every notebook wrote to ``folder`` (``<notebook>.json``), by notebook name.

    A file that is not valid findings JSON is skipped with a warning: the run index then
    lacks its figures but the reports are still published.
    """
    found: dict[str, list[dict[str, Any]]] = {}
    folder = Path(folder)
    if not folder.is_dir():
        return found
    for path in sorted(folder.glob("*.json")):
        try:
            content = json.loads(path.read_text(encoding="utf-8"))
            found[str(content.get("notebook") or path.stem)] = [dict(f) for f in content["findings"]]
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            logger.warning("skipping %s, not a findings file: %s", path, error)
    return found


def headline(findings: dict[str, list[dict[str, Any]]], *, run: str, observation_end: str | None,
             calibration_end: str | None, notebooks: list[str] | None = None) -> dict[str, Any]:
    """The run's headline figures: every finding keyed by its ``key``, with its notebook and page link.

    Parameters
    ----------
    findings : dict
        From :func:`read_findings`.
    run : str
        The run name.
    observation_end, calibration_end : str or None
        ``YYYY-MM-DD``.
    notebooks : list of str, optional
        Notebooks in run order: a key found in two notebooks keeps the first one's
        (default: by name).

    Returns
    -------
    dict
        ``{"run", "observation_end", "calibration_end", "figures": {key: {**finding,
        "notebook", "page"}}}``; ``page`` is ``<notebook>.html#<anchor>`` (no ``#`` without anchor).
    """
    figures: dict[str, dict[str, Any]] = {}
    order = [nb for nb in (notebooks or []) if nb in findings] + sorted(set(findings) - set(notebooks or []))
    for notebook in order:
        for finding in findings[notebook]:
            anchor = finding.get("anchor") or ""
            page = f"{notebook}.html" + (f"#{anchor}" if anchor else "")
            figures.setdefault(str(finding["key"]), {**finding, "notebook": notebook, "page": page})
    return {"run": run, "observation_end": observation_end, "calibration_end": calibration_end, "figures": figures}


def headline_json(content: dict[str, Any]) -> str:
    """``headline.json`` text: sorted keys, indent 1, deterministic."""
    return json.dumps(content, sort_keys=True, indent=1, ensure_ascii=False) + "\n"


def write_headline(report_dir: Path, folder: Path, *, run: str, observation_end: str | None,
                   calibration_end: str | None, notebooks: list[str] | None = None) -> dict[str, Any]:
    """Gather the findings in ``folder`` into ``<report_dir>/headline.json``; the headline written."""
    content = headline(read_findings(folder), run=run, observation_end=observation_end,
                       calibration_end=calibration_end, notebooks=notebooks)
    (Path(report_dir) / HEADLINE_FILE).write_text(headline_json(content), encoding="utf-8")
    return content


def _rank(key: str) -> tuple[int, str]:
    for position, prefix in enumerate(HEADLINE_ORDER + MORE_ORDER):
        if key.startswith(prefix):
            return position, key
    return len(HEADLINE_ORDER) + len(MORE_ORDER), key


def _shown_value(figure: dict[str, Any]) -> str:
    """A headline value in words: counts with separators, money with its code, shares as %, verdicts as given."""
    value, unit = figure.get("value"), str(figure.get("unit") or "")
    if value is None or isinstance(value, str):
        return "" if value is None else value
    if unit == "share" or unit.startswith("share "):  # "share at 364 days": a share at a stated age
        shown = fmt.percent(value, 1) + unit[len("share"):]
        bounds = [fmt.percent(figure.get(b), 1) for b in ("lower", "upper")]
    elif unit in {"USD", "EUR", "GBP"} or len(unit) == 3 and unit.isupper():
        shown = fmt.currency(value, unit)
        bounds = [fmt.number(figure.get(b)) for b in ("lower", "upper")]
    else:
        decimals = 0 if float(value).is_integer() or abs(value) >= 100 else 2
        shown = f"{fmt.number(value, decimals)} {unit}".strip()
        bounds = [fmt.number(figure.get(b), decimals) for b in ("lower", "upper")]
    if all(bounds):
        shown += f" ({bounds[0]} to {bounds[1]})"
    return shown


def headline_rows(content: dict[str, Any] | None, titles: dict[str, str] | None = None) -> list[dict[str, str]]:
    """Rows of the index's headline: label, value (with interval), sentence, link, link text and ``main``
    (a card at the top; the other findings are listed folded below the cards)."""
    if not content:
        return []
    titles = titles or {}
    rows, folded_texts = [], set()
    for key in sorted(content.get("figures", {}), key=_rank):
        figure = content["figures"][key]
        label = HEADLINE_LABELS.get(key) or (
            f"Loyalty hypothesis {key.split('_', 1)[1]}" if key.startswith("loyalty_H")
            else f"Segment share: {key.removeprefix('segment_share_').replace('_', ' ')}"
            if key.startswith("segment_share_") else key.replace("_", " ").capitalize())
        main = _rank(key)[0] < len(HEADLINE_ORDER)
        text = str(figure.get("text", ""))
        if not main:  # findings that share one sentence (e.g. segment shares) show it once in the folded list
            text = "" if text in folded_texts else text
            folded_texts.add(str(figure.get("text", "")))
        rows.append({"label": label, "value": _shown_value(figure), "text": text,
                     "page": figure["page"], "source": titles.get(figure["notebook"], figure["notebook"]),
                     "main": main})
    return rows


INDEX_TEMPLATE = jinja2.Template(
    """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>{{ title }}</title>
<style>
  body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 960px; margin: 2rem auto; padding: 0 1rem; color: #222; line-height: 1.45; }
  h1 { margin-bottom: 0.2rem; }
  .sub { color: #555; margin-top: 0; }
  table { border-collapse: collapse; margin: 0.6rem 0 1.4rem 0; }
  th, td { border-bottom: 1px solid #ddd; padding: 0.3rem 0.8rem; text-align: left; vertical-align: top; }
  th { background: #f4f4f4; }
  .ok { color: #1a7f37; font-weight: bold; }
  .failed { color: #b42318; font-weight: bold; }
  .banner { background: #fdecea; border: 1px solid #b42318; padding: 0.6rem 1rem; margin: 1rem 0; }
  pre { background: #f6f8fa; padding: 0.8rem; overflow-x: auto; font-size: 0.85rem; }
  code { font-size: 0.9em; overflow-wrap: anywhere; word-break: break-all; }
  pre { white-space: pre-wrap; overflow-wrap: anywhere; }
  .scroll { overflow-x: auto; max-width: 100%; }
  .headline { list-style: none; padding: 0; margin: 0.6rem 0 1.4rem 0; display: grid; grid-template-columns: repeat(auto-fill, minmax(16rem, 1fr)); gap: 0.6rem; }
  .headline li { border: 1px solid #d6dde6; border-radius: 4px; padding: 0.5rem 0.7rem; background: #f8fafc; min-width: 0; overflow-wrap: anywhere; }
  .headline a.figure { text-decoration: none; color: inherit; }
  .headline a.figure:hover .value { text-decoration: underline; }
  .headline .label { display: block; color: #444; font-size: 0.9rem; }
  .headline .value { display: block; font-size: 1.25rem; font-weight: 600; margin: 0.1rem 0; color: #1d4f91; }
  .headline .text { display: block; font-size: 0.85rem; color: #444; }
  details { margin: 0.6rem 0 1rem 0; }
  summary { cursor: pointer; font-weight: 600; }
</style>
</head>
<body>
<p class="sub"><a href="../index.html">&larr; all runs</a></p>
<h1>{{ title }}</h1>
<p class="sub">Run <code>{{ run_name }}</code> from <code>{{ params_file }}</code>
{%- if data %}, data {{ data.observation_start }} to {{ data.observation_end }}{% endif %}.</p>
{% if failed %}
<div class="banner"><strong>{{ failed }} of {{ notebooks|length }} notebook{{ 's' if notebooks|length != 1 }} failed.</strong>
This run was not published over the last good report; the failed reports are shown for diagnosis.</div>
{% endif %}
{% if history %}<p><a href="../history.html">History of this run: figures over every kept run and earlier predictions scored</a></p>{% endif %}
{% if headline %}
<h2 id="headline">Headline figures</h2>
<ul class="headline">
{% for row in headline if row.main %}
<li><a class="figure" href="{{ row.page }}"><span class="label">{{ row.label }}</span><span class="value">{{ row.value }}</span></a>
<span class="text">{{ row.text }} <a href="{{ row.page }}">{{ row.source }} &rarr;</a></span></li>
{% endfor %}
</ul>
{% set more = headline | rejectattr("main") | list %}
{% if more %}
<details>
<summary>{{ more|length }} more finding{{ 's' if more|length != 1 }} of this run</summary>
<ul>
{% for row in more %}
<li><strong>{{ row.label }}: {{ row.value }}.</strong> {{ row.text }} <a href="{{ row.page }}">{{ row.source }} &rarr;</a></li>
{% endfor %}
</ul>
</details>
{% endif %}
{% endif %}
<h2>Reports</h2>
<div class="scroll"><table>
<tr><th>#</th><th>report</th><th>status</th><th>error</th></tr>
{% for nb in notebooks %}
<tr><td>{{ loop.index }}</td><td><a href="{{ nb.html }}">{{ nb.title }}</a></td>
<td class="{{ nb.status }}">{{ nb.status }}</td><td>{{ nb.error }}</td></tr>
{% endfor %}
</table></div>
{% if data %}
<h2>Input data</h2>
<div class="scroll"><table>
<tr><th>file</th><td><code>{{ data.file }}</code></td></tr>
<tr><th>SHA-256</th><td><code>{{ data.sha256 }}</code></td></tr>
<tr><th>size</th><td>{{ "{:,}".format(data.bytes) }} bytes</td></tr>
<tr><th>rows read</th><td>{{ "{:,}".format(data.rows_read) }}</td></tr>
<tr><th>rows used</th><td>{{ "{:,}".format(data.rows_used) }}</td></tr>
<tr><th>customers</th><td>{{ "{:,}".format(data.customers) }}</td></tr>
<tr><th>observation window</th><td>{{ data.observation_start }} to {{ data.observation_end }}</td></tr>
</table></div>
{% endif %}
<h2>Parameters and software</h2>
<details>
<summary>Parameters set in {{ params_file }}</summary>
<p>Every other knob keeps its notebook default.</p>
<pre>{{ parameters_yaml }}</pre>
</details>
<details>
<summary>Code version and packages</summary>
<p>Code version <code>{{ code_version }}</code>.</p>
<div class="scroll"><table>
{% for name, version in packages.items() %}<tr><th>{{ name }}</th><td>{{ version }}</td></tr>
{% endfor %}
</table></div>
</details>
<p class="sub">Run manifest with timings: <a href="manifest.json">manifest.json</a>.</p>
</body>
</html>
""",
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
)


def render_index(*, title: str, run_name: str, params_file: str, parameters: dict[str, Any],
                 notebooks: list[dict[str, Any]], data: dict[str, Any] | None, packages: dict[str, str],
                 code_version: str = "not recorded", headline: dict[str, Any] | None = None,
                 history: bool = False) -> str:
    """HTML of the run's index page: headline figures, links, status, errors, data, parameters, versions.

    ``headline`` is the run's :func:`headline` (None or empty: no headline section).
    """
    failed = sum(1 for nb in notebooks if nb["status"] != "ok")
    parameters_yaml = yaml.safe_dump(parameters, sort_keys=True, allow_unicode=True) if parameters else "(none)\n"
    titles = {nb["name"]: nb["title"] for nb in notebooks if "name" in nb}
    return INDEX_TEMPLATE.render(title=title, run_name=run_name, params_file=params_file, notebooks=notebooks,
                                 parameters_yaml=parameters_yaml, failed=failed, data=data, packages=packages,
                                 code_version=code_version, headline=headline_rows(headline, titles), history=history)


def manifest_json(manifest: dict[str, Any]) -> str:
    """The manifest as stable, sorted JSON."""
    return json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n"


RUNS_TEMPLATE = jinja2.Template(
    """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>All report runs</title>
<style>
  body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 960px; margin: 2rem auto; padding: 0 1rem; color: #222; line-height: 1.45; }
  .scroll { overflow-x: auto; }
  table { border-collapse: collapse; margin: 0.6rem 0 1.4rem 0; }
  th, td { border-bottom: 1px solid #ddd; padding: 0.3rem 0.8rem; text-align: left; vertical-align: top; }
  th { background: #f4f4f4; }
  .ok { color: #1a7f37; font-weight: bold; }
  .failed { color: #b42318; font-weight: bold; }
</style>
</head>
<body>
<h1>All report runs</h1>
{% if runs %}
<div class="scroll"><table>
<tr><th>run</th><th>title</th><th>data window</th><th>status</th></tr>
{% for run in runs %}
<tr><td><a href="{{ run.folder }}/index.html">{{ run.folder }}</a></td><td>{{ run.title }}</td>
<td>{{ run.window }}{% if run.folder.endswith("/latest") %} (<a href="{{ run.folder[:-7] }}/history.html">history</a>){% endif %}</td><td class="{{ run.status }}">{{ run.status }}</td></tr>
{% endfor %}
</table></div>
{% else %}
<p>No run has been published yet.</p>
{% endif %}
<p>Per-customer exports of each run stay in the private folder (<code>.crm_private/runs/&lt;run&gt;/</code>), never here.</p>
</body>
</html>
""",
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
)


def list_runs(output_dir: Path) -> list[dict[str, str]]:
    """Every published run under ``output_dir`` (folders with a ``manifest.json``), by name."""
    runs = []
    for folder in sorted(Path(output_dir).iterdir()):
        manifest_path = folder / "manifest.json"
        if not manifest_path.is_file() and (folder / "latest" / "manifest.json").is_file():  # a run with history
            folder, manifest_path = folder / "latest", folder / "latest" / "manifest.json"
        if folder.name.startswith(".") or not manifest_path.is_file():
            continue
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        data = manifest.get("data") or {}
        window = f"{data['observation_start']} to {data['observation_end']}" if "observation_start" in data else ""
        runs.append({"folder": folder.relative_to(output_dir).as_posix(), "title": str(manifest.get("title", "")),
                     "window": window, "status": "ok" if manifest.get("status") == "ok" else "failed"})
    return runs


def write_runs_index(output_dir: Path) -> Path:
    """Write ``<output_dir>/index.html`` listing every run; replaced atomically."""
    output_dir = Path(output_dir)
    target = output_dir / "index.html"
    temporary = output_dir / f".index.html.{os.getpid()}"
    temporary.write_text(RUNS_TEMPLATE.render(runs=list_runs(output_dir)), encoding="utf-8")
    os.replace(temporary, target)
    return target
