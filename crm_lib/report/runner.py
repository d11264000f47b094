"""A whole run: params file in, ``reports/<run name>/`` out, published atomically.

1. The params file is checked against the notebooks' knobs and confined (notebooks only
   from the notebooks folder, output paths only under the private folder, run names
   without separators or reserved suffixes); the pseudonym key is found (or created);
   the input data is loaded and validated once. Any problem stops the run (exit 2)
   before anything is written.
2. One lock per run name: a second run of the same name exits with a message or waits.
3. Every notebook is executed with Papermill in the *private* staging folder
   ``.crm_private/runs/.<run>.staging-*`` (its working directory, so real-id exports and
   the executed notebooks land there, never in the reviewers' folder) and rendered to
   HTML in the report staging folder. A failing notebook does not stop the others.
4. The index and the manifest are written; ``--only`` merges the new pages into the last
   good report.
5. Both staging folders are published by an atomic symlink swap
   (:mod:`crm_lib.report.publish`) as ``<run>`` when every notebook succeeded, otherwise
   as ``<run>.failed`` and the last good report stays. With ``keep_runs`` (``--keep-runs``)
   a good run is published as ``<run>/<observation end>`` with ``<run>/latest`` at the
   newest (:func:`crm_lib.report.publish.publish_dated`), and data with no rows after the
   latest kept run is refused before anything runs. SIGTERM cleans up like Ctrl-C;
   staging folders of killed runs are removed by the next run.
"""
from __future__ import annotations

import contextlib
import json
import logging
import shutil
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import nbformat
import pandas as pd

from crm_lib.data import ObservationWindow, load_transactions
from crm_lib.datasets import EMBEDDED_PREFIX, resolve_data_path
from crm_lib.exceptions import CRMWorkbenchError, DataValidationError, ParamsError
from crm_lib import paths
from crm_lib.export import PRIVATE_DIR_ENV, PRIVATE_ROOT_ENV
from crm_lib.keys import load_key, refuse_salt_knob
from crm_lib.readers import sha256_of
from crm_lib.report.execute import (
    DEFAULT_CELL_TIMEOUT_SECONDS,
    DEFAULT_NOTEBOOK_TIMEOUT_SECONDS,
    NotebookRun,
    execute_notebook,
    kill_kernels,
    make_reproducible,
)
from crm_lib.report.findings import FINDINGS_DIR_ENV
from crm_lib.report.pool import auto_jobs, previous_seconds, run_tasks, start_order
from crm_lib.report.index import (
    findings_dir,
    headline_json,
    manifest_json,
    package_versions,
    render_index,
    write_headline,
    write_runs_index,
)
from crm_lib.report.params import (
    RunParams,
    check_notebook_confinement,
    check_output_knobs,
    check_run_name,
    load_run_params,
)
from crm_lib.report.publish import (
    ENVIRONMENT_ERRNOS,
    RunEnvironmentError,
    environment_error,
    LATEST_LINK,
    check_history_folder,
    history_entries,
    new_staging,
    publish,
    publish_dated,
    remove_published,
    remove_stale_staging,
    run_lock,
)
from crm_lib.report.chrome import code_version
from crm_lib.report.history import record_run, write_history_page
from crm_lib.report.render import render_html

logger = logging.getLogger(__name__)

#: Notebook knob -> keyword of :func:`crm_lib.data.load_transactions`.


#: Knobs whose values are secrets (the salt of pseudonymous ids): never written to the
#: index or the manifest, or the pseudonyms in the reports could be reversed.
SECRET_KNOB_MARKERS = ("salt", "secret", "password", "token", "pseudonym_key", "api_key")


def redact(parameters: dict[str, Any]) -> dict[str, Any]:
    """``parameters`` with the values of secret knobs replaced by ``"(hidden)"``."""
    return {
        key: "(hidden)" if any(marker in key.lower() for marker in SECRET_KNOB_MARKERS) else value
        for key, value in parameters.items()
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
    private_dir : Path
        ``.crm_private/runs/<run name>[.failed]/``: executed notebooks and real-id exports.
    """

    run_name: str
    report_dir: Path
    notebooks: list[NotebookRun]
    published: bool
    manifest: dict[str, Any] = field(default_factory=dict)
    private_dir: Path | None = None

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


def resolve_run_data_path(params: RunParams) -> str | None:
    """The run's ``data_path`` knob made absolute (relative paths are read from the params file's folder)."""
    value = params.effective().get("data_path")
    if value is None:
        return None
    if str(value).startswith(EMBEDDED_PREFIX):
        return str(value)
    return str(resolve_data_path(value, base_dir=params.path.parent.resolve()))


#: Notebooks that compare customers (segments, models, lifetimes): one customer is not enough.
MULTI_CUSTOMER_NOTEBOOKS = ("02_segmentation", "03_retention_survival", "04_lifetime_value", "05_loyalty_profit")


def degenerate_problems(log: Any, knobs: dict[str, Any], notebooks: list[str]) -> list[str]:
    """Why a valid log still cannot make the listed reports (one message per report).

    A log on a single day, of a single customer, or without data after
    ``calibration_end`` passes validation but makes a report crash half-way (01 took the
    last of zero KPI periods); these are found before anything runs.
    """
    tx = log.transactions
    days = tx["date"].dt.normalize().nunique()
    customers = tx["customer_id"].nunique()
    problems = []
    where = f"{log.path.name}: {len(tx):,} rows of {customers:,} customer(s) on {days:,} day(s)"
    example = f"e.g. {tx['date'].min():%Y-%m-%d}"
    if days < 2:
        problems.append(f"{where} ({example}): every report needs purchases on at least two days.")
    period = knobs.get("kpi_period", "M")
    if "01_data_overview" in notebooks and days >= 2:
        try:
            periods = tx["date"].dt.to_period(period).nunique()
        except (ValueError, TypeError):
            periods = 2
        if periods < 2:
            problems.append(f"{where} ({example}): 01_data_overview needs at least two kpi_period={period!r} "
                            "periods; use a longer log or a shorter kpi_period.")
    for name in MULTI_CUSTOMER_NOTEBOOKS:
        if name in notebooks and customers < 2:
            problems.append(f"{where}: {name} compares customers and needs at least two; use the whole log.")
    calibration_end = knobs.get("calibration_end")
    if "04_lifetime_value" in notebooks and calibration_end and days >= 2:
        from crm_lib.relative_dates import is_relative_date, resolve_relative_date

        end = (resolve_relative_date(calibration_end, log.observation_end) if is_relative_date(calibration_end)
               else pd.Timestamp(calibration_end))
        if not log.observation_start < end < log.observation_end:
            problems.append(
                f"{where}: 04_lifetime_value has no second period: calibration_end={calibration_end!r} is not "
                f"inside the window {log.observation_start:%Y-%m-%d} to {log.observation_end:%Y-%m-%d}; move it "
                "inside or leave it empty (mid-window)."
            )
    return problems


def check_data(params: RunParams, notebooks: list[str] | None = None) -> dict[str, Any] | None:
    """Load and validate the run's input data once; its facts for the index and manifest.

    Raises
    ------
    DataValidationError
        When the data cannot be analysed (the run stops before executing anything).
    """
    data_path = resolve_run_data_path(params)
    if data_path is None:
        return None
    from crm_lib.context import DATA_KNOBS  # here: crm_lib.context imports the report package

    knobs = params.effective()
    kwargs = {keyword: knobs[knob] for knob, keyword in DATA_KNOBS.items() if knob in knobs}
    log = load_transactions(data_path, **kwargs)
    try:
        problems = degenerate_problems(log, knobs, notebooks or [nb.stem for nb in params.notebooks])
        if problems:
            raise DataValidationError(" ".join(problems))
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
    finally:
        del log
        release_memory()


def release_memory() -> None:
    """Give the memory of freed objects back to the system, so the runner does not hold the checked
    log's peak (2 GB at 10 M transactions) while the notebooks' kernels run beside it.

    Freed pandas and Arrow buffers stay in the allocators' pools otherwise: Arrow's pool is
    asked to release them, and glibc's ``malloc_trim`` where there is one.
    """
    import ctypes
    import ctypes.util
    import gc

    gc.collect()
    try:
        import pyarrow

        pyarrow.default_memory_pool().release_unused()
    except (ImportError, AttributeError):  # pragma: no cover - pyarrow is a dependency; older ones lack it
        pass
    libc_name = ctypes.util.find_library("c")
    try:
        getattr(ctypes.CDLL(libc_name), "malloc_trim")(0)
    except (OSError, AttributeError, TypeError):  # not glibc (macOS, musl): nothing to trim
        pass


class NoNewDataError(CRMWorkbenchError):
    """A scheduled run found no rows after the latest kept run: late data or nothing new (exit 4)."""


def refuse_repeat(run_dir: Path, data: dict[str, Any]) -> None:
    """Refuse a run whose data ends on or before the latest kept run's, unless the data changed.

    Raises
    ------
    NoNewDataError
        The data ends before the latest kept run (late or truncated data), or on the same
        day with the same SHA-256 (nothing new since).
    """
    kept = history_entries(run_dir)
    if not kept:
        return
    latest, end = kept[-1], data["observation_end"]
    manifest = run_dir / latest / "manifest.json"
    previous = json.loads(manifest.read_text(encoding="utf-8")).get("data") or {} if manifest.is_file() else {}
    if end < latest:
        raise NoNewDataError(
            f"{data['file']}: the data ends {end}, before the latest kept run {run_dir / latest}: the new data is "
            "late or truncated; nothing was run. Check the export, or pass --rerun to run the older window anyway."
        )
    if end == latest and previous.get("sha256") == data["sha256"]:
        raise NoNewDataError(
            f"{data['file']}: no new rows since the latest kept run {run_dir / latest} (same data, ending {end}); "
            "nothing was run. Wait for the next export, or pass --rerun to run it again."
        )


def notebook_title(nb: nbformat.NotebookNode, default: str) -> str:
    """The first Markdown heading of a notebook, or ``default``."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return default


#: Words in a notebook's source that mean it shows pseudonymous ids (so it needs the key).
PSEUDONYM_MARKERS = ("pseudonym", "hide_customer_ids", "winback_list", "customer_actions(")


def uses_pseudonyms(notebooks: list[Path]) -> bool:
    """Whether any of ``notebooks`` computes pseudonymous ids."""
    return any(marker in nb.read_text(encoding="utf-8") for nb in notebooks for marker in PSEUDONYM_MARKERS)


def default_private_root(notebooks_dir: str | Path) -> Path:
    """``CRM_PRIVATE_ROOT`` or ``<project>/.crm_private`` (the notebooks folder's parent):
    :func:`crm_lib.paths.private_root` for the project that holds ``notebooks_dir``."""
    return paths.private_root(Path(notebooks_dir).resolve().parent)


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Within the body, SIGTERM (a cron job's ``kill``) raises KeyboardInterrupt like Ctrl-C,
    so the same clean-up runs; kernels started by this process are killed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):  # noqa: ARG001 - signal handler signature
        raise KeyboardInterrupt(f"terminated by signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    except KeyboardInterrupt:
        kill_kernels()
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def environment_errors(doing: str) -> Iterator[None]:
    """Turn a full disk, a missing permission or exhausted memory into :class:`RunEnvironmentError`."""
    try:
        yield
    except MemoryError:
        raise RunEnvironmentError(
            f"out of memory while trying to {doing}; close other programs, use a machine with more memory "
            "or a smaller data set."
        ) from None
    except OSError as error:
        if error.errno in ENVIRONMENT_ERRNOS:
            raise environment_error(error, doing) from None
        raise


def _select(params: RunParams, only: list[str] | None) -> list[Path]:
    notebooks = params.notebooks
    if not only:
        return notebooks
    wanted = {name.removesuffix(".ipynb") for name in only}
    unknown = wanted - {nb.stem for nb in notebooks}
    if unknown:
        raise ParamsError(
            f"{params.path}: --only names {sorted(unknown)}, not in its notebooks list "
            f"({', '.join(nb.stem for nb in notebooks)})."
        )
    return [nb for nb in notebooks if nb.stem in wanted]


def _carry_over(target: Path, private_target: Path, staging: Path, private_staging: Path,
                rerun: set[str]) -> dict[str, dict[str, Any]]:
    """Copy the last good report's pages (and private files) of notebooks not rerun; their entries."""
    manifest_path = target / "manifest.json"
    if not manifest_path.is_file():
        return {}
    previous = json.loads(manifest_path.read_text(encoding="utf-8"))
    kept = {}
    for entry in previous.get("notebooks", []):
        if entry["name"] in rerun or not (target / entry["html"]).is_file():
            continue
        shutil.copy2(target / entry["html"], staging / entry["html"])
        kept[entry["name"]] = {**entry, "carried_over": True}
    if private_target.is_dir():
        shutil.copytree(private_target, private_staging, dirs_exist_ok=True)
    return kept


def run_report(
    params_path: str | Path,
    *,
    output_dir: str | Path = "reports",
    notebooks_dir: str | Path = "notebooks",
    only: list[str] | None = None,
    kernel_name: str | None = None,
    progress_bar: bool = False,
    timeout_seconds: int | None = DEFAULT_CELL_TIMEOUT_SECONDS,
    notebook_timeout_seconds: float | None = DEFAULT_NOTEBOOK_TIMEOUT_SECONDS,
    private_root: str | Path | None = None,
    wait: bool = False,
    on_progress: Callable[[str], None] | None = None,
    overrides: dict[str, Any] | None = None,
    keep_runs: int | None = None,
    rerun: bool = False,
    jobs: int | None = None,
) -> RunResult:
    """Execute and render every notebook of a params file; publish when all succeed.

    Parameters
    ----------
    params_path : str or Path
        The params file (``params/cdnow.yaml``).
    output_dir : str or Path
        Folder of the reports; the run publishes ``<output_dir>/<run name>/`` (HTML only).
    notebooks_dir : str or Path
        Folder of the notebooks; no notebook is run from anywhere else.
    only : list of str, optional
        Run only these notebooks of the file (by name); their pages are merged into the
        last good report, which keeps the others.
    kernel_name : str, optional
        Jupyter kernel; defaults to the notebook's (``python3``, this interpreter).
    progress_bar : bool
        Show Papermill's per-cell progress bar.
    timeout_seconds : int, optional
        Longest a single cell may run (default 1800 s; None: no limit).
    notebook_timeout_seconds : float, optional
        Longest a whole notebook may run (default 4 h; None: no limit).
    private_root : str or Path, optional
        The private folder (default ``CRM_PRIVATE_ROOT`` or ``<project>/.crm_private``):
        executed notebooks and real-id exports go to ``<private_root>/runs/<run name>/``.
    wait : bool
        When another run of the same name is in progress, wait for it instead of exiting.
    on_progress : callable, optional
        Called with one line of progress per step (the CLI prints them).
    overrides : dict, optional
        Knobs over the params file's (``--set``), checked like the file's.
    keep_runs : int, optional
        Keep a history: publish as ``<output_dir>/<run name>/<observation end>/`` with
        ``latest`` pointing at the newest, and keep the last ``keep_runs`` of them
        (:func:`crm_lib.report.publish.publish_dated`). None: one report, replaced.
    rerun : bool
        With a history, run even when the data has no new rows since the latest kept run.
    jobs : int, optional
        Notebooks run at once, each with its own kernel (``--jobs``). None: as many as there
        are cores (at most 4) for a log of up to 1,000,000 transactions, else one at a time
        (:func:`crm_lib.report.pool.auto_jobs`). The pages are the same either way.

    Returns
    -------
    RunResult

    Raises
    ------
    ParamsError, DataValidationError
        Before anything runs or is written (exit status 2).
    RunEnvironmentError
        Another run of the same name, a full disk, no permission (exit status 3).
    NoNewDataError
        With a history and without ``rerun``: the data ends on or before the latest kept
        run (late data, or nothing new); nothing is run (exit status 4).
    """
    say = on_progress or logger.info
    params = load_run_params(params_path, notebooks_dir, overrides)
    source = str(params.path)
    check_run_name(params.run_name, source)
    check_notebook_confinement(params.notebooks, Path(notebooks_dir), source)
    refuse_salt_knob(params.parameters, source)
    check_output_knobs(params.parameters, source)
    notebooks = _select(params, only)
    output_dir = Path(output_dir).resolve()
    private = Path(private_root).resolve() if private_root else default_private_root(notebooks_dir)
    if uses_pseudonyms(notebooks):
        load_key(forbidden=[Path(notebooks_dir).resolve().parent, output_dir, private])
    say(f"checking the input data of {params.path} ...")
    data = check_data(params, [nb.stem for nb in notebooks])
    if data:
        say(f"data: {data['file']}: {data['rows_used']:,} transactions, {data['customers']:,} customers, "
            f"{data['observation_start']} to {data['observation_end']}")
    if keep_runs is not None:
        check_history_folder(output_dir / params.run_name)
        if data and not rerun:
            refuse_repeat(output_dir / params.run_name, data)
    with terminate_as_interrupt(), environment_errors("write the report"):
        runs_dir = private / "runs"
        runs_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        private.chmod(0o700)
        with run_lock(runs_dir, params.run_name, wait=wait, say=say):
            return _run_locked(params, notebooks, data, output_dir, runs_dir, private, say,
                               kernel_name=kernel_name, progress_bar=progress_bar, only=bool(only),
                               keep_runs=keep_runs, jobs=jobs,
                               timeout_seconds=timeout_seconds, notebook_timeout_seconds=notebook_timeout_seconds)


def _run_locked(params: RunParams, notebooks: list[Path], data: dict[str, Any] | None, output_dir: Path,
                runs_dir: Path, private: Path, say: Callable[[str], None], *, only: bool, keep_runs: int | None,
                jobs: int | None = None, **execute: Any) -> RunResult:
    name = params.run_name
    output_dir.mkdir(parents=True, exist_ok=True)
    for parent in (output_dir, runs_dir):
        remove_stale_staging(parent, name)
    data_path = resolve_run_data_path(params)
    staging = new_staging(output_dir, name)
    private_staging = new_staging(runs_dir, name, private=True)
    try:
        carried = (
            _carry_over(output_dir / name / (LATEST_LINK if keep_runs else ""), runs_dir / name, staging,
                        private_staging, {nb.stem for nb in notebooks})
            if only else {}
        )
        pages = [(f"{nb.stem}.html", notebook_title(nbformat.read(nb, as_version=4), nb.stem))
                 for nb in params.notebooks if nb in notebooks or nb.stem in carried]
        runs, entries = _execute_all(params, notebooks, data, data_path, private_staging, private, staging, pages,
                                     say, jobs=jobs, previous=output_dir / name / (LATEST_LINK if keep_runs else ""),
                                     **execute)
        published = all(r.ok for r in runs)
        merged = [entries.get(nb.stem) or carried[nb.stem] for nb in params.notebooks
                  if nb.stem in entries or nb.stem in carried]
        headline = _write_headline(params, staging, findings_dir(private_staging), data, carried=set(carried))
        manifest = _write_index_and_manifest(params, staging, merged, data, published, headline,
                                             history=bool(keep_runs))
        if published and keep_runs and data:
            record_run(params, private, private_staging, staging, keep_runs)  # predictions scored, stored (issue 13)
        final_name = name if published else f"{name}.failed"
        if published and keep_runs:
            label = data["observation_end"] if data else "undated"
            final = publish_dated(staging, output_dir / name, label, keep_runs=keep_runs)
        else:
            final = publish(staging, output_dir / final_name)
        publish(private_staging, runs_dir / final_name)
        if published:
            remove_published(output_dir / f"{name}.failed")
            remove_published(runs_dir / f"{name}.failed")
        if published and keep_runs:
            _write_history(output_dir / name, params.title)
        try:
            write_runs_index(output_dir)
        except OSError as error:  # the run itself is published; only the list of runs is stale
            logger.warning("could not update %s/index.html (the list of runs): %s", output_dir, error)
    finally:
        for folder in (staging, private_staging):
            if folder.exists():
                shutil.rmtree(folder, ignore_errors=True)
    return RunResult(run_name=name, report_dir=final, notebooks=runs, published=published, manifest=manifest,
                     private_dir=runs_dir / final_name)


def _execute_all(params: RunParams, notebooks: list[Path], data: dict[str, Any] | None, data_path: str | None,
                 private_staging: Path, private: Path, staging: Path, pages: list[tuple[str, str]],
                 say: Callable[[str], None], *, jobs: int | None, previous: Path,
                 **execute: Any) -> tuple[list[NotebookRun], dict[str, dict[str, Any]]]:
    """Run and render every notebook, ``jobs`` at once (None: :func:`auto_jobs`); the runs in page
    order and the manifest entry of each. With several at once, the longest (by the last run's
    manifest in ``previous``) start first."""
    tasks = []
    for notebook in notebooks:
        parameters = params.parameters_for(notebook)
        if data_path is not None and "data_path" in params.declared.get(notebook.stem, {}):
            parameters["data_path"] = data_path
        tasks.append((notebook.resolve(), parameters, private_staging, private, staging, params.title, pages, execute))
    count = len(notebooks)
    workers = jobs if jobs else auto_jobs(count, data["rows_used"] if data else None)
    order = list(range(count))
    if workers > 1 and count > 1:
        execute = {**execute, "progress_bar": False}  # bars of notebooks running at once would mix
        tasks = [task[:-1] + (execute,) for task in tasks]
        order = start_order([nb.stem for nb in notebooks], previous_seconds(previous))
        say(f"running {min(workers, count)} notebooks at a time (--jobs)")

    def started(k: int) -> None:
        say(f"[{order[k] + 1}/{count}] {notebooks[order[k]].stem}: running ...")

    def finished(k: int, result: tuple[NotebookRun, str]) -> None:
        run = result[0]
        say(f"[{order[k] + 1}/{count}] {notebooks[order[k]].stem}: "
            f"{'done' if run.ok else f'FAILED ({run.error})'} in {run.seconds:.1f} s")

    results = run_tasks(_run_notebook, [tasks[i] for i in order], workers, on_start=started, on_done=finished)
    by_page = dict(zip(order, results))
    runs, entries = [], {}
    for index, notebook in enumerate(notebooks):
        run, title = by_page[index]
        runs.append(run)
        entries[notebook.stem] = {"name": notebook.stem, "title": title, "html": f"{notebook.stem}.html",
                                  "status": run.status, "error": run.error, "seconds": round(run.seconds, 2)}
    return runs, entries


def _run_notebook(notebook: Path, parameters: dict[str, Any], private_staging: Path, private: Path, staging: Path,
                  run_title: str, pages: list[tuple[str, str]], execute: dict[str, Any]) -> tuple[NotebookRun, str]:
    """Execute one notebook into the private staging folder and render its page into ``staging``
    (in a worker process when notebooks run at once); the run and the page's title."""
    executed = private_staging / notebook.name
    run = execute_notebook(
        notebook, executed, parameters, cwd=private_staging,
        wall_seconds=execute["notebook_timeout_seconds"],
        env={PRIVATE_DIR_ENV: str(private_staging), PRIVATE_ROOT_ENV: str(private),
             FINDINGS_DIR_ENV: str(findings_dir(private_staging))},
        kernel_name=execute["kernel_name"], progress_bar=execute["progress_bar"],
        timeout_seconds=execute["timeout_seconds"],
    )
    title, html_name = notebook.stem, f"{notebook.stem}.html"
    if executed.exists():
        nb = make_reproducible(nbformat.read(executed, as_version=4))
        nbformat.write(nb, executed)
        title = notebook_title(nb, notebook.stem)
        (staging / html_name).write_text(render_html(nb, f"{run_title}: {title}", pages=pages, current=html_name),
                                         encoding="utf-8")
    return run, title


def _write_history(run_dir: Path, title: str) -> None:
    """The history page after a publish; an error there is logged and the published run stays (an extra)."""
    try:
        write_history_page(run_dir, title=title)
    except Exception:  # noqa: BLE001 -- the run is published; only its history page is stale
        logger.warning("could not update the history page of the run %s (%s); the run itself is published",
                       run_dir.name, run_dir / "history.html", exc_info=True)


def mark_carried(content: dict[str, Any], carried: set[str]) -> dict[str, Any]:
    """Flag the figures of notebooks not rerun (``--only``) with ``"carried_over": true``: they are an
    earlier run's, so the history does not take them for this run's."""
    for figure in content.get("figures", {}).values():
        if figure.get("notebook") in carried:
            figure["carried_over"] = True
    return content


def _write_headline(params: RunParams, staging: Path, findings: Path, data: dict[str, Any] | None,
                    carried: set[str] | None = None) -> dict[str, Any]:
    """``headline.json`` in the report staging folder, from the notebooks' key findings (issue 12); the
    figures of ``carried`` notebooks (pages carried over by ``--only``) flagged by :func:`mark_carried`."""
    calibration_end = None
    if data and any("calibration_end" in knobs for knobs in params.declared.values()):
        from crm_lib.context import calibration_end_for  # here: crm_lib.context imports the report package

        window = ObservationWindow(pd.Timestamp(data["observation_start"]), pd.Timestamp(data["observation_end"]))
        calibration_end = f"{calibration_end_for(params.effective().get('calibration_end'), window):%Y-%m-%d}"
    content = write_headline(staging, findings, run=params.run_name, calibration_end=calibration_end,
                             observation_end=data["observation_end"] if data else None,
                             notebooks=[nb.stem for nb in params.notebooks])
    if carried:
        (staging / "headline.json").write_text(headline_json(mark_carried(content, carried)), encoding="utf-8")
    return content


def _write_index_and_manifest(params: RunParams, staging: Path, entries: list[dict[str, Any]],
                              data: dict[str, Any] | None, published: bool,
                              headline: dict[str, Any] | None = None, history: bool = False) -> dict[str, Any]:
    packages = package_versions()
    shown = [{k: v for k, v in e.items() if k not in {"seconds", "carried_over"}} for e in entries]
    (staging / "index.html").write_text(
        render_index(
            title=params.title,
            run_name=params.run_name,
            params_file=params.path.name,
            parameters=redact(params.parameters),
            notebooks=shown,
            data={k: v for k, v in data.items() if k != "path"} if data else None,
            packages=packages,
            code_version=code_version(),
            headline=headline,
            history=history,
        ),
        encoding="utf-8",
    )
    manifest = {
        "run_name": params.run_name,
        "title": params.title,
        "params_file": str(params.path),
        "parameters": redact(params.parameters),
        "effective_parameters": redact(params.effective()),
        "data": data,
        "packages": packages,
        "notebooks": entries,
        "status": "ok" if published else "failed",
    }
    (staging / "manifest.json").write_text(manifest_json(manifest), encoding="utf-8")
    return manifest
