"""The fault suite of issue 11: bad inputs, hostile params, killed and hanging runs.

Every failure must end in the documented exit status (2 bad params or data, 3 the
machine, 1 a notebook failed), a message that names the file, the column, the row count
and an example (or the params key), and leave the last good report byte-for-byte intact.

Bad inputs and hostile params are refused before any kernel starts, so those tests take
milliseconds; the runner faults (signals, hanging cells, dying kernels, concurrent runs)
start real kernels on throwaway notebooks and are marked slow.
"""
from __future__ import annotations

import errno
import gzip
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from crm_lib.cli import main
from crm_lib.report.publish import publish, swap_link

KNOBS_CELL = """data_path = ""
column_map = {}
csv_separator = ","
date_format = None
observation_end = None
encoding = None
decimal = "."
timezone = None
max_input_bytes = None
kpi_period = "M"
export_dir = ""
customer_table_name = "customer_value.csv"
pseudonym_salt = ""
calibration_end = None
work_seconds = 0.0
die = False"""
# The knob registry wants one help comment per knob, as in the real notebooks.
KNOBS_CELL = "\n".join(f"{line}  # {line.split(' = ')[0]} of the fault-test notebooks" for line in KNOBS_CELL.splitlines())

LOAD_CELL = """import time
from crm_lib.data import load_transactions
log = load_transactions(data_path, column_map=column_map, sep=csv_separator, date_format=date_format,
                        encoding=encoding, decimal=decimal, timezone=timezone)
time.sleep(work_seconds)
if die:
    import os, signal
    os.kill(os.getpid(), signal.SIGKILL)
print(f"{log.n_customers} customers")"""

PSEUDONYM_CELL = """from crm_lib.segments import pseudonymize
display(pseudonymize(sorted(log.transactions['customer_id'].unique())).to_frame())"""

FINDINGS_CELL = """from crm_lib.report.findings import Finding, show_key_findings
show_key_findings([Finding("{key}", "{key} of this page", {value}, "count")], "{name}")"""

GOOD_CSV = (
    "customer,day,spend\n"
    + "".join(f"{c},2021-{m:02d}-{d:02d},{10 + c}\n" for c in range(1, 41) for m, d in ((1, 4), (2, 8), (3, 1 + c % 27)))
)


def _notebook(path: Path, *cells: str) -> None:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell(KNOBS_CELL)
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell(f"# {path.stem}"), params, *map(nbformat.v4.new_code_cell, cells)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


@pytest.fixture
def shop(tmp_path, monkeypatch):
    """Throwaway notebooks (named like the real 01 and 02), a good log, and a published good report."""
    notebooks = tmp_path / "project" / "notebooks"
    notebooks.mkdir(parents=True)
    _notebook(notebooks / "01_data_overview.ipynb", LOAD_CELL,
              FINDINGS_CELL.format(key="customers", value="log.n_customers", name="01_data_overview"))
    _notebook(notebooks / "02_segmentation.ipynb", LOAD_CELL, PSEUDONYM_CELL,
              FINDINGS_CELL.format(key="segment_share_all", value="1.0", name="02_segmentation"))
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "good.csv").write_text(GOOD_CSV)
    monkeypatch.setenv("CRM_PRIVATE_ROOT", str(tmp_path / "private"))
    reports = tmp_path / "reports"
    reports.mkdir()
    # The last good report: published through the real atomic publish.
    good = reports / ".shop.staging-good"
    good.mkdir()
    (good / "index.html").write_text("<html>last good index</html>")
    (good / "01_data_overview.html").write_text("<html>last good page</html>")
    publish(good, reports / "shop")
    return tmp_path


def _params(root: Path, data: str, knobs: str = "", *, run_name: str = "shop",
            notebooks: str = "[01_data_overview, 02_segmentation]", name: str = "shop.yaml") -> Path:
    path = root / name
    path.write_text(
        f"run_name: {run_name}\nnotebooks: {notebooks}\nparameters:\n  data_path: {data}\n"
        "  column_map: {customer_id: customer, date: day, amount: spend}\n" + knobs
    )
    return path


def _run(root: Path, params: Path, *extra: str) -> int:
    return main(["run", str(params), "--notebooks-dir", str(root / "project" / "notebooks"),
                 "--output-dir", str(root / "reports"), "--no-progress-bar", *extra])


def _snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (following the published link) and the link targets."""
    files = {}
    for path in sorted(folder.rglob("*")):
        if path.is_symlink():
            files[f"link:{path.relative_to(folder)}"] = os.readlink(path).encode()
        if path.is_file():
            files[str(path.relative_to(folder))] = path.read_bytes()
    for link in folder.iterdir():
        if link.is_symlink():
            for path in sorted(link.rglob("*")):
                files[f"{link.name}/{path.relative_to(link)}"] = path.read_bytes()
    return files


# --- the catalogue of bad input files ---------------------------------------------------------

HEAD = "customer,day,spend\n"
ROWS = "".join(f"{c},2021-0{1 + c % 3}-1{c % 9},{c}.5\n" for c in range(1, 30))


def _xlsx_bytes(frame: pd.DataFrame, tmp: Path) -> bytes:
    frame.to_excel(tmp / "sheet.xlsx", index=False)
    return (tmp / "sheet.xlsx").read_bytes()


#: (case id, file name, content, extra knobs, exit status, fragments the message must contain).
#: Column-level problems must name the file, the column, "<bad> of <rows>" and an example.
CATALOGUE = [
    ("empty file", "t.csv", b"", "", 2, ["t.csv", "empty (0 bytes)", "export"]),
    ("header only", "t.csv", HEAD.encode(), "", 2, ["t.csv", "no rows", "customer, day, spend"]),
    ("missing column", "t.csv", (HEAD + ROWS).replace("spend", "total").encode(), "", 2,
     ["t.csv", "column 'spend' (amount) not found in 29 rows", "'total'", "column_map"]),
    ("wrong separator", "t.csv", (HEAD + ROWS).replace(",", ";").encode(), "", 2,
     ["t.csv", "column 'customer'", "not found in 29 rows", "check sep"]),
    ("impossible date", "t.csv", (HEAD + ROWS + "7,2021-13-01,3\n").encode(), "", 2,
     ["t.csv", "column 'day'", "1 of 30", "e.g. '2021-13-01'", "date_format"]),
    ("empty date", "t.csv", (HEAD + ROWS + "7,,3\n").encode(), "", 2,
     ["t.csv", "column 'day'", "1 of 30", "1 of them empty", "an empty cell"]),
    ("text amount", "t.csv", (HEAD + ROWS + "7,2021-01-01,abc\n").encode(), "", 2,
     ["t.csv", "column 'spend' (amount)", "1 of 30", "e.g. 'abc'"]),
    ("currency symbol", "t.csv", (HEAD + ROWS + "7,2021-01-01,$12.50\n").encode(), "", 2,
     ["t.csv", "column 'spend' (amount)", "1 of 30", "e.g. '$12.50'", "currency symbols"]),
    ("decimal comma without knob", "t.csv", (HEAD + ROWS).replace(",", ";").replace(".", ",").encode(),
     "  csv_separator: ';'\n", 2, ["t.csv", "column 'spend' (amount)", "29 of 29", "e.g. '1,5'", "decimal: ','"]),
    ("infinite amount", "t.csv", (HEAD + ROWS + "7,2021-01-01,inf\n").encode(), "", 2,
     ["t.csv", "column 'spend' (amount)", "1 of 30", "e.g. 'inf'"]),
    ("empty amounts", "t.csv", (HEAD + ROWS + "7,2021-01-01,\n8,2021-01-02,\n").encode(), "", 2,
     ["t.csv", "column 'spend' (amount)", "2 of 31", "2 of them empty"]),
    ("missing customer id", "t.csv", (HEAD + ROWS + ",2021-01-01,3\n").encode(), "", 2,
     ["t.csv", "column 'customer' (customer_id)", "1 of 30", "data row 30"]),
    ("ragged row", "t.csv", (HEAD + "".join(ROWS.splitlines(True)[:3]) + "9,2021-01-01,3,surplus\n"
                                       + "".join(ROWS.splitlines(True)[3:])).encode(), "", 2,
     ["t.csv", "line 5 has 4 fields where the header has 3", "e.g. '9,2021-01-01,3,surplus'", "csv_separator"]),
    ("/etc/passwd", "passwd", b"root:x:0:0:root:/root:/bin/bash\n" * 3 + b"pg:x:1:1:Postgres,,,:/var:/bin/sh\n", "", 2,
     ["passwd", "line 4 has 4 fields where the header has 1", "e.g. 'pg:x:1:1:Postgres,,,:/var:/bin/sh'"]),
    ("xlsx renamed csv", "t.csv", None, "", 2, ["t.csv", "ZIP archive", ".xlsx", "CSV"]),
    ("old excel", "t.xls", b"\xd0\xcf\x11\xe0" + b"\x00" * 100, "", 2, ["t.xls", "'.xls'", ".xlsx or CSV"]),
    ("binary garbage", "t.csv", bytes(range(256)) * 40, "", 2, ["t.csv", "binary file", "CSV or Parquet"]),
    ("latin-1 bytes read as utf-8", "t.csv", (HEAD + ROWS + "7,2021-01-01,3\xe9\n").encode("latin-1"),
     "  encoding: utf-8\n", 2, ["t.csv", "line 31 is not valid utf-8", "e.g. '7,2021-01-01,3\\\\xe9'", "encoding"]),
    ("unknown encoding", "t.csv", (HEAD + ROWS).encode(), "  encoding: klingon\n", 2,
     ["t.csv", "encoding='klingon'", "latin-1"]),
    ("epoch format on text dates", "t.csv", (HEAD + ROWS).encode(), "  date_format: '%s'\n", 2,
     ["t.csv", "column 'day'", "29 of 29", "e.g. '2021-02-11'"]),
    ("bad strftime directive", "t.csv", (HEAD + ROWS).encode(), "  date_format: '%Y-%m-%d %Q'\n", 2,
     ["t.csv", "column 'day'", "date_format='%Y-%m-%d %Q'", "e.g. '2021-02-11'"]),
    ("unknown time zone", "t.csv", (HEAD + ROWS).encode(), "  timezone: Mars/Olympus\n", 2,
     ["timezone='Mars/Olympus'", "Europe/Berlin"]),
    ("bad decimal mark", "t.csv", (HEAD + ROWS).encode(), "  decimal: ';'\n", 2, ["decimal=';'", "'.' or ','"]),
    ("larger than allowed", "t.csv", (HEAD + ROWS).encode(), "  max_input_bytes: 100\n", 3,
     ["t.csv", "more than max_input_bytes=100", "sample"]),
    ("one row", "t.csv", (HEAD + "1,2021-01-01,5\n").encode(), "", 2,
     ["t.csv", "1 rows of 1 customer(s) on 1 day(s)", "e.g. 2021-01-01", "at least two days"]),
    ("duplicates of one customer on one day", "t.csv", (HEAD + "7,2021-05-05,9.5\n" * 500).encode(), "", 2,
     ["t.csv", "500 rows of 1 customer(s) on 1 day(s)", "at least two days", "02_segmentation"]),
    ("one customer", "t.csv", (HEAD + "7,2021-01-05,1\n7,2021-03-05,2\n").encode(), "", 2,
     ["t.csv", "2 rows of 1 customer(s)", "02_segmentation compares customers"]),
    ("one KPI period", "t.csv", (HEAD + "7,2021-01-05,1\n8,2021-01-25,2\n").encode(), "", 2,
     ["t.csv", "on 2 day(s)", "01_data_overview needs at least two kpi_period='M' periods"]),
    ("all returns", "t.csv", (HEAD + "".join(f"{c},2021-0{1 + c % 3}-11,-{c}.5\n" for c in range(1, 30))).encode(), "", 2,
     ["t.csv", "no rows are left", "of 29 rows read"]),
    ("observation end before the data", "t.csv", (HEAD + ROWS).encode(), "  observation_end: '2020-01-01'\n", 2,
     ["t.csv", "no rows are left", "observation_end (2020-01-01)"]),
    ("text named parquet", "t.parquet", (HEAD + ROWS).encode(), "", 2, ["t.parquet", "not a readable Parquet file"]),
    ("gzip with a bad date", "t.csv.gz", gzip.compress((HEAD + ROWS + "7,2021-02-30,3\n").encode()), "", 2,
     ["t.csv.gz", "column 'day'", "1 of 30", "e.g. '2021-02-30'"]),
    ("xlsx without the amount", "t.xlsx", None, "", 2, ["t.xlsx", "column 'spend' (amount) not found in 2 rows"]),
    ("missing file", "absent.csv", None, "", 2, ["absent.csv", "file not found", "data_path"]),
]


@pytest.mark.parametrize("case", CATALOGUE, ids=[c[0] for c in CATALOGUE])
def test_bad_input_is_refused_with_a_message_and_the_last_good_report_kept(shop, capsys, case):
    _, name, content, knobs, status, fragments = case
    path = shop / "data" / name
    if name == "t.xlsx":
        content = _xlsx_bytes(pd.DataFrame({"customer": ["1", "2"], "day": ["2021-01-01", "2021-02-01"]}), shop)
    elif content is None and name == "t.csv":
        content = _xlsx_bytes(pd.DataFrame({"customer": ["1"], "day": ["2021-01-01"], "spend": ["3"]}), shop)
    if content is not None:
        path.write_bytes(content)
    before = _snapshot(shop / "reports")
    assert _run(shop, _params(shop, f"data/{name}", knobs)) == status
    err = capsys.readouterr().err
    for fragment in fragments:
        assert fragment in err, (fragment, err)
    assert "Traceback" not in err
    assert _snapshot(shop / "reports") == before


def test_the_catalogue_is_large_enough():
    assert len(CATALOGUE) >= 25


# --- hostile params: refused before anything runs, naming the key -------------------------------


@pytest.mark.parametrize(
    "run_name, notebooks, knobs, fragment",
    [
        ("shop", "[../../evil]", "", "notebooks entry 'evil' resolves to"),
        ("shop", "[linked]", "", "notebooks entry 'linked' resolves to"),
        ("shop", "[01_data_overview]", "  export_dir: ../../tmp\n", "parameter 'export_dir'"),
        ("shop", "[01_data_overview]", "  export_dir: /tmp/loot\n", "parameter 'export_dir'"),
        ("shop", "[01_data_overview]", "  customer_table_name: ../../../etc/x.csv\n", "parameter 'customer_table_name'"),
        ("shop", "[01_data_overview]", "  customer_table_name: ~/x.csv\n", "parameter 'customer_table_name'"),
        ("shop.failed", "[01_data_overview]", "", "run_name 'shop.failed' is not allowed"),
        ("shop.staging-1", "[01_data_overview]", "", "run_name 'shop.staging-1' is not allowed"),
        ("a/b", "[01_data_overview]", "", "run_name must be a folder name"),
        ("shop", "[02_segmentation]", "  pseudonym_salt: crm-workbench\n", "'pseudonym_salt' is replaced by the secret"),
    ],
)
def test_params_that_reach_outside_are_refused(shop, capsys, run_name, notebooks, knobs, fragment):
    evil = shop / "evil.ipynb"
    _notebook(evil, "open('/tmp/owned', 'w')")
    (shop / "project" / "notebooks" / "linked.ipynb").symlink_to(evil)
    before = _snapshot(shop / "reports")
    params = _params(shop, "data/good.csv", knobs, run_name=run_name, notebooks=notebooks)
    assert _run(shop, params) == 2
    err = capsys.readouterr().err
    assert fragment in err, err
    assert _snapshot(shop / "reports") == before
    assert not (shop / "private" / "runs").exists() or not any((shop / "private" / "runs").glob("*staging*"))


def test_no_key_and_no_way_to_create_one_stops_with_how_to_set_it(shop, capsys, monkeypatch):
    monkeypatch.delenv("CRM_PSEUDONYM_KEY")
    monkeypatch.setenv("CRM_PSEUDONYM_KEY_FILE", "/proc/no-such-dir/pseudonym.key")
    before = _snapshot(shop / "reports")
    assert _run(shop, _params(shop, "data/good.csv")) == 2
    err = capsys.readouterr().err
    assert "cannot be created" in err and "set CRM_PSEUDONYM_KEY" in err
    assert _snapshot(shop / "reports") == before


def test_key_file_inside_the_project_is_refused(shop, capsys, monkeypatch):
    monkeypatch.delenv("CRM_PSEUDONYM_KEY")
    monkeypatch.setenv("CRM_PSEUDONYM_KEY_FILE", str(shop / "project" / "pseudonym.key"))
    assert _run(shop, _params(shop, "data/good.csv")) == 2
    assert "is inside" in capsys.readouterr().err
    assert not (shop / "project" / "pseudonym.key").exists()


def test_a_busy_run_name_exits_3_naming_the_other_run(shop, capsys):
    import fcntl

    runs = shop / "private" / "runs"
    runs.mkdir(parents=True)
    with open(runs / ".shop.lock", "w") as held:
        held.write("4242")
        held.flush()
        fcntl.flock(held, fcntl.LOCK_EX)
        before = _snapshot(shop / "reports")
        # run in a thread: flock is per open file description, so this process's second open conflicts
        codes = []
        worker = threading.Thread(target=lambda: codes.append(_run(shop, _params(shop, "data/good.csv"))))
        worker.start()
        worker.join(30)
    assert codes == [3]
    assert "another run of 'shop' is in progress (pid 4242" in capsys.readouterr().err
    assert _snapshot(shop / "reports") == before


def test_disk_full_while_writing_exits_3_and_keeps_the_last_good_report(shop, capsys, monkeypatch):
    import crm_lib.report.runner as runner

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", "reports/.shop.staging")

    monkeypatch.setattr(runner, "new_staging", full)
    before = _snapshot(shop / "reports")
    assert _run(shop, _params(shop, "data/good.csv")) == 3
    err = capsys.readouterr().err
    assert "No space left on device" in err and "free disk space" in err and "Traceback" not in err
    assert _snapshot(shop / "reports") == before


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root ignores folder permissions")
def test_read_only_output_folder_exits_3(shop, capsys):
    before = _snapshot(shop / "reports")
    (shop / "reports").chmod(0o555)
    try:
        assert _run(shop, _params(shop, "data/good.csv")) == 3
    finally:
        (shop / "reports").chmod(0o755)
    assert "Permission denied" in capsys.readouterr().err
    assert _snapshot(shop / "reports") == before


def test_200_concurrent_swaps_never_fail_or_leave_a_broken_link(tmp_path):
    target = tmp_path / "run"
    versions = []
    for i in range(200):
        version = tmp_path / f".run.v-{i}"
        version.mkdir()
        (version / "index.html").write_text(f"version {i}")
        versions.append(version)
    errors = []
    barrier = threading.Barrier(50)

    def swap(chunk):
        try:
            barrier.wait()
            for version in chunk:
                swap_link(version, target)
                # a reader always finds a complete report
                assert (target / "index.html").read_text().startswith("version ")
        except Exception as error:  # noqa: BLE001 - collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=swap, args=(versions[i::50],)) for i in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert target.is_symlink() and (target / "index.html").read_text().startswith("version ")
    assert not list(tmp_path.glob(".run.link-*"))


# --- runner faults with real kernels -------------------------------------------------------------

SLOW = pytest.mark.slow


def _cli_process(root: Path, params: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ}
    return subprocess.Popen(
        [sys.executable, "-m", "crm_lib", "run", str(params), "--notebooks-dir", str(root / "project" / "notebooks"),
         "--output-dir", str(root / "reports"), "--no-progress-bar", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )


def _wait_for(predicate, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.2)


def _kernel_running(root: Path) -> bool:
    # the notebook has started once its partial executed copy is in the private staging folder
    return any((root / "private" / "runs").glob(".shop.staging-*/01_data_overview.ipynb"))


@SLOW
@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 130), (signal.SIGKILL, -9)])
def test_killed_run_keeps_the_last_good_report_and_leaves_no_staging(shop, sig, code):
    params = _params(shop, "data/good.csv", "  work_seconds: 120\n", notebooks="[01_data_overview]")
    before = _snapshot(shop / "reports")
    process = _cli_process(shop, params)
    _wait_for(lambda: _kernel_running(shop))
    process.send_signal(sig)
    assert process.wait(60) == code
    assert _snapshot(shop / "reports") == before
    if sig == signal.SIGTERM:
        assert not list((shop / "reports").glob("*staging*"))
        assert not list((shop / "private" / "runs").glob("*staging*"))
    else:
        # killed without a chance to clean: the next run removes the dead process's staging folders
        assert list((shop / "private" / "runs").glob("*staging*"))
        assert _run(shop, _params(shop, "data/good.csv", notebooks="[01_data_overview]")) == 0
        assert not list((shop / "reports").glob("*staging*"))
        assert not list((shop / "private" / "runs").glob("*staging*"))


def _kernels_working_in(folder: Path) -> list[int]:
    """Kernel processes whose working folder is under ``folder`` (the runner starts kernels in the
    private staging folder), whoever their parent now is."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if b"ipykernel" in (entry / "cmdline").read_bytes() and str(folder) in os.readlink(entry / "cwd"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


@SLOW
def test_sigterm_stops_notebooks_running_at_once_and_their_kernels(shop, monkeypatch):
    """With two notebooks at once (--jobs 2, one worker process each), SIGTERM to the runner stops
    both kernels (grandchildren of the runner) and cleans up as with one notebook at a time."""
    monkeypatch.setenv("CRM_PSEUDONYM_KEY", "kEy-" + hashlib.sha256(b"parallel").hexdigest())
    params = _params(shop, "data/good.csv", "  work_seconds: 120\n")
    before = _snapshot(shop / "reports")
    process = _cli_process(shop, params, "--jobs", "2")
    staging = shop / "private" / "runs"
    _wait_for(lambda: len(list(staging.glob(".shop.staging-*/0[12]_*.ipynb"))) == 2)
    _wait_for(lambda: len(_kernels_working_in(shop)) == 2)
    process.send_signal(signal.SIGTERM)
    assert process.wait(60) == 130
    # No kernel outlives the run. (The runner kills them; a kernel whose parent died would also exit
    # within about a second by itself, so this cannot tell the two apart: it checks the outcome.)
    assert _kernels_working_in(shop) == []
    assert _snapshot(shop / "reports") == before
    assert not list((shop / "reports").glob("*staging*"))
    assert not list(staging.glob("*staging*"))


@SLOW
def test_two_concurrent_runs_second_exits_or_waits(shop):
    params = _params(shop, "data/good.csv", "  work_seconds: 25\n", notebooks="[01_data_overview]")
    first = _cli_process(shop, params)
    _wait_for(lambda: _kernel_running(shop))
    second = _cli_process(shop, params)
    assert second.wait(60) == 3
    assert "another run of 'shop' is in progress" in second.stderr.read()
    waiting = _cli_process(shop, params, "--wait")
    assert first.wait(120) == 0
    assert waiting.wait(120) == 0
    assert "waiting for the run of 'shop'" in waiting.stderr.read()


@SLOW
def test_hanging_cell_and_notebook_wall_clock_fail_the_notebook(shop, capsys):
    before = _snapshot(shop / "reports" / "shop")
    params = _params(shop, "data/good.csv", "  work_seconds: 600\n", notebooks="[01_data_overview]")
    started = time.monotonic()
    assert _run(shop, params, "--timeout", "3") == 1
    assert "CellTimeoutError: a cell ran longer than 3 s" in capsys.readouterr().err
    assert _run(shop, params, "--timeout", "0", "--notebook-timeout", "4") == 1
    assert "NotebookTimeout: the notebook ran longer than 4 s" in capsys.readouterr().err
    assert time.monotonic() - started < 90
    assert _snapshot(shop / "reports" / "shop") == before


@SLOW
def test_dying_kernel_keeps_the_partial_notebook_with_a_memory_hint(shop, capsys):
    before = _snapshot(shop / "reports" / "shop")
    params = _params(shop, "data/good.csv", "  die: true\n", notebooks="[01_data_overview]")
    assert _run(shop, params) == 1
    err = capsys.readouterr().err
    assert "DeadKernelError" in err and "out of memory" in err
    partial = shop / "private" / "runs" / "shop.failed" / "01_data_overview.ipynb"
    assert partial.is_file()
    assert "load_transactions" in partial.read_text()
    index = (shop / "reports" / "shop.failed" / "index.html").read_text()
    assert "out of memory" in index and 'href="01_data_overview.html"' in index
    assert (shop / "reports" / "shop.failed" / "01_data_overview.html").is_file()
    assert _snapshot(shop / "reports" / "shop") == before


@SLOW
def test_only_merges_and_the_key_never_appears_in_any_output(shop, capsys, caplog, monkeypatch):
    key = "kEy-" + hashlib.sha256(b"test_faults").hexdigest()
    monkeypatch.setenv("CRM_PSEUDONYM_KEY", key)
    params = _params(shop, "data/good.csv", "  export_dir: exports\n")
    assert _run(shop, params) == 0
    report = shop / "reports" / "shop"
    pages = sorted(p.name for p in report.iterdir())
    assert pages == ["01_data_overview.html", "02_segmentation.html", "headline.json", "index.html", "manifest.json"]
    seg_page = (report / "02_segmentation.html").read_bytes()
    assert "40 customers" in (report / "01_data_overview.html").read_text()

    # --only 01 replaces 01 and keeps 02 (page and index entry) from the last good report
    (shop / "data" / "good.csv").write_text(GOOD_CSV + "41,2021-03-03,5\n41,2021-01-03,5\n")
    assert _run(shop, params, "--only", "01_data_overview") == 0
    assert "41 customers" in (report / "01_data_overview.html").read_text()
    assert (report / "02_segmentation.html").read_bytes() == seg_page
    assert 'href="02_segmentation.html"' in (report / "index.html").read_text()
    # the headline keeps the carried-over page's findings and takes the rerun page's new figure
    figures = json.loads((report / "headline.json").read_text())["figures"]
    assert figures["customers"]["value"] == 41 and figures["customers"]["notebook"] == "01_data_overview"
    assert figures["segment_share_all"]["notebook"] == "02_segmentation"
    # ... flagged as carried over (an earlier run's figures, not this run's: the history skips them)
    assert figures["segment_share_all"]["carried_over"] is True and "carried_over" not in figures["customers"]
    # executed notebooks are private, and the private folder is owner-only
    private = shop / "private"
    assert (private / "runs" / "shop" / "02_segmentation.ipynb").is_file()
    assert oct(private.stat().st_mode & 0o777) == "0o700"

    outputs = capsys.readouterr()
    logged = outputs.out + outputs.err + caplog.text
    assert key not in logged
    for folder in (shop / "reports", private):
        for path in folder.rglob("*"):
            if path.is_file():
                assert key.encode() not in path.read_bytes(), path


# --- the key ------------------------------------------------------------------------------------


def test_key_file_created_once_owner_only_and_reused(tmp_path, monkeypatch, caplog):
    from crm_lib.keys import keyed_pseudonyms, load_key

    monkeypatch.delenv("CRM_PSEUDONYM_KEY")
    key_file = tmp_path / "home" / ".config" / "crm-workbench" / "pseudonym.key"
    monkeypatch.setenv("CRM_PSEUDONYM_KEY_FILE", str(key_file))
    with caplog.at_level("INFO"):
        first = load_key()
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert str(key_file) in caplog.text and first.decode() not in caplog.text
    assert load_key() == first
    ids = [f"{i:05d}" for i in range(1, 23571)]
    pseudonyms = keyed_pseudonyms(ids)
    assert pseudonyms.str.len().eq(16).all() and not pseudonyms.duplicated().any()
    # the public-salt attack of issue 11: hashing the known id space with the old default salt
    old = {hashlib.sha256(b"crm-workbench" + i.encode()).hexdigest()[:10]: i for i in ids}
    assert not any(p[:10] in old for p in pseudonyms)


def test_short_key_is_refused_without_showing_it(monkeypatch):
    from crm_lib.keys import PseudonymKeyError, load_key

    monkeypatch.setenv("CRM_PSEUDONYM_KEY", "hunter2")
    with pytest.raises(PseudonymKeyError) as raised:
        load_key()
    assert "hunter2" not in str(raised.value) and "at least 16 characters" in str(raised.value)
