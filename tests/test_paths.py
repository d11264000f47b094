"""One project-folder rule and one private-folder rule (crm_lib.paths), and the run-context cache on it."""
from __future__ import annotations

import pickle
import threading
from pathlib import Path

import pandas as pd
import pytest

from crm_lib import cli, context, export, paths
from crm_lib.context import _read_cache, _write_cache, session

TINY_CSV = "customer_id,date,amount\n1,2021-01-04,10\n1,2021-02-01,12\n2,2021-01-10,5\n2,2021-03-30,8\n3,2021-03-01,4\n"
PARAMS = ("run_name: tiny\nnotebooks: [01_data_overview]\nparameters:\n  data_path: ../data/tiny.csv\n"
          "  column_map: {customer_id: customer_id, date: date, amount: amount}\n"
          "  csv_separator: ','\n  date_format: '%Y-%m-%d'\n")


@pytest.fixture
def project(tmp_path):
    """A project as `crm-workbench` expects it: notebooks/, params/, data/ (no pyproject.toml)."""
    root = tmp_path / "shop"
    for folder in ("notebooks", "params", "data"):
        (root / folder).mkdir(parents=True)
    (root / "data" / "tiny.csv").write_text(TINY_CSV)
    (root / "params" / "tiny.yaml").write_text(PARAMS)
    return root


def test_console_script_notebooks_and_exports_find_the_same_project(project, monkeypatch):
    run_dir = project / ".crm_private" / "runs" / "tiny"
    run_dir.mkdir(parents=True)
    for where in (project, project / "notebooks", run_dir):  # shell, Lab kernel, runner's kernel
        monkeypatch.chdir(where)
        assert paths.project_root() == project
        assert context.project_root() == export.project_root() == project  # the old names, one rule
    monkeypatch.chdir(project.parent)  # cron: elsewhere; the params file decides
    assert cli.find_project(project / "params" / "tiny.yaml") == project
    assert paths.project_root(project / "params") == project
    assert cli.find_project(project / "params" / "tiny.yaml", explicit=project / "notebooks") == project / "notebooks"


def test_outside_any_project_the_installed_checkout_is_the_project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    checkout = Path(paths.__file__).resolve().parents[1]
    expected = checkout if (checkout / "notebooks").is_dir() and (checkout / "pyproject.toml").is_file() else tmp_path
    assert paths.project_root() == expected.resolve()


def _cache_dir(project: Path) -> Path:
    return session(project / "params" / "tiny.yaml").cache_dir


def test_a_scheduled_run_and_lab_share_one_cache_folder(project, monkeypatch):
    monkeypatch.delenv(paths.PRIVATE_ROOT_ENV, raising=False)  # conftest's throwaway folder: not here
    # JupyterLab: the kernel works in notebooks/, no private-folder variables.
    monkeypatch.chdir(project / "notebooks")
    monkeypatch.delenv(paths.PRIVATE_DIR_ENV, raising=False)
    lab = _cache_dir(project)
    # The runner: the kernel works in its run's private folder, which CRM_PRIVATE_DIR names.
    run_dir = project / ".crm_private" / "runs" / "tiny.staging"
    run_dir.mkdir(parents=True)
    monkeypatch.chdir(run_dir)
    monkeypatch.setenv(paths.PRIVATE_DIR_ENV, str(run_dir))
    scheduled = _cache_dir(project)
    monkeypatch.setenv(paths.PRIVATE_ROOT_ENV, str(project / ".crm_private"))  # as run_report sets it too
    assert lab == scheduled == _cache_dir(project)
    assert lab.parent == project / ".crm_private" / "cache"
    # ... while real-id files of the run still go to the run's own folder.
    assert export.private_dir() == run_dir


def test_cache_follows_crm_private_root(project, tmp_path, monkeypatch):
    monkeypatch.setenv(paths.PRIVATE_ROOT_ENV, str(tmp_path / "elsewhere"))
    assert _cache_dir(project).parent == (tmp_path / "elsewhere" / "cache").resolve()


def test_a_half_written_temporary_folder_is_ignored(project, monkeypatch):
    ctx = session(project / "params" / "tiny.yaml")
    # A writer killed mid-way leaves its temporary folder with a truncated pickle behind.
    crashed = ctx.cache_dir / ".tmp-summary-crashed"
    crashed.mkdir(parents=True)
    (crashed / "summary.pkl").write_bytes(pickle.dumps(pd.DataFrame({"x": range(1000)}))[:100])
    summary = ctx.summary
    assert summary["frequency"].to_dict() == {"1": 1.0, "2": 1.0, "3": 0.0}  # 2 purchases -> 1 repeat
    again = session(project / "params" / "tiny.yaml")
    assert again.cache_dir == ctx.cache_dir
    pd.testing.assert_frame_equal(again.summary, summary)
    # the finished write left no temporary folder of its own
    assert sorted(p.name for p in ctx.cache_dir.iterdir() if p.name.startswith(".tmp-")) == [crashed.name]


def test_a_truncated_cache_file_is_recomputed(tmp_path):
    path = tmp_path / "summary.pkl"
    path.write_bytes(pickle.dumps(list(range(1000)))[:50])
    assert _read_cache(path) is None
    _write_cache(path, list(range(1000)))
    assert _read_cache(path) == list(range(1000))


def test_readers_never_see_a_partly_written_cache_file(tmp_path):
    path = tmp_path / "key" / "log.pkl"
    values = [bytes([i]) * 2_000_000 for i in range(4)]  # large enough that a plain write takes a while
    _write_cache(path, values[0])
    assert oct(path.parent.stat().st_mode & 0o777) == "0o700"  # a cached log holds real ids
    problems: list[str] = []
    done = threading.Event()

    def write(value: bytes) -> None:
        for _ in range(15):
            _write_cache(path, value)

    def read() -> None:
        while not done.is_set():
            try:
                with open(path, "rb") as handle:
                    value = pickle.load(handle)
            except Exception as error:  # noqa: BLE001 - any failure is what the test looks for
                problems.append(repr(error))
                return
            if value not in values:
                problems.append("a mixed object")
                return

    writers = [threading.Thread(target=write, args=(v,)) for v in values]
    reader = threading.Thread(target=read)
    reader.start()
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join()
    done.set()
    reader.join()
    assert problems == []
    assert [p.name for p in path.parent.iterdir()] == ["log.pkl"]
