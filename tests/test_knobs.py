"""Knob registry, run context and the papermill path: one name, one default, one window rule."""
from __future__ import annotations

import json
import logging
from pathlib import Path

import nbformat
import pandas as pd
import pytest
import yaml

from crm_lib.cli import main
from crm_lib.context import CONTEXT_DEFAULTS, session
from crm_lib.exceptions import ParamsError
from crm_lib.report.knobs import periods_in_weeks, registry
from crm_lib.report.params import load_run_params
from crm_lib.segments import DEFAULT_SEGMENT_RULES

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
TINY_CSV = "customer_id,date,amount\n1,2021-01-04,10\n1,2021-02-01,12\n2,2021-01-10,5\n2,2021-03-30,8\n3,2021-03-01,4\n"


def test_every_notebook_knob_has_one_default_one_meaning_and_help():
    knobs = registry(NOTEBOOKS)
    assert "params_file" in knobs and len(knobs["params_file"].notebooks) == 6
    # the renamed knobs are gone from every notebook
    for old in ("model", "random_seed", "significance_level", "discount_rate", "horizon_periods_forecast"):
        assert old not in knobs
    assert knobs["time_unit"].default == "W" and set(knobs["time_unit"].notebooks) >= {
        "02_segmentation", "04_lifetime_value", "05_loyalty_profit"}


def _notebook(folder: Path, name: str, source: str) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source, metadata={"tags": ["parameters"]})]
    nbformat.write(nb, folder / f"{name}.ipynb")


def test_registry_fails_on_two_defaults_or_two_meanings(tmp_path):
    _notebook(tmp_path, "a", 'time_unit = "W"  # unit of the models\n')
    _notebook(tmp_path, "b", 'time_unit = "D"  # unit of the models\n')
    with pytest.raises(ParamsError, match="'time_unit' has 2 defaults"):
        registry(tmp_path)
    _notebook(tmp_path, "b", 'time_unit = "W"  # unit of the lifetimes\n')
    with pytest.raises(ParamsError, match="two meanings"):
        registry(tmp_path)


def test_notebook_defaults_equal_the_default_params_file_and_the_context():
    knobs = registry(NOTEBOOKS)
    cdnow = yaml.safe_load((REPO / "params" / "cdnow.yaml").read_text())["parameters"]
    for name, value in cdnow.items():
        default = knobs[name].default
        if name == "rfm_segment_rules" and default is None:  # None means crm_lib's table, the same rules
            default = [dict(rule) for rule in DEFAULT_SEGMENT_RULES]
        assert default == value, name
    for name, value in CONTEXT_DEFAULTS.items():
        assert knobs[name].default == value, name


@pytest.mark.parametrize(
    "knob, value, words",
    [
        ("discount_rate_annual", -0.5, "below the valid range"),
        ("gross_margin", 1.5, "above the valid range"),
        ("kpi_period", "D", "not one of the choices"),
        ("clv_horizon_months", 6.5, "not a whole number"),
        ("calibration_end", "1997-13-45", "not a date"),
    ],
)
def test_params_file_values_are_checked(tmp_path, knob, value, words):
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump({"run_name": "x", "notebooks": ["01_data_overview", "04_lifetime_value"],
                                    "parameters": {knob: value}}))
    with pytest.raises(ParamsError) as info:
        load_run_params(path, NOTEBOOKS)
    assert f"knob '{knob}'" in str(info.value) and words in str(info.value) and str(path) in str(info.value)


def test_old_knob_names_still_work_with_a_deprecation_message(tmp_path, caplog):
    path = tmp_path / "run.yaml"
    path.write_text("run_name: x\nnotebooks: [05_loyalty_profit]\nparameters:\n  random_seed: 3\n"
                    "  significance_level: 0.01\n")
    with caplog.at_level(logging.WARNING):
        params = load_run_params(path, NOTEBOOKS)
    assert params.parameters == {"seed": 3, "alpha": 0.01}
    assert "'random_seed' is deprecated; it is now called 'seed'" in caplog.text


def test_horizons_are_calendar_units():
    assert periods_in_weeks(52, "W") == 52
    assert periods_in_weeks(52, "D") == 364
    assert periods_in_weeks(1, "h") == 168


@pytest.fixture
def tiny_run(tmp_path, monkeypatch):
    monkeypatch.setenv("CRM_PRIVATE_DIR", str(tmp_path / "private"))
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "tiny.csv").write_text(TINY_CSV)
    path = tmp_path / "tiny.yaml"
    path.write_text("run_name: tiny\nnotebooks: [01_data_overview, 04_lifetime_value]\nparameters:\n"
                    "  data_path: data/tiny.csv\n  column_map: {customer_id: customer_id, date: date, amount: amount}\n"
                    "  csv_separator: ','\n  date_format: '%Y-%m-%d'\n  gross_margin: 0.5\n")
    return path


def test_check_rejects_a_calibration_end_outside_the_window(tiny_run, capsys):
    text = tiny_run.read_text() + "  calibration_end: '1997-09-30'\n"
    tiny_run.write_text(text)
    assert main(["check", str(tiny_run), "--notebooks-dir", str(NOTEBOOKS)]) == 2
    err = capsys.readouterr().err
    assert "calibration_end='1997-09-30' is outside the observation window 2021-01-04 to 2021-03-30" in err


def test_params_command_writes_what_papermill_accepts(tiny_run, capsys):
    assert main(["params", str(tiny_run), "--notebook", "04_lifetime_value", "--notebooks-dir", str(NOTEBOOKS)]) == 0
    values = yaml.safe_load(capsys.readouterr().out)
    declared = registry(NOTEBOOKS)
    assert all("04_lifetime_value" in declared[k].notebooks for k in values)
    # one rule for relative paths: from the params file's folder, written absolute
    assert values["data_path"] == str((tiny_run.parent / "data" / "tiny.csv").resolve())
    assert values["params_file"] == str(tiny_run.resolve()) and values["gross_margin"] == 0.5


def test_session_applies_the_params_file_over_the_notebook_defaults(tiny_run):
    knobs = registry(NOTEBOOKS)
    namespace = {name: knob.default for name, knob in knobs.items() if "04_lifetime_value" in knob.notebooks}
    namespace["params_file"] = str(tiny_run)
    namespace["seed"] = 7  # edited in the notebook: wins over the file and the default
    ctx = session(namespace["params_file"], namespace=namespace)
    assert ctx.knobs["gross_margin"] == 0.5 and namespace["gross_margin"] == 0.5
    assert ctx.knobs["seed"] == 7 and ctx.knobs["time_unit"] == "W"
    assert ctx.log.n_customers == 3 and ctx.log.observation_end == pd.Timestamp("2021-03-30")
    assert ctx.calibration_end == ctx.window.midpoint()


def test_session_caches_on_disk_by_data_and_knobs(tiny_run):
    first = session(tiny_run)
    summary = first.summary
    assert (first.cache_dir / "summary.pkl").is_file()
    second = session(tiny_run)
    assert second.cache_key == first.cache_key
    pd.testing.assert_frame_equal(second.summary, summary)
    assert session(tiny_run, time_unit="D").cache_key != first.cache_key
    tiny_run.parent.joinpath("data", "tiny.csv").write_text(TINY_CSV + "3,2021-03-02,6\n")
    assert session(tiny_run).cache_key != first.cache_key  # new data, new cache


def test_a_notebook_given_a_whole_params_file_stops_with_what_to_do():
    namespace = {"run_name": "cdnow", "parameters": {"gross_margin": 0.3}, "params_file": None}
    with pytest.raises(ParamsError) as info:
        session(None, namespace=namespace)
    assert "run-level key(s) run_name, parameters" in str(info.value)
    assert "crm-workbench params" in str(info.value)


def test_notebooks_open_the_context_in_their_first_code_cell():
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        nb = json.loads(path.read_text())
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        assert "params_file = None" in "".join(code[0]["source"]), path.name
        assert "session(params_file, namespace=globals())" in "".join(code[1]["source"]), path.name
