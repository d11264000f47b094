"""The ``crm-workbench`` console script (also ``python -m crm_lib``)."""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from crm_lib import __version__
from crm_lib.exceptions import CRMWorkbenchError

DESCRIPTION = """\
Render the CRM analytics reports of a params file.

A params file (params/<data set>.yaml) names the run, lists the notebooks to execute and
sets their knobs. `run` executes each notebook with Papermill, renders it to HTML with
the code hidden, and writes reports/<run name>/index.html with a link to every report and
a manifest (parameters, SHA-256 of the input data, row counts, package versions, time per
notebook).
"""

EPILOG = """\
exit status:
  0  every notebook succeeded and the report was published
  1  a notebook failed: the other notebooks still ran, the failed run is in
     reports/<run name>.failed/ and the last good reports/<run name>/ is untouched
  2  the params file, the input data or the pseudonym key is invalid or missing:
     nothing was run or written
  3  the environment stopped the run (disk full, no permission, out of memory,
     another run of the same name in progress): the last good report is untouched
  4  --keep-runs: the data has no rows after the latest kept run (not yet exported, or
     late/truncated): nothing was run; --rerun runs anyway
  130  interrupted (Ctrl-C or SIGTERM): staging folders removed, nothing published

reviewers get reports/<run name>/ (HTML, index, manifest: no ids, no key); executed
notebooks and files with real customer ids go to .crm_private/runs/<run name>/
(git-ignored, owner-only). Pseudonyms are HMAC-SHA256 under the key in
$CRM_PSEUDONYM_KEY or ~/.config/crm-workbench/pseudonym.key (created on first use;
$CRM_PSEUDONYM_KEY_FILE moves it).

examples:
  crm-workbench run params/cdnow.yaml
  crm-workbench run params/cdnow.yaml params/my_shop.yaml -q --project /srv/crm
  crm-workbench run params/cdnow.yaml --set observation_end=latest --set calibration_end=-26w
  crm-workbench run params/cdnow.yaml --keep-runs 12 -q       # monthly cron: history, silent on success
  crm-workbench run params/cdnow.yaml --only 01_data_overview --output-dir /tmp/reports
  crm-workbench knobs params/cdnow.yaml
  crm-workbench check params/my_shop.yaml
  crm-workbench params params/cdnow.yaml --notebook 04_lifetime_value > nb.yaml
  papermill notebooks/04_lifetime_value.ipynb out.ipynb -f nb.yaml
"""


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of runs of at least 1")
    return int(text)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crm-workbench",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_run_command(sub)
    _add_inspect_commands(sub)
    return parser


def _command(sub: argparse._SubParsersAction, name: str, help_line: str, description: str, *,
             many: bool = False, **options) -> argparse.ArgumentParser:
    """A sub-command with the arguments every command takes: PARAMS, --project, --notebooks-dir, --set."""
    p = sub.add_parser(name, help=help_line, description=description, **options)
    if many:
        p.add_argument("params", type=Path, nargs="+", metavar="PARAMS",
                       help="params file(s), e.g. params/cdnow.yaml; run one after the other")
    else:
        p.add_argument("params", type=Path, metavar="PARAMS", help="params file, e.g. params/cdnow.yaml")
    p.add_argument(
        "--project",
        type=Path,
        metavar="DIR",
        help="the project folder (holding notebooks/, params/, reports/); default: the first folder above "
        "the params file that holds notebooks/, else the installed package's project; a relative PARAMS "
        "is also looked up there, so cron can run from any directory",
    )
    p.add_argument(
        "--notebooks-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="folder of the notebooks named in the params file (default: <project>/notebooks)",
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KNOB=VALUE",
        help="set a knob over the params file (repeatable; VALUE read as YAML and checked like the file), "
        "e.g. --set observation_end=latest --set calibration_end=-26w",
    )
    return p


def _add_run_command(sub: argparse._SubParsersAction) -> None:
    """The ``run`` command and its options."""
    run = _command(
        sub, "run", "execute the notebooks of a params file and render the HTML reports",
        "Execute every notebook listed in PARAMS with Papermill, render each to HTML "
        "(code hidden, no network resources), write index.html and manifest.json, and publish "
        "reports/<run name>/ only if every notebook succeeded.",
        many=True, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument(
        "--output-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="where reports/<run name>/ is written (default: <project>/reports)",
    )
    run.add_argument(
        "--only",
        nargs="+",
        metavar="NOTEBOOK",
        help="run only these notebooks of the params file (by name, e.g. 01_data_overview)",
    )
    run.add_argument("--kernel", metavar="NAME", help="Jupyter kernel to use (default: the notebook's, python3)")
    run.add_argument(
        "--timeout",
        type=int,
        metavar="SECONDS",
        default=1800,
        help="fail a notebook whose single cell runs longer than this (default: %(default)s; 0: no limit)",
    )
    run.add_argument(
        "--notebook-timeout",
        type=int,
        default=4 * 3600,
        metavar="SECONDS",
        help="kill a notebook that runs longer than this in all (default: %(default)s; 0: no limit)",
    )
    run.add_argument(
        "--wait",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="when a run of the same name is in progress, wait for it (default: exit with status 3)",
    )
    run.add_argument(
        "--progress-bar",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show Papermill's per-cell progress bar (default: on when the terminal is interactive)",
    )
    run.add_argument(
        "--keep-runs",
        type=_positive_int,
        metavar="N",
        help="keep a history: publish as reports/<run name>/<observation end>/ with reports/<run name>/latest "
        "pointing at the newest, and keep the last N; a run whose data has no new rows since the latest kept "
        "run is refused (exit 4). Default: one report, replaced by each run",
    )
    run.add_argument(
        "--jobs",
        type=_positive_int,
        metavar="N",
        help="run N notebooks at once, each with its own kernel (default: one per core, at most 4, for a log "
        "of up to 1,000,000 transactions; one at a time above, since every kernel holds the log in memory)",
    )
    run.add_argument("--rerun", action="store_true",
                     help="with --keep-runs, run even when the data has no new rows since the latest kept run")
    run.add_argument("-q", "--quiet", action="store_true",
                     help="print nothing on success; on failure one summary line per params file (for cron)")


def _add_inspect_commands(sub: argparse._SubParsersAction) -> None:
    """``check``, ``knobs`` and ``params``: commands that read a params file and run nothing."""
    _command(
        sub, "check", "check a params file and its input data without running anything",
        "Check PARAMS (keys, notebooks, knob types and ranges), load and validate its input "
        "data, and check the knobs against the data (calibration_end inside the window); print the "
        "data-quality table. Exit 2 on the first problem.",
    )
    _command(
        sub, "knobs", "list every knob with its default, valid values, help and the value PARAMS sets",
        "List every knob (parameters-cell variable) of the notebooks in PARAMS: its one default, "
        "its valid values, its one-line help, the notebooks that use it and the value PARAMS sets.",
    )
    nb_params = _command(
        sub, "params", "write the parameters of one notebook of PARAMS as YAML for `papermill -f`",
        "Write the knobs of PARAMS that NOTEBOOK declares, with data_path made absolute (the "
        "runner's rule: relative to the params file's folder) and params_file set, as YAML that "
        "`papermill NOTEBOOK.ipynb OUT.ipynb -f FILE` accepts.",
    )
    nb_params.add_argument("--notebook", required=True, metavar="NAME", help="notebook name, e.g. 04_lifetime_value")
    nb_params.add_argument("-o", "--output", type=Path, metavar="FILE", help="write here instead of standard output")


def find_project(params_path: Path, explicit: Path | None = None) -> Path:
    """The project folder of a run: ``explicit`` (``--project``), else the one rule of
    :func:`crm_lib.paths.project_root` started at the params file's folder (the first
    folder holding ``notebooks/``, else the installed checkout, else the working directory)."""
    from crm_lib.paths import project_root

    if explicit is not None:
        return explicit.resolve()
    return project_root(Path(params_path).resolve().parent)


def _locate(args: argparse.Namespace, params_path: Path) -> tuple[Path, Path, Path]:
    """The params file, notebooks folder and reports folder of one run, from any working directory."""
    project = args.project.resolve() if args.project else None
    if not params_path.is_file() and not params_path.is_absolute():
        base = project or find_project(Path.cwd() / params_path)
        if (base / params_path).is_file():
            params_path = base / params_path
    project = find_project(params_path, project)
    notebooks_dir = args.notebooks_dir or project / "notebooks"
    output_dir = getattr(args, "output_dir", None) or project / "reports"
    return params_path, notebooks_dir, output_dir


def _overrides(args: argparse.Namespace) -> dict:
    from crm_lib.report.params import parse_set_options

    return parse_set_options(args.overrides)


def _run(args: argparse.Namespace) -> int:
    """Run every params file in turn; the worst exit status wins (a failure does not stop the next file)."""
    statuses = []
    for params_path in args.params:
        try:
            statuses.append(_run_one(args, params_path))
        except Exception as error:  # noqa: BLE001 - mapped to its exit status; the next file still runs
            status = _status_of(error)
            if status is None:
                raise
            print(f"{params_path}: {_message(error)}", file=sys.stderr)
            statuses.append(status)
    return max(statuses, key=lambda s: (s != 0, s == 130, s))


def _run_one(args: argparse.Namespace, params_path: Path) -> int:
    from crm_lib.report.runner import run_report

    progress_bar = sys.stderr.isatty() if args.progress_bar is None else args.progress_bar
    params_path, notebooks_dir, output_dir = _locate(args, params_path)

    def say(line: str) -> None:
        if not args.quiet:
            print(line, file=sys.stderr, flush=True)

    result = run_report(
        params_path,
        output_dir=output_dir,
        notebooks_dir=notebooks_dir,
        only=args.only,
        kernel_name=args.kernel,
        progress_bar=progress_bar and not args.quiet,
        timeout_seconds=args.timeout or None,
        notebook_timeout_seconds=args.notebook_timeout or None,
        wait=args.wait,
        on_progress=say,
        overrides=_overrides(args),
        keep_runs=args.keep_runs,
        rerun=args.rerun,
        jobs=args.jobs,
    )
    failed = [nb for nb in result.notebooks if not nb.ok]
    if failed:
        print(
            f"{params_path}: {len(failed)} of {len(result.notebooks)} notebooks failed: "
            + "; ".join(f"{nb.name}: {nb.error}" for nb in failed)
            + f"; failed run in {result.report_dir} (the last good report is unchanged)",
            file=sys.stderr,
        )
        return 1
    if not args.quiet:
        print(os.path.abspath(result.index_path))  # the published name, not the version folder behind it
    return 0


def _check(args: argparse.Namespace) -> int:
    from crm_lib.context import DATA_KNOBS, calibration_end_for, resolve_data_path
    from crm_lib.data import load_transactions
    from crm_lib.report.params import load_run_params
    from crm_lib.exceptions import DataValidationError
    from crm_lib.report.runner import degenerate_problems

    args.params, args.notebooks_dir, _ = _locate(args, args.params)
    params = load_run_params(args.params, args.notebooks_dir, _overrides(args))  # also checks knob types, ranges
    print(f"{args.params}: run '{params.run_name}', notebooks {', '.join(nb.stem for nb in params.notebooks)}")
    knobs = params.effective()
    if knobs.get("data_path") is None:
        print("no data_path knob: nothing to load")
        return 0
    data_path = resolve_data_path(knobs["data_path"], params.path)
    log = load_transactions(data_path, **{kw: knobs[k] for k, kw in DATA_KNOBS.items() if k in knobs})
    print(log.summary())
    if "calibration_end" in knobs:
        end = calibration_end_for(knobs["calibration_end"], log.window)
        from crm_lib.relative_dates import is_relative_date

        value = knobs["calibration_end"]
        rule = ("the middle of the window" if value is None else
                f"{value} from the observation end" if is_relative_date(value) else "set in the params")
        print(f"  calibration  {log.observation_start:%Y-%m-%d} to {end:%Y-%m-%d} ({rule}); holdout to "
              f"{log.observation_end:%Y-%m-%d}")
    problems = degenerate_problems(log, knobs, [nb.stem for nb in params.notebooks])
    if problems:
        raise DataValidationError(" ".join(problems))
    return 0


def _knobs(args: argparse.Namespace) -> int:
    from crm_lib.report.knobs import knobs_help, registry
    from crm_lib.report.params import load_run_params

    args.params, args.notebooks_dir, _ = _locate(args, args.params)
    params = load_run_params(args.params, args.notebooks_dir, _overrides(args))
    listed = {nb.stem for nb in params.notebooks}
    knobs = {name: knob for name, knob in registry(args.notebooks_dir).items() if listed & set(knob.notebooks)}
    print(knobs_help(knobs, params.parameters))
    return 0


def _params(args: argparse.Namespace) -> int:
    import yaml

    from crm_lib.context import resolve_data_path
    from crm_lib.exceptions import ParamsError
    from crm_lib.report.params import load_run_params

    args.params, args.notebooks_dir, _ = _locate(args, args.params)
    params = load_run_params(args.params, args.notebooks_dir, _overrides(args))
    stem = args.notebook.removesuffix(".ipynb")
    notebook = next((nb for nb in params.notebooks if nb.stem == stem), None)
    if notebook is None:
        raise ParamsError(f"{args.params}: notebook '{args.notebook}' is not in its notebooks list "
                          f"({', '.join(nb.stem for nb in params.notebooks)}).")
    values = params.parameters_for(notebook)
    if "data_path" in values:
        values["data_path"] = resolve_data_path(values["data_path"], params.path)
    text = (f"# Parameters of {stem} from {params.path} (crm-workbench params); for papermill -f\n"
            + yaml.safe_dump(values, sort_keys=False, allow_unicode=True))
    if args.output:
        args.output.write_text(text, encoding="utf-8")
        print(args.output.resolve())
    else:
        sys.stdout.write(text)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``crm-workbench``; returns the exit status."""
    args = _parser().parse_args(argv)
    # -q: nothing on success for cron; the warnings that change a number are in the reports themselves.
    quiet = getattr(args, "quiet", False)
    logging.basicConfig(level=logging.ERROR if quiet else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    # nbconvert's note that figures have no alt text would be printed once per notebook.
    logging.getLogger("traitlets").setLevel(logging.ERROR)
    try:
        return {"run": _run, "check": _check, "knobs": _knobs, "params": _params}[args.command](args)
    except Exception as error:  # noqa: BLE001 - mapped to the documented exit statuses below
        status = _status_of(error)
        if status is None:
            raise
        print(_message(error), file=sys.stderr)
        return status
    except KeyboardInterrupt:
        print("interrupted: staging folders removed, nothing published.", file=sys.stderr)
        return 130


def _message(error: BaseException) -> str:
    """The one line printed for an error."""
    from crm_lib.report.publish import RunEnvironmentError

    text = f"{type(error).__name__}: {error}"
    if isinstance(error, OSError) and not isinstance(error, RunEnvironmentError):
        text += "; the machine stopped the run, not the data."
    return text


def _status_of(error: BaseException) -> int | None:
    """The documented exit status of an error (see EPILOG); None for a bug (re-raised)."""
    from crm_lib.report.publish import RunEnvironmentError
    from crm_lib.report.runner import NoNewDataError

    if isinstance(error, NoNewDataError):
        return 4
    if isinstance(error, (RunEnvironmentError, MemoryError)):
        return 3
    if isinstance(error, CRMWorkbenchError):
        return 2
    if isinstance(error, OSError):
        return 3
    return None

if __name__ == "__main__":
    sys.exit(main())
