"""End to end through the real runner (Papermill + nbconvert): content, reproducibility,
offline HTML, failure handling and atomic publishing."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from crm_lib.cli import main
from crm_lib.report.render import remote_references
from crm_lib.report.runner import run_report

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cdnow_runs(tmp_path_factory):
    """The default CDNOW report (01 and 03) rendered twice into two folders, with MPLBACKEND=Agg set:
    first one notebook at a time, then two at once in worker processes (``--jobs 2``)."""
    mp = pytest.MonkeyPatch()
    # With MPLBACKEND=Agg exported, figures would silently vanish unless the runner overrides it.
    mp.setenv("MPLBACKEND", "Agg")
    only = ["01_data_overview", "03_retention_survival"]
    try:
        first = run_report(REPO / "params" / "cdnow.yaml", output_dir=tmp_path_factory.mktemp("a"),
                           notebooks_dir=REPO / "notebooks", only=only, jobs=1)
        second = run_report(REPO / "params" / "cdnow.yaml", output_dir=tmp_path_factory.mktemp("b"),
                            notebooks_dir=REPO / "notebooks", only=only, jobs=2)
    finally:
        mp.undo()
    return first, second


def test_cdnow_report_states_the_counts(cdnow_runs):
    result, _ = cdnow_runs
    assert result.published and result.ok
    assert result.report_dir.name == "cdnow"
    html = (result.report_dir / "01_data_overview.html").read_text()
    assert "23,570 customers" in html
    assert "69,659 transactions" in html
    assert "2,500,315.63 USD" in html
    # figures are embedded, not lost to a non-inline backend
    assert html.count("data:image/png;base64,") >= 5
    # code is hidden
    assert "load_transactions(" not in html


def test_index_and_manifest(cdnow_runs):
    result, _ = cdnow_runs
    index = result.index_path.read_text()
    assert 'href="01_data_overview.html"' in index
    assert "Data overview and customer KPIs" in index
    manifest = json.loads((result.report_dir / "manifest.json").read_text())
    data_file = Path(manifest["data"]["path"])
    import hashlib

    assert manifest["data"]["sha256"] == hashlib.sha256(data_file.read_bytes()).hexdigest()
    assert manifest["data"]["sha256"] in index
    assert manifest["data"]["rows_read"] == 69_659 and manifest["data"]["customers"] == 23_570
    assert manifest["packages"]["lifetimes"] == "0.11.3"
    assert manifest["notebooks"][0]["status"] == "ok" and manifest["notebooks"][0]["seconds"] > 0
    assert manifest["parameters"]["kpi_period"] == "M"
    # headline.json gathers the key findings 01 wrote (schema in crm_lib.report.index.headline);
    # the index opens with them, linked to the section that shows each.
    headline = json.loads((result.report_dir / "headline.json").read_text())
    assert (headline["run"], headline["observation_end"], headline["calibration_end"]) == ("cdnow", "1998-06-30",
                                                                                          "1997-09-30")
    customers = headline["figures"]["customers"]
    assert customers["value"] == 23_570 and customers["notebook"] == "01_data_overview"
    assert customers["page"].startswith("01_data_overview.html#")
    assert headline["figures"]["revenue"]["value"] == pytest.approx(2_500_315.63)
    assert index.index('id="headline"') < index.index("<h2>Reports</h2>")
    assert f'<a href="{customers["page"]}">' in index


def test_rerun_is_byte_identical(cdnow_runs):
    first, second = cdnow_runs
    names = sorted(p.name for p in first.report_dir.glob("*.html"))
    assert names == ["01_data_overview.html", "03_retention_survival.html", "index.html"]
    assert [nb.status for nb in second.notebooks] == ["ok", "ok"]
    for name in [*names, "headline.json"]:
        assert (first.report_dir / name).read_bytes() == (second.report_dir / name).read_bytes(), name
    # every page, including the list of all runs next to the run folder
    runs_first, runs_second = first.report_dir.parent / "index.html", second.report_dir.parent / "index.html"
    assert runs_first.read_bytes() == runs_second.read_bytes()
    assert sorted(p.name for p in first.report_dir.parent.glob("*.html")) == ["index.html"]


def test_reports_open_offline(cdnow_runs):
    result, _ = cdnow_runs
    for page in result.report_dir.glob("*.html"):
        html = page.read_text()
        assert remote_references(html) == [], page.name
        assert "require.min.js" not in html and "MathJax.js" not in html


def test_secret_knobs_are_not_published():
    from crm_lib.report.runner import redact

    assert redact({"pseudonym_salt": "s3cret", "currency": "USD"}) == {"pseudonym_salt": "(hidden)", "currency": "USD"}


def test_remote_reference_detector_catches_cdn_scripts():
    assert remote_references('<script src="https://cdn.example.org/require.js"></script>')
    assert remote_references("<style>@import url('https://fonts.example.org/x.css');</style>")
    assert not remote_references('<a href="https://example.org">a link is not a load</a>')


# --- failures -----------------------------------------------------------------------------

TINY_CSV = "customer,day,spend\n1,2021-01-04,10\n1,2021-02-08,12\n2,2021-01-10,30\n3,2021-02-01,5\n3,2021-03-01,6\n"


@pytest.fixture
def workspace(tmp_path):
    """A notebooks folder with 01 and a notebook that fails on demand, a tiny log and params."""
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    shutil.copy(REPO / "notebooks" / "01_data_overview.ipynb", notebooks)
    failing = nbformat.v4.new_notebook()
    params_cell = nbformat.v4.new_code_cell("fail = False  # raise in the next cell")
    params_cell.metadata["tags"] = ["parameters"]
    failing.cells = [
        nbformat.v4.new_markdown_cell("# Sometimes fails"),
        params_cell,
        nbformat.v4.new_code_cell("if fail:\n    raise RuntimeError('planted failure')\nprint('fine')"),
    ]
    failing.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(failing, notebooks / "99_sometimes_fails.ipynb")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "tiny.csv").write_text(TINY_CSV)
    base = (
        "run_name: tiny\nnotebooks: [01_data_overview, 99_sometimes_fails]\nparameters:\n"
        "  data_path: data/tiny.csv\n  column_map: {customer_id: customer, date: day, amount: spend}\n"
        "  csv_separator: ','\n  date_format: '%Y-%m-%d'\n"
    )
    (tmp_path / "good.yaml").write_text(base + "  fail: false\n")
    (tmp_path / "bad.yaml").write_text(base + "  fail: true\n")
    return tmp_path


def _cli(workspace, params, *extra):
    return main(["run", str(workspace / params), "--notebooks-dir", str(workspace / "notebooks"),
                 "--output-dir", str(workspace / "reports"), "--no-progress-bar", *extra])


def test_failed_notebook_keeps_last_good_report(workspace, capsys):
    assert _cli(workspace, "good.yaml") == 0
    good = workspace / "reports" / "tiny"
    good_index = (good / "index.html").read_bytes()
    # relative data_path is read from the params file's folder; the tiny log has 3 customers
    assert "3 customers" in (good / "01_data_overview.html").read_text()

    assert _cli(workspace, "bad.yaml") == 1
    err = capsys.readouterr().err
    assert "1 of 2 notebooks failed: 99_sometimes_fails: RuntimeError: planted failure" in err
    # the good report is untouched, the failed run is next to it for diagnosis
    assert (good / "index.html").read_bytes() == good_index
    failed_index = (workspace / "reports" / "tiny.failed" / "index.html").read_text()
    assert "1 of 2 notebooks failed" in failed_index
    assert "RuntimeError: planted failure" in failed_index
    # the other notebook still ran and rendered
    assert (workspace / "reports" / "tiny.failed" / "01_data_overview.html").exists()
    # no staging folders left behind (hidden .<name>.v-* folders are the published versions)
    assert _visible(workspace / "reports") == ["index.html", "tiny", "tiny.failed"]
    runs = (workspace / "reports" / "index.html").read_text()
    assert '<a href="tiny.failed/index.html">tiny.failed</a>' in runs and 'class="failed"' in runs
    assert not list((workspace / "reports").glob("*staging*"))
    # reviewers get HTML only: executed notebooks are in the private folder
    assert not list(good.glob("*.ipynb"))

    # a later good run publishes and clears the stale failed folder
    assert _cli(workspace, "good.yaml") == 0
    assert _visible(workspace / "reports") == ["index.html", "tiny"]
    assert "tiny.failed" not in (workspace / "reports" / "index.html").read_text()
    assert not list((workspace / "reports").glob(".tiny.failed*"))


def _visible(folder):
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


def test_bad_data_stops_before_anything_is_written(workspace, capsys):
    (workspace / "data" / "tiny.csv").write_text(TINY_CSV + "4,2021-13-01,7\n")
    assert _cli(workspace, "good.yaml") == 2
    err = capsys.readouterr().err
    assert "DataValidationError: tiny.csv: column 'day' has 1 of 6 values that are not dates (e.g. '2021-13-01')" in err
    assert not (workspace / "reports").exists() or not any((workspace / "reports").iterdir())


def test_console_script_help_and_module_entry():
    out = subprocess.run([sys.executable, "-m", "crm_lib", "run", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for option in ("--output-dir", "--only", "--notebooks-dir", "--kernel", "--timeout", "--progress-bar", "exit status"):
        assert option in out.stdout
    top = subprocess.run([sys.executable, "-m", "crm_lib", "--help"], capture_output=True, text=True)
    assert "run" in top.stdout and "check" in top.stdout and "knobs" in top.stdout
