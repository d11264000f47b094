"""Params files: unknown keys, typos, missing notebooks, and knobs papermill can read."""
from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import pytest

from crm_lib.exceptions import ParamsError
from crm_lib.report.params import load_run_params, notebook_knobs

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"


def _write(tmp_path, text):
    path = tmp_path / "run.yaml"
    path.write_text(text)
    return path


def test_cdnow_params_load():
    params = load_run_params(REPO / "params" / "cdnow.yaml", NOTEBOOKS)
    assert params.run_name == "cdnow"
    assert params.notebooks[0].name == "01_data_overview.ipynb"
    assert params.effective()["data_path"] == "embedded:CDNOW_master.txt"


def test_mistyped_parameter_names_key_file_and_suggestion(tmp_path):
    path = _write(tmp_path, "run_name: x\nnotebooks: [01_data_overview]\nparameters:\n  kpi_perod: M\n")
    with pytest.raises(ParamsError) as info:
        load_run_params(path, NOTEBOOKS)
    message = str(info.value)
    assert str(path) in message
    assert "parameter 'kpi_perod' is not a knob" in message
    assert "did you mean 'kpi_period'?" in message


def test_unknown_top_level_key(tmp_path):
    path = _write(tmp_path, "run_name: x\nnotebook: [01_data_overview]\n")
    with pytest.raises(ParamsError, match=r"unknown key 'notebook'; did you mean 'notebooks'\?"):
        load_run_params(path, NOTEBOOKS)


def test_missing_notebook(tmp_path):
    path = _write(tmp_path, "run_name: x\nnotebooks: [01_data_overveiw]\n")
    with pytest.raises(ParamsError, match=r"notebook '01_data_overveiw' not found .*did you mean '01_data_overview'"):
        load_run_params(path, NOTEBOOKS)


def test_bad_yaml_and_bad_run_name(tmp_path):
    with pytest.raises(ParamsError, match=r"not valid YAML at line 3, column 1: expected .,. or .\]."):
        load_run_params(_write(tmp_path, "run_name: x\nnotebooks: [a\n"), NOTEBOOKS)
    with pytest.raises(ParamsError, match=r"run_name must be a folder name"):
        load_run_params(_write(tmp_path, "run_name: ../x\nnotebooks: [01_data_overview]\n"), NOTEBOOKS)
    with pytest.raises(ParamsError, match=r"params file not found"):
        load_run_params(tmp_path / "missing.yaml", NOTEBOOKS)


@pytest.mark.parametrize("notebook", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.stem)
def test_every_knob_of_every_notebook_is_readable(notebook):
    # Papermill silently skips a parameters line it cannot parse (e.g. '=' in a comment):
    # such a knob could not be set from a params file.
    nb = nbformat.read(notebook, as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    assigned = {t.id for node in ast.parse(cell.source).body if isinstance(node, ast.Assign) for t in node.targets}
    assert assigned and assigned == set(notebook_knobs(notebook))


# The clean-notebook test is in tests/test_notebooks_clean.py (with the git filter's tests).


@pytest.mark.parametrize("params_file", sorted((REPO / "params").glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_params_files_are_valid(params_file):
    params = load_run_params(params_file, NOTEBOOKS)
    assert params.notebooks
