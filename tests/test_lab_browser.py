"""The researcher's path in a real browser: `make lab`, notebook 04, Run All, the report's numbers.

JupyterLab is started by the Makefile's `lab` recipe on a free port with a token, rooted at a
temporary copy of the project (notebooks, params, .gitignore, .gitattributes and the notebook
filter, in a fresh git repository with the filter installed), so the repository's notebooks are
never touched. Headless Chromium (Debian's chromium + chromium-driver, driven by Selenium; .ci/run
installs them, nothing is downloaded) opens notebook 04, runs all cells and saves it, as a
researcher (or Lab's autosave) would. Then:

* no cell shows an error;
* the customer-equity sentence in Lab equals the one of the report rendered by the runner from
  params/cdnow.yaml (each computed in its own private folder, so neither reads the other's cache);
* git would commit nothing (the saved notebook with its outputs strips back to the committed one);
* no file has appeared under notebooks/ (per-customer files belong in .crm_private/).

Screenshots are left in the test's tmp folder (lab_opened.png, lab_ran_all.png, lab_equity.png).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
NOTEBOOK = "04_lifetime_value.ipynb"
EQUITY_TEXT = "customer equity is"
COPIED = ("notebooks", "params", "tools", ".gitignore", ".gitattributes", "Makefile", "pyproject.toml")
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--window-size=1400,1000",
)
# Lab's user settings for the test: every cell stays in the page (no windowing), no news or update checks.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false", "checkForUpdates": False},
}


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _files_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and ".ipynb_checkpoints" not in p.parts}


def _plain(markdown: str) -> str:
    return " ".join(markdown.replace("**", "").replace("`", "").split())


class _Paragraphs(HTMLParser):
    """The text of every <p> of an HTML page, tags dropped."""

    def __init__(self) -> None:
        super().__init__()
        self.paragraphs: list[str] = []
        self._open = False

    def handle_starttag(self, tag, attrs):
        if tag == "p":
            self._open = True
            self.paragraphs.append("")

    def handle_endtag(self, tag):
        if tag == "p":
            self._open = False

    def handle_data(self, data):
        if self._open:
            self.paragraphs[-1] += data


def _equity_sentence_of_report(page: Path) -> str:
    """The customer-equity sentence as the reviewer reads it in the rendered HTML report."""
    parser = _Paragraphs()
    parser.feed(page.read_text(encoding="utf-8"))
    found = [_plain(p) for p in parser.paragraphs if EQUITY_TEXT in p]
    assert len(found) == 1, f"{page}: {len(found)} paragraphs state the customer equity"
    return found[0]


@pytest.fixture
def project(tmp_path):
    """A throwaway copy of the project in its own git repository, with the notebook filter installed."""
    root = tmp_path / "project"
    root.mkdir()
    for name in COPIED:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
        else:
            shutil.copy(source, root / name)
    _git("init", "-q", cwd=root)
    subprocess.run(["make", "-s", "notebook-filter"], cwd=root, check=True, capture_output=True)
    _git("add", "-A", cwd=root)
    _git("-c", "user.name=test", "-c", "user.email=test@example.org", "commit", "-qm", "copy", cwd=root)
    return root


def _start_lab(root: Path, tmp_path: Path, env: dict) -> tuple[subprocess.Popen, str]:
    """`make lab` of the copy, on a free port with a token; returns the process and the base URL."""
    port, token = _free_port(), "crm-lab-test-token"
    settings = tmp_path / "lab_settings"
    for name, values in LAB_SETTINGS.items():
        (settings / name).parent.mkdir(parents=True, exist_ok=True)
        (settings / name).write_text(json.dumps(values))
    env = dict(env, JUPYTERLAB_SETTINGS_DIR=str(settings), JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "lab_workspaces"),
               JUPYTER_CONFIG_DIR=str(tmp_path / "jupyter_config"), JUPYTER_RUNTIME_DIR=str(tmp_path / "jupyter_runtime"))
    lab_args = f"--no-browser --port={port} --ServerApp.ip=127.0.0.1 --IdentityProvider.token={token}"
    # -o install: the environment running this test is the one Lab uses (VENV); nothing is installed.
    command = ["make", "-s", "-o", "install", "lab", f"VENV={sys.prefix}", f"PYTHON={sys.executable}",
               f"LAB_ARGS={lab_args}"]
    log = open(tmp_path / "lab.log", "w")
    lab = subprocess.Popen(command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert lab.poll() is None, f"Lab stopped: {(tmp_path / 'lab.log').read_text()[-2000:]}"
        try:
            urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
            return lab, f"{base}|{token}"
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"Lab did not answer within 120 s: {(tmp_path / 'lab.log').read_text()[-2000:]}")


def _stop(lab: subprocess.Popen) -> None:
    if lab.poll() is None:
        os.killpg(lab.pid, signal.SIGTERM)  # the group of the make process started above: make, sh, jupyter
        try:
            lab.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(lab.pid, signal.SIGKILL)
            lab.wait()


def _kernel_states(base: str, token: str) -> list[str]:
    with urllib.request.urlopen(f"{base}/api/sessions?token={token}", timeout=5) as answer:
        return [s["kernel"]["execution_state"] for s in json.load(answer) if s["path"].endswith(NOTEBOOK)]


def _browser(tmp_path: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium_profile'}"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER), log_output=str(tmp_path / "chromedriver.log")),
                            options=options)


def _menu(driver, menu: str, *labels: str) -> None:
    """Click a menu of Lab's menu bar, then its item with one of these labels, as a person would."""
    from selenium.webdriver.common.by import By

    driver.find_element(By.XPATH, f"//li[contains(@class,'lm-MenuBar-item')][.//*[text()='{menu}']]").click()
    items = _wait_for(lambda: [i for i in driver.find_elements(By.CSS_SELECTOR, ".lm-Menu .lm-Menu-item")
                               if i.find_element(By.CSS_SELECTOR, ".lm-Menu-itemLabel").text in labels], 10,
                      f"menu item {labels} of {menu}")
    items[0].click()


def _wait_for(get, timeout: float, what: str):
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        value = get()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what} not within {timeout:.0f} s")


def _wait(predicate, timeout: float, what: str) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.5)
    raise AssertionError(f"{what} not within {timeout:.0f} s")


def test_notebook_04_in_lab_shows_the_reports_equity_and_leaves_git_clean(project, tmp_path):
    assert CHROMIUM.exists() and CHROMEDRIVER.exists(), (
        "needs Debian's chromium and chromium-driver: apt-get install --no-install-recommends chromium chromium-driver "
        "(.ci/run does it)"
    )
    from selenium.webdriver.common.by import By

    started = time.monotonic()
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")

    # The report, as the runner renders it from params/cdnow.yaml, with its own private folder
    # (so that neither side reads the other's cached models).
    report_private = str(tmp_path / "report_private")
    report_env = dict(env, CRM_PRIVATE_DIR=report_private, CRM_PRIVATE_ROOT=report_private)
    rendered = subprocess.run(
        [str(Path(sys.executable).parent / "crm-workbench"), "run", "params/cdnow.yaml", "--only", NOTEBOOK[:-6],
         "--output-dir", str(tmp_path / "reports"), "-q"],
        cwd=project, env=report_env, capture_output=True, text=True, timeout=600,
    )
    assert rendered.returncode == 0, f"the runner failed: {(rendered.stdout + rendered.stderr)[-3000:]}"
    report_sentence = _equity_sentence_of_report(tmp_path / "reports" / "cdnow" / f"{NOTEBOOK[:-6]}.html")
    assert re.search(r"customer equity is [\d,]+ [A-Z]{3}", report_sentence), report_sentence
    report_seconds = time.monotonic() - started

    # JupyterLab, with the private folder where the project keeps it (git-ignored).
    notebooks_before = _files_under(project / "notebooks")
    private = project / ".crm_private"
    lab, address = _start_lab(project, tmp_path, dict(env, CRM_PRIVATE_DIR=str(private), CRM_PRIVATE_ROOT=str(private)))
    base, token = address.split("|")
    driver = None
    try:
        driver = _browser(tmp_path)
        driver.get(f"{base}/lab/tree/notebooks/{NOTEBOOK}?token={token}")
        _wait(lambda: driver.find_elements(By.CSS_SELECTOR, ".jp-Notebook .jp-Cell"), 120, "the notebook in Lab")
        _wait(lambda: _kernel_states(base, token) == ["idle"], 120, "an idle kernel")
        driver.save_screenshot(str(tmp_path / "lab_opened.png"))
        n_code = len(driver.find_elements(By.CSS_SELECTOR, ".jp-Notebook .jp-CodeCell"))

        def all_ran() -> bool:
            prompts = [p.text for p in driver.find_elements(By.CSS_SELECTOR, ".jp-CodeCell .jp-InputPrompt")]
            return len(prompts) == n_code and all(re.fullmatch(r"\[\d+\]:", p) for p in prompts) \
                and _kernel_states(base, token) == ["idle"]

        _menu(driver, "Run", "Run All Cells")
        run_all_seconds = _wait(all_ran, 600, "Run All")
        driver.save_screenshot(str(tmp_path / "lab_ran_all.png"))

        errors = driver.find_elements(By.CSS_SELECTOR, "[data-mime-type='application/vnd.jupyter.error']")
        assert not errors, f"error output in Lab: {errors[0].text[:2000]}"
        equity = [e for e in driver.find_elements(By.CSS_SELECTOR, ".jp-OutputArea .jp-RenderedMarkdown")
                  if EQUITY_TEXT in e.text]
        assert len(equity) == 1
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", equity[0])
        driver.save_screenshot(str(tmp_path / "lab_equity.png"))
        lab_sentence = _plain(equity[0].text)

        saved_before = (project / "notebooks" / NOTEBOOK).stat().st_mtime_ns
        _menu(driver, "File", "Save Notebook", "Save")
        _wait(lambda: (project / "notebooks" / NOTEBOOK).stat().st_mtime_ns != saved_before, 60, "the save")
    finally:
        if driver is not None:
            driver.quit()
        _stop(lab)

    print(f"\nreport rendered in {report_seconds:.0f} s; Lab Run All {run_all_seconds:.1f} s; "
          f"whole test {time.monotonic() - started:.0f} s\nLab:    {lab_sentence}\nreport: {report_sentence}")
    assert lab_sentence == report_sentence

    saved = nbformat.read(project / "notebooks" / NOTEBOOK, as_version=4)
    outputs = [o for c in saved.cells if c.cell_type == "code" for o in c.outputs]
    assert outputs and not [o for o in outputs if o.output_type == "error"]

    # What git sees after the Lab session: a commit would store nothing new.
    status = _git("status", "--porcelain", "--ignored", cwd=project)
    (tmp_path / "git_status_after_lab.txt").write_text(status)
    print(f"git status --porcelain --ignored after the Lab session:\n{status}")
    assert subprocess.run(["git", "diff", "--quiet"], cwd=project).returncode == 0
    _git("add", "-A", cwd=project)
    assert _git("diff", "--cached", "--name-only", cwd=project) == ""
    assert _git("status", "--porcelain", cwd=project) == ""

    # Per-customer files (real ids) never land beside the notebook.
    new_files = _files_under(project / "notebooks") - notebooks_before
    assert not new_files, f"files written under notebooks/ by a Lab run: {sorted(new_files)}"
    assert list(private.rglob("customer_value.csv")), "the per-customer table is not in the private folder"
