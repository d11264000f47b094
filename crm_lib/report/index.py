"""The run's ``index.html`` (for reviewers) and ``manifest.json`` (for machines).

The index holds nothing that changes between two runs of the same params on the same
data (no clock time, no durations), so it is byte-identical on a re-run; the manifest
also records the time each notebook took.
"""
from __future__ import annotations

import json
import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

import jinja2
import yaml

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
<h2>Parameters</h2>
<p>Set in <code>{{ params_file }}</code> (every other knob keeps its notebook default):</p>
<pre>{{ parameters_yaml }}</pre>
<h2>Software</h2>
<p>Code version <code>{{ code_version }}</code>.</p>
<div class="scroll"><table>
{% for name, version in packages.items() %}<tr><th>{{ name }}</th><td>{{ version }}</td></tr>
{% endfor %}
</table></div>
<p class="sub">Run manifest with timings: <a href="manifest.json">manifest.json</a>.</p>
</body>
</html>
""",
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
)


def render_index(
    *,
    title: str,
    run_name: str,
    params_file: str,
    parameters: dict[str, Any],
    notebooks: list[dict[str, Any]],
    data: dict[str, Any] | None,
    packages: dict[str, str],
    code_version: str = "not recorded",
    history: bool = False,
) -> str:
    """HTML of the run's index page: links, status, errors, data, parameters, versions."""
    failed = sum(1 for nb in notebooks if nb["status"] != "ok")
    parameters_yaml = yaml.safe_dump(parameters, sort_keys=True, allow_unicode=True) if parameters else "(none)\n"
    return INDEX_TEMPLATE.render(
        title=title,
        run_name=run_name,
        params_file=params_file,
        parameters_yaml=parameters_yaml,
        notebooks=notebooks,
        failed=failed,
        data=data,
        packages=packages,
        code_version=code_version,
        history=history,
    )


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
