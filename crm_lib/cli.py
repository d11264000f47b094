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
  130  interrupted (Ctrl-C or SIGTERM): staging folders removed, nothing published

reviewers get reports/<run name>/ (HTML, index, manifest: no ids, no key); executed
notebooks and files with real customer ids go to .crm_private/runs/<run name>/
(git-ignored, owner-only). Pseudonyms are HMAC-SHA256 under the key in
$CRM_PSEUDONYM_KEY or ~/.config/crm-workbench/pseudonym.key (created on first use;
$CRM_PSEUDONYM_KEY_FILE moves it).

examples:
  crm-workbench run params/cdnow.yaml
  crm-workbench run params/cdnow.yaml --only 01_data_overview --output-dir /tmp/reports
  crm-workbench knobs params/cdnow.yaml
  crm-workbench check params/my_shop.yaml
  crm-workbench params params/cdnow.yaml --notebook 04_lifetime_value > nb.yaml
  papermill notebooks/04_lifetime_value.ipynb out.ipynb -f nb.yaml
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crm-workbench",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("params", type=Path, metavar="PARAMS", help="params file, e.g. params/cdnow.yaml")
        p.add_argument(
            "--notebooks-dir",
            type=Path,
            default=Path("notebooks"),
            metavar="DIR",
            help="folder of the notebooks named in the params file (default: %(default)s)",
        )

    run = sub.add_parser(
        "run",
        help="execute the notebooks of a params file and render the HTML reports",
        description="Execute every notebook listed in PARAMS with Papermill, render each to HTML "
        "(code hidden, no network resources), write index.html and manifest.json, and publish "
        "reports/<run name>/ only if every notebook succeeded.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    common(run)
    run.add_argument(
        "--output-dir",
        type=Path,
        default=Path("reports"),
        metavar="DIR",
        help="where reports/<run name>/ is written (default: %(default)s)",
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
    run.add_argument("-q", "--quiet", action="store_true", help="print only errors and the index path")

    check = sub.add_parser(
        "check",
        help="check a params file and its input data without running anything",
        description="Check PARAMS (keys, notebooks, knob types and ranges), load and validate its input "
        "data, and check the knobs against the data (calibration_end inside the window); print the "
        "data-quality table. Exit 2 on the first problem.",
    )
    common(check)

    knobs = sub.add_parser(
        "knobs",
        help="list every knob with its default, valid values, help and the value PARAMS sets",
        description="List every knob (parameters-cell variable) of the notebooks in PARAMS: its one default, "
        "its valid values, its one-line help, the notebooks that use it and the value PARAMS sets.",
    )
    common(knobs)

    nb_params = sub.add_parser(
        "params",
        help="write the parameters of one notebook of PARAMS as YAML for `papermill -f`",
        description="Write the knobs of PARAMS that NOTEBOOK declares, with data_path made absolute (the "
        "runner's rule: relative to the params file's folder) and params_file set, as YAML that "
        "`papermill NOTEBOOK.ipynb OUT.ipynb -f FILE` accepts.",
    )
    common(nb_params)
    nb_params.add_argument("--notebook", required=True, metavar="NAME", help="notebook name, e.g. 04_lifetime_value")
    nb_params.add_argument("-o", "--output", type=Path, metavar="FILE", help="write here instead of standard output")
    return parser


def _run(args: argparse.Namespace) -> int:
    from crm_lib.report.runner import run_report

    progress_bar = sys.stderr.isatty() if args.progress_bar is None else args.progress_bar

    def say(line: str) -> None:
        if not args.quiet:
            print(line, file=sys.stderr, flush=True)

    result = run_report(
        args.params,
        output_dir=args.output_dir,
        notebooks_dir=args.notebooks_dir,
        only=args.only,
        kernel_name=args.kernel,
        progress_bar=progress_bar,
        timeout_seconds=args.timeout or None,
        notebook_timeout_seconds=args.notebook_timeout or None,
        wait=args.wait,
        on_progress=say,
    )
    failed = [nb for nb in result.notebooks if not nb.ok]
    if failed:
        print(
            f"{len(failed)} of {len(result.notebooks)} notebooks failed: "
            + "; ".join(f"{nb.name}: {nb.error}" for nb in failed),
            file=sys.stderr,
        )
        print(f"failed run written to {result.index_path} (the last good report is unchanged)", file=sys.stderr)
        return 1
    print(os.path.abspath(result.index_path))  # the published name, not the version folder behind it
    return 0


def _check(args: argparse.Namespace) -> int:
    from crm_lib.context import DATA_KNOBS, calibration_end_for, resolve_data_path
    from crm_lib.data import load_transactions
    from crm_lib.report.params import load_run_params
    from crm_lib.exceptions import DataValidationError
    from crm_lib.report.runner import degenerate_problems

    params = load_run_params(args.params, args.notebooks_dir)  # also checks knob types and ranges
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
        rule = "set in the params" if knobs["calibration_end"] is not None else "the middle of the window"
        print(f"  calibration  {log.observation_start:%Y-%m-%d} to {end:%Y-%m-%d} ({rule}); holdout to "
              f"{log.observation_end:%Y-%m-%d}")
    problems = degenerate_problems(log, knobs, [nb.stem for nb in params.notebooks])
    if problems:
        raise DataValidationError(" ".join(problems))
    return 0


def _knobs(args: argparse.Namespace) -> int:
    from crm_lib.report.knobs import knobs_help, registry
    from crm_lib.report.params import load_run_params

    params = load_run_params(args.params, args.notebooks_dir)
    listed = {nb.stem for nb in params.notebooks}
    knobs = {name: knob for name, knob in registry(args.notebooks_dir).items() if listed & set(knob.notebooks)}
    print(knobs_help(knobs, params.parameters))
    return 0


def _params(args: argparse.Namespace) -> int:
    import yaml

    from crm_lib.context import resolve_data_path
    from crm_lib.exceptions import ParamsError
    from crm_lib.report.params import load_run_params

    params = load_run_params(args.params, args.notebooks_dir)
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
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # nbconvert's note that figures have no alt text would be printed once per notebook.
    logging.getLogger("traitlets").setLevel(logging.ERROR)
    from crm_lib.report.publish import RunEnvironmentError

    try:
        return {"run": _run, "check": _check, "knobs": _knobs, "params": _params}[args.command](args)
    except (RunEnvironmentError, MemoryError) as error:
        print(f"{type(error).__name__}: {error}", file=sys.stderr)
        return 3
    except CRMWorkbenchError as error:
        print(f"{type(error).__name__}: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"{type(error).__name__}: {error}; the machine stopped the run, not the data.", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print("interrupted: staging folders removed, nothing published.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
