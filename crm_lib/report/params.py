"""Read and check a params file (``params/<data set>.yaml``).

A params file names the run, lists the notebooks to execute and sets their knobs::

    run_name: cdnow                 # the report folder: reports/cdnow/
    title: CDNOW customer analytics
    notebooks:                      # executed in this order, from notebooks/
      - 01_data_overview
    parameters:                     # each key must be a knob of a listed notebook
      data_path: embedded:CDNOW_master.txt
      kpi_period: M

The knobs are the variables of each notebook's ``parameters`` cell; every notebook
receives the keys it declares. A key that no listed notebook declares is an error that
names the key, the file and the closest knob, so a typo never silently falls back to a
default. Values are checked against the knob registry (:mod:`crm_lib.report.knobs`: type
and valid range), old knob names are renamed with a deprecation message, and a notebook
that declares ``params_file`` receives the params file's absolute path, so the run
context it opens (:func:`crm_lib.session`) sees every knob of the file.
"""
from __future__ import annotations

import ast
import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from crm_lib.exceptions import ParamsError
from crm_lib.relative_dates import observation_end_knob
from crm_lib.report.knobs import RUN_LEVEL_KEYS, check_values, registry, rename_old_knobs

TOP_LEVEL_KEYS = RUN_LEVEL_KEYS
RUN_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class RunParams:
    """A checked params file.

    Attributes
    ----------
    path : Path
        The params file.
    run_name : str
        Name of the report folder.
    title : str
        Title of the index page.
    notebooks : list of Path
        Notebook files, in run order.
    parameters : dict
        Knobs set by the file (not the notebooks' defaults).
    declared : dict
        Notebook name -> {knob: default value} from its ``parameters`` cell.
    """

    path: Path
    run_name: str
    title: str
    notebooks: list[Path]
    parameters: dict[str, Any]
    declared: dict[str, dict[str, Any]] = field(default_factory=dict)

    def parameters_for(self, notebook: Path) -> dict[str, Any]:
        """The knobs of the file that ``notebook`` declares (and ``params_file``, when it declares it)."""
        knobs = self.declared.get(notebook.stem, {})
        values = {k: v for k, v in self.parameters.items() if k in knobs}
        if "params_file" in knobs:
            values["params_file"] = str(self.path.resolve())
        return values

    def effective(self) -> dict[str, Any]:
        """Every knob's value for this run: notebook defaults overridden by the file."""
        values: dict[str, Any] = {}
        for knobs in self.declared.values():
            for name, default in knobs.items():
                values.setdefault(name, default)
        values.update(self.parameters)
        return values


def _suggest(word: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def notebook_knobs(notebook: Path) -> dict[str, Any]:
    """Knobs of a notebook's ``parameters`` cell with their default values.

    Raises
    ------
    ParamsError
        When the notebook has no cell tagged ``parameters``.
    """
    import papermill

    info = papermill.inspect_notebook(str(notebook))
    if not info:
        raise ParamsError(
            f"{notebook.name}: no cell tagged 'parameters'; tag the first code cell 'parameters' "
            "so the runner can set its knobs."
        )
    knobs = {}
    for name, spec in info.items():
        try:
            knobs[name] = ast.literal_eval(spec["default"])
        except (ValueError, SyntaxError):
            knobs[name] = spec["default"]
    return knobs


def read_parameters(path: str | Path) -> dict[str, Any]:
    """The ``parameters`` of a params file, old knob names renamed; no check against notebooks.

    For :func:`crm_lib.session`, which applies a params file's knobs wherever the
    notebook lives; :func:`load_run_params` is the full check.
    """
    path = Path(path)
    try:
        content = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ParamsError(f"{path}: not valid YAML: {getattr(error, 'problem', error)}.") from None
    parameters = (content or {}).get("parameters") if isinstance(content, dict) else None
    if not isinstance(parameters, dict):
        raise ParamsError(f"{path}: no 'parameters:' mapping of knob: value.")
    return rename_old_knobs(parameters, str(path))


def parse_set_options(items: list[str] | None) -> dict[str, Any]:
    """``--set key=value`` options as knobs; each value is read as a YAML scalar (``0.25``, ``true``, ``-26w``).

    Raises
    ------
    ParamsError
        An item without ``=``, an empty key, or a value that is not valid YAML.

    Examples
    --------
    >>> parse_set_options(["gross_margin=0.25", "calibration_end=-26w", "observation_end=1998-06-30"])
    {'gross_margin': 0.25, 'calibration_end': '-26w', 'observation_end': '1998-06-30'}
    """
    values: dict[str, Any] = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ParamsError(f"--set {item!r}: expected KNOB=VALUE, e.g. --set gross_margin=0.25.")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError as error:
            raise ParamsError(f"--set {item!r}: the value is not valid YAML ({getattr(error, 'problem', error)}); "
                              "quote it, e.g. --set 'kpi_period=\"M\"'.") from None
        # YAML reads 1998-06-30 as a date; the knobs take dates as text, like a params file's quoted dates.
        values[key] = value.isoformat() if hasattr(value, "isoformat") else value
    return values


def load_run_params(path: str | Path, notebooks_dir: str | Path = "notebooks",
                    overrides: dict[str, Any] | None = None) -> RunParams:
    """Read a params file and check it against the notebooks it lists.

    Parameters
    ----------
    path : str or Path
        The YAML file.
    notebooks_dir : str or Path
        Folder of the notebooks (``notebooks/``).
    overrides : dict, optional
        Knobs that win over the file's (``--set KNOB=VALUE``), checked the same way.
        ``observation_end: latest`` becomes None (the last day in the data).

    Returns
    -------
    RunParams

    Raises
    ------
    ParamsError
        Missing file, YAML syntax error, unknown top-level key, missing or malformed
        ``run_name`` / ``notebooks``, a notebook that does not exist, or a parameter no
        listed notebook declares.
    """
    path = Path(path)
    notebooks_dir = Path(notebooks_dir)
    name = str(path)
    if not path.is_file():
        raise ParamsError(f"{name}: params file not found; pass the path of a YAML file such as params/cdnow.yaml.")
    try:
        content = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ParamsError(f"{name}: not valid YAML{where}: {getattr(error, 'problem', error)}.") from None
    if not isinstance(content, dict):
        raise ParamsError(f"{name}: expected a mapping with keys {', '.join(TOP_LEVEL_KEYS)}; got {type(content).__name__}.")
    for key in content:
        if key not in TOP_LEVEL_KEYS:
            raise ParamsError(
                f"{name}: unknown key '{key}'{_suggest(str(key), list(TOP_LEVEL_KEYS))} "
                f"The top-level keys are {', '.join(TOP_LEVEL_KEYS)}; notebook knobs go under 'parameters:'."
            )
    run_name = content.get("run_name")
    if not isinstance(run_name, str) or not RUN_NAME_PATTERN.match(run_name):
        raise ParamsError(
            f"{name}: run_name must be a folder name of letters, digits, '_', '-' or '.' (got {run_name!r})."
        )
    listed = content.get("notebooks")
    if not isinstance(listed, list) or not listed or not all(isinstance(n, str) for n in listed):
        raise ParamsError(f"{name}: 'notebooks' must be a non-empty list of notebook names (e.g. - 01_data_overview).")
    available = sorted(p.stem for p in notebooks_dir.glob("*.ipynb"))
    notebooks = []
    for entry in listed:
        stem = entry[:-6] if entry.endswith(".ipynb") else entry
        notebook = notebooks_dir / f"{stem}.ipynb"
        if not notebook.is_file():
            raise ParamsError(
                f"{name}: notebook '{entry}' not found in {notebooks_dir}/{_suggest(stem, available)} "
                f"Available: {', '.join(available) or 'none'}."
            )
        notebooks.append(notebook)
    parameters = content.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise ParamsError(f"{name}: 'parameters' must be a mapping of knob: value.")
    if "params_file" in parameters:
        raise ParamsError(f"{name}: 'params_file' is not set in a params file (the runner passes the file itself); "
                          "remove it.")
    parameters = rename_old_knobs(parameters, name)
    for key, value in rename_old_knobs(overrides or {}, "--set").items():
        if key in TOP_LEVEL_KEYS or key == "params_file":
            raise ParamsError(f"--set {key}=...: '{key}' is not a knob; --set only sets notebook knobs.")
        parameters[key] = value
    declared = {nb.stem: notebook_knobs(nb) for nb in notebooks}
    known = sorted({k for knobs in declared.values() for k in knobs})
    for key in parameters:
        if key not in known:
            raise ParamsError(
                f"{name}: {'--set ' if key in (overrides or {}) else ''}parameter '{key}' is not a knob of any "
                "listed notebook "
                f"({', '.join(nb.stem for nb in notebooks)}){_suggest(str(key), known)} "
                "Fix the spelling or remove it; `crm-workbench knobs PARAMS` lists the knobs."
            )
    check_values(parameters, registry(notebooks_dir), name if not overrides else f"{name} with --set")
    if "observation_end" in parameters:
        parameters["observation_end"] = observation_end_knob(parameters["observation_end"], name)
    title = content.get("title") or run_name
    return RunParams(
        path=path,
        run_name=run_name,
        title=str(title),
        notebooks=notebooks,
        parameters=dict(parameters),
        declared=declared,
    )


# ------------------------------------------------------------------ path confinement

#: Suffixes the runner gives its own folders; a run name ending in one could delete or
#: shadow another run's (a good run of X removes X.failed).
RESERVED_RUN_SUFFIXES = (".failed", ".staging", ".lock", ".old", ".link", ".v")
#: Knobs that name a file or folder the notebooks write to (must stay in the private folder).
OUTPUT_PATH_KNOB_ENDINGS = ("_dir", "_name", "_file")


def check_run_name(run_name: str, source: str) -> None:
    """Refuse a run name with a separator, a leading dot, '..' or a reserved suffix.

    Raises
    ------
    ParamsError
        Naming the key ``run_name`` and the rule.
    """
    bad = (
        not RUN_NAME_PATTERN.match(run_name)
        or "/" in run_name or "\\" in run_name or ".." in run_name
        or any(run_name.endswith(s) or f"{s}-" in run_name for s in RESERVED_RUN_SUFFIXES)
    )
    if bad:
        raise ParamsError(
            f"{source}: run_name {run_name!r} is not allowed: use letters, digits, '_', '-' and single dots, "
            f"without a path separator and not ending in {', '.join(RESERVED_RUN_SUFFIXES)} (used by the runner)."
        )


def check_notebook_confinement(notebooks: list[Path], notebooks_dir: Path, source: str) -> None:
    """Refuse a listed notebook that resolves outside ``notebooks_dir`` (``../``, symlinks).

    Raises
    ------
    ParamsError
        Naming the key ``notebooks`` and the entry.
    """
    root = Path(notebooks_dir).resolve()
    for notebook in notebooks:
        resolved = Path(notebook).resolve()
        if resolved.parent != root:
            raise ParamsError(
                f"{source}: notebooks entry '{Path(notebook).stem}' resolves to {resolved}, outside {root}; "
                "list notebooks by name only (e.g. - 01_data_overview)."
            )


def check_output_knobs(parameters: dict[str, Any], source: str) -> None:
    """Refuse output-path knobs (``export_dir``, ``*_name``, ``*_file``) that leave the private folder.

    Raises
    ------
    ParamsError
        An absolute path or one with ``..``, naming the key.
    """
    for key, value in parameters.items():
        if key == "data_path" or not key.endswith(OUTPUT_PATH_KNOB_ENDINGS) or not isinstance(value, str):
            continue
        path = Path(value)
        if path.is_absolute() or value.startswith("~") or ".." in path.parts:
            raise ParamsError(
                f"{source}: parameter '{key}' = {value!r} points outside the private run folder; "
                "use a relative path without '..' (files with real ids are written under .crm_private/runs/<run>/)."
            )
