"""Scheduled runs (issue 13 items 1, 2, 5): --set, relative dates, any working directory,
-q silence, run history with retention, and the refusal of a run without new data.

Kernels start only in the two end-to-end tests (a throwaway one-cell notebook); the rest
call the helpers directly and take milliseconds.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from crm_lib.cli import main
from crm_lib.context import calibration_end_for
from crm_lib.data import ObservationWindow
from crm_lib.exceptions import ParamsError
from crm_lib.relative_dates import observation_end_knob, resolve_relative_date
from crm_lib.report.params import load_run_params, parse_set_options
from crm_lib.report.publish import LATEST_LINK, RunEnvironmentError, history_entries, publish, publish_dated
from crm_lib.report.runner import NoNewDataError, refuse_repeat

REPO = Path(__file__).resolve().parents[1]

KNOBS = {
    "data_path": '""', "column_map": "{}", "csv_separator": '","', "date_format": "None",
    "observation_end": "None", "calibration_end": "None", "gross_margin": "0.3",
}
CELL = """from crm_lib.data import load_transactions
from crm_lib.context import calibration_end_for
log = load_transactions(data_path, column_map=column_map, sep=csv_separator, date_format=date_format,
                        observation_end=observation_end)
print(f"calibration ends {calibration_end_for(calibration_end, log.window):%Y-%m-%d}")"""


def _csv(last_month: int) -> str:
    """Three customers buying on the 5th and 20th of each month of 2021 up to ``last_month``."""
    return "customer,day,spend\n" + "".join(
        f"{c},2021-{m:02d}-{d:02d},{10 + c}\n" for c in range(1, 4) for m in range(1, last_month + 1) for d in (5, 20))


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A throwaway project: notebooks/01_data_overview.ipynb, data/, params/shop.yaml."""
    root = tmp_path / "project"
    (root / "notebooks").mkdir(parents=True)
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("\n".join(f"{k} = {v}  # {k} of the schedule tests" for k, v in KNOBS.items()))
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# Schedule test"), cell, nbformat.v4.new_code_cell(CELL)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, root / "notebooks" / "01_data_overview.ipynb")
    (root / "data").mkdir()
    (root / "data" / "shop.csv").write_text(_csv(4))
    (root / "params").mkdir()
    (root / "params" / "shop.yaml").write_text(
        "run_name: shop\nnotebooks: [01_data_overview]\nparameters:\n  data_path: ../data/shop.csv\n"
        "  column_map: {customer_id: customer, date: day, amount: spend}\n  observation_end: latest\n")
    monkeypatch.setenv("CRM_PRIVATE_ROOT", str(tmp_path / "private"))
    return root


# --- --set ---------------------------------------------------------------------------------------

def test_set_values_are_yaml_scalars():
    assert parse_set_options(["gross_margin=0.25", "seed=7", "value_model=auto", "calibration_end=-26w",
                              "observation_end=1998-06-30", "candidate_models=[bg_nbd]", "x="]) == {
        "gross_margin": 0.25, "seed": 7, "value_model": "auto", "calibration_end": "-26w",
        "observation_end": "1998-06-30", "candidate_models": ["bg_nbd"], "x": None}
    with pytest.raises(ParamsError, match="expected KNOB=VALUE"):
        parse_set_options(["gross_margin"])


def test_set_overrides_the_file_and_is_type_checked(project, capsys):
    params = project / "params" / "shop.yaml"
    run = load_run_params(params, project / "notebooks", {"gross_margin": 0.25})
    assert run.parameters["gross_margin"] == 0.25
    assert run.parameters["observation_end"] is None  # "latest" is the loader's None
    assert main(["check", str(params), "--set", "gross_margin=abc"]) == 2
    err = capsys.readouterr().err
    assert "knob 'gross_margin' = 'abc' is not a number" in err and "with --set" in err
    assert main(["check", str(params), "--set", "gross_margn=0.2"]) == 2
    err = capsys.readouterr().err
    assert "--set parameter 'gross_margn'" in err and "did you mean 'gross_margin'" in err
    assert main(["check", str(params), "--set", "calibration_end=-26x"]) == 2
    assert "calibration_end" in capsys.readouterr().err


# --- relative dates ------------------------------------------------------------------------------

def test_relative_dates_against_calendar_arithmetic():
    end = pd.Timestamp("1998-06-30")
    # days and weeks: the standard library's date arithmetic as the independent reference
    assert resolve_relative_date("-90d", end) == pd.Timestamp(dt.date(1998, 6, 30) - dt.timedelta(days=90))
    assert resolve_relative_date("-26w", end) == pd.Timestamp(dt.date(1998, 6, 30) - dt.timedelta(weeks=26))
    # calendar months, by hand: six months before 30 June is 30 December; one before 31 March is 28 February
    assert resolve_relative_date("-6m", end) == pd.Timestamp("1997-12-30")
    assert resolve_relative_date("-1m", pd.Timestamp("1998-03-31")) == pd.Timestamp("1998-02-28")
    assert resolve_relative_date("latest", end) == end
    with pytest.raises(ParamsError, match="not a relative date"):
        resolve_relative_date("-2y", end)
    assert observation_end_knob("latest") is None and observation_end_knob("1998-01-01") == "1998-01-01"
    with pytest.raises(ParamsError, match="relative to the observation end itself"):
        observation_end_knob("-26w")


def test_calibration_end_rule_takes_offsets_and_checks_the_window():
    window = ObservationWindow(pd.Timestamp("1997-01-01"), pd.Timestamp("1998-06-30"), "W")
    assert calibration_end_for("-26w", window) == pd.Timestamp("1997-12-30")
    with pytest.raises(ParamsError, match="outside the observation window"):
        calibration_end_for("-80w", window)


# --- history and retention (no kernel: the publisher and the repeat check alone) -----------------

def _staging(parent: Path, text: str, data: dict | None = None) -> Path:
    folder = parent / f".shop.staging-{text}"
    folder.mkdir()
    (folder / "index.html").write_text(text)
    (folder / "manifest.json").write_text(json.dumps({"data": data}))
    return folder


def test_history_layout_latest_and_retention(tmp_path):
    run_dir = tmp_path / "shop"
    for label in ("2021-01-31", "2021-03-31", "2021-02-28", "2021-04-30"):
        publish_dated(_staging(tmp_path, label), run_dir, label, keep_runs=3)
    assert history_entries(run_dir) == ["2021-02-28", "2021-03-31", "2021-04-30"]
    assert os.readlink(run_dir / LATEST_LINK) == "2021-04-30"
    assert (run_dir / LATEST_LINK / "index.html").read_text() == "2021-04-30"
    # a rerun of the same end replaces that entry; a late backfill does not move latest
    publish_dated(_staging(tmp_path, "again"), run_dir, "2021-04-30", keep_runs=3)
    publish_dated(_staging(tmp_path, "old"), run_dir, "2021-01-31", keep_runs=3)
    assert (run_dir / LATEST_LINK / "index.html").read_text() == "again"
    assert history_entries(run_dir) == ["2021-01-31", "2021-03-31", "2021-04-30"]
    # the versions of removed entries go too (publish keeps one previous version per entry for readers)
    versions = {p.name.split(".v-")[0] for p in run_dir.iterdir() if ".v-" in p.name}
    assert versions == {".2021-01-31", ".2021-03-31", ".2021-04-30"}


def test_history_refuses_a_flat_report(tmp_path):
    publish(_staging(tmp_path, "flat"), tmp_path / "shop")
    with pytest.raises(RunEnvironmentError, match="published without history"):
        publish_dated(_staging(tmp_path, "dated"), tmp_path / "shop", "2021-04-30", keep_runs=2)
    assert (tmp_path / "shop" / "index.html").read_text() == "flat"


def test_a_run_without_new_rows_is_refused(tmp_path):
    run_dir = tmp_path / "shop"
    data = {"file": "shop.csv", "observation_end": "2021-04-30", "sha256": "a" * 64}
    publish_dated(_staging(tmp_path, "april", data), run_dir, "2021-04-30", keep_runs=3)
    with pytest.raises(NoNewDataError, match="no new rows since the latest kept run"):
        refuse_repeat(run_dir, data)
    with pytest.raises(NoNewDataError, match="late or truncated"):
        refuse_repeat(run_dir, {**data, "observation_end": "2021-03-31", "sha256": "b" * 64})
    refuse_repeat(run_dir, {**data, "sha256": "c" * 64})  # corrected data for the same month runs
    refuse_repeat(run_dir, {**data, "observation_end": "2021-05-31"})


# --- end to end: cron's view (other working directory, -q, history, exit 4) ----------------------

def test_monthly_script_from_another_directory_is_silent_and_keeps_history(project, tmp_path, monkeypatch, capfd):
    env = {**os.environ, "CRM_PRIVATE_ROOT": str(tmp_path / "private")}
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    params = project / "params" / "shop.yaml"
    script = [sys.executable, str(REPO / "examples" / "monthly_run.py"), str(params),
              "--keep-runs", "2", "--", "--set", "calibration_end=-4w"]
    done = subprocess.run(script, cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)
    # nothing at all on success: no progress, no path, no kernel warning about unencrypted TCP
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    run_dir = project / "reports" / "shop"
    assert history_entries(run_dir) == ["2021-04-20"]
    page = (run_dir / LATEST_LINK / "01_data_overview.html").read_text()
    assert "calibration ends 2021-03-23" in page  # 2021-04-20 minus 4 weeks
    # the same export again (in-process: refused before any kernel starts): one line, exit 4
    monkeypatch.chdir(elsewhere)
    sys.path.insert(0, str(REPO / "examples"))
    try:
        from monthly_run import main as monthly
    finally:
        sys.path.remove(str(REPO / "examples"))
    assert monthly([str(params), "--keep-runs", "2", "--", "--set", "calibration_end=-4w"]) == 4
    out, err = capfd.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1 and "no new rows since the latest kept run" in err
    # a later export runs again and keeps two
    (project / "data" / "shop.csv").write_text(_csv(5))
    assert main(["run", "params/shop.yaml", "--project", str(project), "-q", "--keep-runs", "1",
                 "--only", "01_data_overview", "--set", "calibration_end=-4w", "--no-progress-bar"]) == 0
    assert history_entries(run_dir) == ["2021-05-20"] and os.readlink(run_dir / LATEST_LINK) == "2021-05-20"
