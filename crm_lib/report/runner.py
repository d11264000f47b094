"""A whole run: params file in, ``reports/<run name>/`` out, published atomically.

1. The params file is checked against the notebooks' knobs, and the input data is
   loaded and validated once, before anything runs: bad input stops the run with a
   clear error and nothing is written.
2. Every notebook is executed with Papermill in a staging folder (the notebooks' working
   directory, so files they export land next to the report) and rendered to HTML. A
   failing notebook does not stop the others.
3. The index and the manifest are written.
4. If every notebook succeeded, the staging folder replaces ``reports/<run name>/``;
   otherwise it becomes ``reports/<run name>.failed/`` and the last good report stays.
"""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import nbformat

from crm_lib.data import load_transactions
from crm_lib.datasets import EMBEDDED_PREFIX, resolve_data_path
from crm_lib.exceptions import ParamsError
from crm_lib.report.execute import NotebookRun, execute_notebook, make_reproducible
from crm_lib.report.index import manifest_json, package_versions, render_index
from crm_lib.report.params import RunParams, load_run_params
from crm_lib.report.render import render_html

logger = logging.getLogger(__name__)

#: Notebook knob -> keyword of :func:`crm_lib.data.load_transactions`.
DATA_KNOBS = {
    "column_map": "column_map",
    "csv_separator": "sep",
    "date_format": "date_format",
    "observation_end": "observation_end",
    "duplicate_rows": "duplicate_rows",
    "negative_amounts": "negative_amounts",
    "zero_amounts": "zero_amounts",
}


@dataclass(frozen=True)
class RunResult:
    """What a run produced.

    Attributes
    ----------
    run_name : str
    report_dir : Path
        ``reports/<run name>/`` when published, ``reports/<run name>.failed/`` otherwise.
    notebooks : list of NotebookRun
    published : bool
        True when every notebook succeeded and the report replaced the previous one.
    manifest : dict
    """

    run_name: str
    report_dir: Path
    notebooks: list[NotebookRun]
    published: bool
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def index_path(self) -> Path:
        return self.report_dir / "index.html"

    @property
    def ok(self) -> bool:
        return all(nb.ok for nb in self.notebooks)

    def summary(self) -> str:
        """One line per notebook and where the index is."""
        lines = [f"run {self.run_name}: {'published' if self.published else 'NOT published (a notebook failed)'}"]
        for nb in self.notebooks:
            lines.append(f"  {nb.name:<32} {nb.status:<7} {nb.seconds:7.1f} s  {nb.error}")
        lines.append(f"  index: {self.index_path}")
        return "\n".join(lines)


def sha256_of(path: Path) -> str:
    """SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def resolve_run_data_path(params: RunParams) -> str | None:
    """The run's ``data_path`` knob made absolute (relative paths are read from the params file's folder)."""
    value = params.effective().get("data_path")
    if value is None:
        return None
    if str(value).startswith(EMBEDDED_PREFIX):
        return str(value)
    return str(resolve_data_path(value, base_dir=params.path.parent.resolve()))


def check_data(params: RunParams) -> dict[str, Any] | None:
    """Load and validate the run's input data once; its facts for the index and manifest.

    Raises
    ------
    DataValidationError
        When the data cannot be analysed (the run stops before executing anything).
    """
    data_path = resolve_run_data_path(params)
    if data_path is None:
        return None
    knobs = params.effective()
    kwargs = {keyword: knobs[knob] for knob, keyword in DATA_KNOBS.items() if knob in knobs}
    log = load_transactions(data_path, **kwargs)
    return {
        "file": log.path.name,
        "path": str(log.path),
        "sha256": sha256_of(log.path),
        "bytes": log.path.stat().st_size,
        "rows_read": log.rows_read,
        "rows_used": log.n_transactions,
        "customers": log.n_customers,
        "observation_start": f"{log.observation_start:%Y-%m-%d}",
        "observation_end": f"{log.observation_end:%Y-%m-%d}",
    }


def notebook_title(nb: nbformat.NotebookNode, default: str) -> str:
    """The first Markdown heading of a notebook, or ``default``."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return default


def _replace_dir(source: Path, target: Path) -> None:
    """Move ``source`` to ``target``, replacing it; the old one is removed only after the swap."""
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    if target.exists():
        target.rename(old)
    source.rename(target)
    if old.exists():
        shutil.rmtree(old)


def run_report(
    params_path: str | Path,
    *,
    output_dir: str | Path = "reports",
    notebooks_dir: str | Path = "notebooks",
    only: list[str] | None = None,
    kernel_name: str | None = None,
    progress_bar: bool = False,
    timeout_seconds: int | None = None,
    on_progress: Callable[[str], None] | None = None,
) -> RunResult:
    """Execute and render every notebook of a params file; publish when all succeed.

    Parameters
    ----------
    params_path : str or Path
        The params file (``params/cdnow.yaml``).
    output_dir : str or Path
        Folder of the reports; the run writes ``<output_dir>/<run name>/``.
    notebooks_dir : str or Path
        Folder of the notebooks.
    only : list of str, optional
        Run only these notebooks of the file (by name).
    kernel_name : str, optional
        Jupyter kernel; defaults to the notebook's (``python3``, this interpreter).
    progress_bar : bool
        Show Papermill's per-cell progress bar.
    timeout_seconds : int, optional
        Longest a single cell may run.
    on_progress : callable, optional
        Called with one line of progress per step (the CLI prints them).

    Returns
    -------
    RunResult

    Raises
    ------
    ParamsError, DataValidationError
        Before anything runs or is written.
    """
    say = on_progress or logger.info
    params = load_run_params(params_path, notebooks_dir)
    notebooks = params.notebooks
    if only:
        wanted = {name.removesuffix(".ipynb") for name in only}
        unknown = wanted - {nb.stem for nb in notebooks}
        if unknown:
            raise ParamsError(
                f"{params.path}: --only names {sorted(unknown)}, not in its notebooks list "
                f"({', '.join(nb.stem for nb in notebooks)})."
            )
        notebooks = [nb for nb in notebooks if nb.stem in wanted]
    say(f"checking the input data of {params.path} ...")
    data = check_data(params)
    if data:
        say(f"data: {data['file']}: {data['rows_used']:,} transactions, {data['customers']:,} customers, "
            f"{data['observation_start']} to {data['observation_end']}")
    data_path = resolve_run_data_path(params)

    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    staging = output_dir / f".{params.run_name}.staging-{os.getpid()}"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir()
    runs: list[NotebookRun] = []
    entries: list[dict[str, Any]] = []
    try:
        for number, notebook in enumerate(notebooks, start=1):
            say(f"[{number}/{len(notebooks)}] {notebook.stem}: running ...")
            parameters = params.parameters_for(notebook)
            if data_path is not None and "data_path" in params.declared.get(notebook.stem, {}):
                parameters["data_path"] = data_path
            executed = staging / notebook.name
            run = execute_notebook(
                notebook.resolve(),
                executed.resolve(),
                parameters,
                cwd=staging.resolve(),
                kernel_name=kernel_name,
                progress_bar=progress_bar,
                timeout_seconds=timeout_seconds,
            )
            runs.append(run)
            title = notebook.stem
            html_name = f"{notebook.stem}.html"
            if executed.exists():
                nb = make_reproducible(nbformat.read(executed, as_version=4))
                nbformat.write(nb, executed)
                title = notebook_title(nb, notebook.stem)
                (staging / html_name).write_text(render_html(nb, f"{params.title}: {title}"), encoding="utf-8")
            status = "done" if run.ok else f"FAILED ({run.error})"
            say(f"[{number}/{len(notebooks)}] {notebook.stem}: {status} in {run.seconds:.1f} s")
            entries.append({"name": notebook.stem, "title": title, "html": html_name, "status": run.status,
                            "error": run.error})

        packages = package_versions()
        (staging / "index.html").write_text(
            render_index(
                title=params.title,
                run_name=params.run_name,
                params_file=params.path.name,
                parameters=params.parameters,
                notebooks=entries,
                data={k: v for k, v in data.items() if k != "path"} if data else None,
                packages=packages,
            ),
            encoding="utf-8",
        )
        manifest = {
            "run_name": params.run_name,
            "title": params.title,
            "params_file": str(params.path),
            "parameters": params.parameters,
            "effective_parameters": params.effective(),
            "data": data,
            "packages": packages,
            "notebooks": [
                {**entry, "seconds": round(run.seconds, 2)} for entry, run in zip(entries, runs)
            ],
            "status": "ok" if all(r.ok for r in runs) else "failed",
        }
        (staging / "manifest.json").write_text(manifest_json(manifest), encoding="utf-8")

        published = all(r.ok for r in runs)
        final = output_dir / (params.run_name if published else f"{params.run_name}.failed")
        _replace_dir(staging, final)
        if published:
            stale = output_dir / f"{params.run_name}.failed"
            if stale.exists():
                shutil.rmtree(stale)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return RunResult(run_name=params.run_name, report_dir=final, notebooks=runs, published=published,
                     manifest=manifest)
