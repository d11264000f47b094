"""Notebooks are committed clean: no outputs, no execution counts, no logic, by construction.

The git clean filter (tools/notebook_filter.py, routed by .gitattributes and installed by
`make install`) must turn what JupyterLab saves back into the committed file byte for byte;
.gitignore must cover every place a file with real customer ids can appear.
"""
from __future__ import annotations

import copy
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
FILTER = REPO / "tools" / "notebook_filter.py"

_spec = importlib.util.spec_from_file_location("notebook_filter", FILTER)
notebook_filter = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(notebook_filter)


def _git(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=cwd, check=check, capture_output=True, text=True)


def _in_git_checkout() -> bool:
    if shutil.which("git") is None:
        return False
    result = _git("rev-parse", "--show-toplevel", cwd=REPO, check=False)
    return result.returncode == 0 and Path(result.stdout.strip()).resolve() == REPO


def _filter_installed() -> bool:
    return _in_git_checkout() and _git("config", "filter.notebook-clean.clean", cwd=REPO, check=False).returncode == 0


def _committed(notebook: Path) -> str:
    """The notebook as committed (HEAD), or the file itself where git has none."""
    shown = _git("show", f"HEAD:notebooks/{notebook.name}", cwd=REPO, check=False) if _in_git_checkout() else None
    return shown.stdout if shown is not None and shown.returncode == 0 else notebook.read_text(encoding="utf-8")


def _as_lab_saves_it(path: Path) -> nbformat.NotebookNode:
    """The notebook after Run All and a save in JupyterLab 4 (what jupyter_server writes)."""
    nb = nbformat.read(path, as_version=4)
    for number, cell in enumerate((c for c in nb.cells if c.cell_type == "code"), start=1):
        cell.execution_count = number
        cell.outputs = [
            nbformat.v4.new_output("stream", name="stderr", text="a notice\n"),
            nbformat.v4.new_output("display_data", data={"text/markdown": "customer equity is **1 USD**",
                                                         "image/png": "iVBORw0KGgo=\n"}),
        ]
        cell.metadata.update({"scrolled": True, "execution": {"iopub.status.idle": "2026-11-25T21:00:00.000Z"}})
    nb.cells[-1].metadata["jupyter"] = {"source_hidden": True}
    nb.metadata.kernelspec = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
    nb.metadata.language_info = {
        "codemirror_mode": {"name": "ipython", "version": 3}, "file_extension": ".py", "mimetype": "text/x-python",
        "name": "python", "nbconvert_exporter": "python", "pygments_lexer": "ipython3", "version": "3.11.2",
    }
    return nb


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebooks_are_committed_clean(notebook):
    # What a commit would store: the file itself, or what the installed git filter makes of it.
    nb = nbformat.read(notebook, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    has_outputs = any(c.outputs or c.execution_count for c in code)
    assert not has_outputs or _filter_installed(), (
        f"{notebook.name} has outputs and git's notebook filter is not installed here: run `make notebook-filter` "
        "(commits then strip them) or `make clean-notebooks`"
    )
    assert not any("def " in c.source.split("\n", 1)[0] or "\ndef " in c.source for c in code), "logic belongs in crm_lib"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_filter_turns_a_lab_save_back_into_the_committed_file(notebook):
    committed = _committed(notebook)
    saved = nbformat.writes(_as_lab_saves_it(notebook)) + "\n"
    assert saved != committed
    cleaned = notebook_filter.dumps(notebook_filter.clean_notebook(nbformat.reads(saved, as_version=4)))
    assert cleaned == committed
    # A committed notebook is a fixed point: opening and saving it without running changes nothing.
    assert notebook_filter.dumps(notebook_filter.clean_notebook(nbformat.reads(committed, as_version=4))) == committed


def test_filter_keeps_what_is_content():
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("a = 1\nb = 2", metadata={"tags": ["parameters"], "scrolled": True}),
        nbformat.v4.new_markdown_cell("![x](attachment:x.png)", attachments={"x.png": {"image/png": "iVBORw0KGgo="}}),
        nbformat.v4.new_raw_cell("raw"),
    ]
    nb.metadata["widgets"] = {"state": {}}
    cleaned = notebook_filter.clean_notebook(copy.deepcopy(nbformat.from_dict(nb)))
    assert [c["id"] for c in cleaned["cells"]] == [c["id"] for c in nb.cells]
    assert cleaned["cells"][0]["metadata"] == {"tags": ["parameters"]}
    assert cleaned["cells"][0]["source"] == ["a = 1\n", "b = 2"]
    assert cleaned["cells"][1]["attachments"] == nb.cells[1].attachments
    assert "widgets" not in cleaned["metadata"]
    with pytest.raises(ValueError, match="not an nbformat-4 notebook"):
        notebook_filter.clean_notebook({"nbformat": 3, "worksheets": []})


@pytest.mark.skipif(shutil.which("git") is None or shutil.which("make") is None, reason="needs git and make")
def test_git_commits_a_notebook_run_in_lab_without_outputs(tmp_path):
    # A throwaway repository with the project's .gitattributes, filter and Makefile recipe.
    for name in (".gitattributes", "Makefile", "tools/notebook_filter.py", "notebooks/04_lifetime_value.ipynb"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / name, tmp_path / name)
    _git("init", "-q", cwd=tmp_path)
    installed = subprocess.run(["make", "-s", "notebook-filter"], cwd=tmp_path, capture_output=True, text=True)
    assert installed.returncode == 0 and "installed" in installed.stdout, installed.stdout + installed.stderr
    _git("add", "-A", cwd=tmp_path)
    _git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "start", cwd=tmp_path)
    notebook = tmp_path / "notebooks" / "04_lifetime_value.ipynb"
    nbformat.write(_as_lab_saves_it(notebook), notebook)
    (tmp_path / "notebooks" / "new.ipynb").write_text(notebook.read_text())

    assert _git("diff", "--quiet", cwd=tmp_path, check=False).returncode == 0  # git compares the stripped form
    _git("add", "-A", cwd=tmp_path)
    staged = _git("diff", "--cached", "--name-only", cwd=tmp_path).stdout.split()
    assert staged == ["notebooks/new.ipynb"]
    stored = nbformat.reads(_git("show", ":notebooks/new.ipynb", cwd=tmp_path).stdout, as_version=4)
    assert not any(c.get("outputs") or c.get("execution_count") for c in stored.cells)
    assert "outputs" in notebook.read_text() and '"execution_count": 1' in notebook.read_text()  # the working copy keeps them
    # A required filter needs a smudge side too: without one, checking out a commit whose notebooks differ fails
    # ("smudge filter notebook-clean failed").
    _git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "new notebook", cwd=tmp_path)
    _git("checkout", "-q", "-f", "HEAD~1", cwd=tmp_path)
    assert not (tmp_path / "notebooks" / "new.ipynb").exists()
    _git("checkout", "-q", "-", cwd=tmp_path)
    assert (tmp_path / "notebooks" / "new.ipynb").exists()


@pytest.mark.parametrize(
    "path",
    [
        "notebooks/customer_value.csv",
        "notebooks/customer_actions.parquet",
        "notebooks/exports/customer_actions.csv",
        "customer_value.csv",
        ".crm_private/runs/cdnow/customer_value.csv",
        ".crm_private/cache/abc/summary.pkl",
        "data/transactions.csv",
        "params/data/transactions.csv",
        "params/my_shop_transactions.parquet",
        "reports/cdnow/customer_value.csv",
        "notebooks/.ipynb_checkpoints/04_lifetime_value-checkpoint.ipynb",
    ],
)
def test_real_id_files_are_git_ignored(path, tmp_path):
    # Checked against the project's .gitignore in a scratch repository: in the checkout itself a run may have left
    # reports/<run> or .crm_private/runs/<run> as symbolic links, and git refuses paths "beyond a symbolic link".
    shutil.copy2(REPO / ".gitignore", tmp_path / ".gitignore")
    _git("init", "-q", cwd=tmp_path)
    assert _git("check-ignore", "-q", "--no-index", path, cwd=tmp_path, check=False).returncode == 0, f"{path} is not ignored"


def test_committed_files_are_not_ignored():
    if not _in_git_checkout():
        pytest.skip("not a git checkout")
    tracked = _git("ls-files", cwd=REPO).stdout.split()
    ignored = _git("check-ignore", "--no-index", *tracked, cwd=REPO, check=False).stdout.split()
    assert ignored == []


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_clean_notebooks_strips_in_place(tmp_path):
    for name in ("Makefile", "tools/notebook_filter.py", "notebooks/04_lifetime_value.ipynb"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / name, tmp_path / name)
    notebook = tmp_path / "notebooks" / "04_lifetime_value.ipynb"
    nbformat.write(_as_lab_saves_it(notebook), notebook)
    result = subprocess.run(["make", "-s", "clean-notebooks", f"PYTHON={sys.executable}"], cwd=tmp_path,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert notebook.read_text(encoding="utf-8") == _committed(REPO / "notebooks" / "04_lifetime_value.ipynb")
