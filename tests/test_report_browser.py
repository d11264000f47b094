"""Every page of a small CDNOW run in a real browser at phone (390 px) and desktop (1400 px) width.

The runner renders notebooks 01 and 04 of params/cdnow.yaml (the CDNOW log shipped with
lifetimes); headless Chromium (Debian's chromium + chromium-driver, driven by Selenium; .ci/run
installs them, nothing is downloaded) opens each report page, the run index and
reports/index.html, and checks what a reviewer would see:

* the page does not scroll sideways (``scrollWidth`` and ``innerWidth`` <= the screen width + 1); wide tables scroll in
  their own box;
* no console error; no request other than ``file:``, ``data:`` or the browser's own ``chrome:`` (Chrome's performance log);
* every image has an alt text, and never nbconvert's "No description has been provided";
* each report page has a table of contents whose links point at headings of the page;
* every figure of a report has a numbered caption under it ("Figure 3. ..."), and at phone width
  keeps its own size up to 640 px (its box scrolls sideways) instead of shrinking to 6 px text.

Screenshots are saved in the test's tmp folder (``<page>-390.png``, ``<page>-1400.png``).
"""
from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from crm_lib.report.chrome import DEFAULT_ALT
from crm_lib.report.render import render_html
from crm_lib.report.runner import notebook_title, run_report

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
NOTEBOOKS = ["01_data_overview", "04_lifetime_value"]
WIDTHS = (390, 1400)
#: URL schemes that never leave the machine: the page's files, embedded figures, and the browser's
#: own built-in resources (headless Chromium loads a few chrome:// scripts for its tooltip UI).
LOCAL_SCHEMES = ("file:", "data:", "about:", "chrome:")
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--window-size=1400,1000", "--allow-file-access-from-files",
)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("reports")
    mp = pytest.MonkeyPatch()
    mp.setenv("MPLBACKEND", "Agg")
    try:
        result = run_report(REPO / "params" / "cdnow.yaml", output_dir=out, notebooks_dir=REPO / "notebooks",
                            only=NOTEBOOKS)
    finally:
        mp.undo()
    assert result.published, result.summary()
    return result


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail("chromium and chromedriver are needed: .ci/run installs Debian's chromium chromium-driver")
    profile = tmp_path_factory.mktemp("chromium")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile / 'profile'}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    browser = webdriver.Chrome(service=Service(str(CHROMEDRIVER), log_output=str(profile / "chromedriver.log")),
                               options=options)
    yield browser
    browser.quit()


def _pages(result) -> list[Path]:
    return [*sorted(result.report_dir.glob("*.html")), result.report_dir.parent / "index.html"]


def _requested_urls(performance_log: list[dict]) -> list[str]:
    urls = []
    for entry in performance_log:
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def test_every_page_reads_at_phone_and_desktop_width(small_run, driver, tmp_path):
    pages = _pages(small_run)
    assert {p.name for p in pages} >= {"01_data_overview.html", "04_lifetime_value.html", "index.html"}
    assert len(pages) == 4
    problems = []
    for width in WIDTHS:
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 600})
        for page in pages:
            label = f"{page.parent.name}/{page.name} at {width} px"
            driver.get_log("browser"), driver.get_log("performance")  # drop entries of the previous page
            driver.get(page.as_uri())
            overflow = driver.execute_script(
                "return [document.documentElement.scrollWidth, window.innerWidth]")
            # A phone browser widens its layout viewport (innerWidth) to fit content that is too wide,
            # so both must stay at the screen's width.
            if max(overflow) > width + 1:
                problems.append(f"{label}: page is {overflow[0]} px wide, layout viewport {overflow[1]} px")
            errors = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
            if errors:
                problems.append(f"{label}: console errors {errors[:3]}")
            remote = [u for u in _requested_urls(driver.get_log("performance"))
                      if not u.startswith(LOCAL_SCHEMES)]
            if remote:
                problems.append(f"{label}: network requests {remote[:3]}")
            alts = driver.execute_script("return Array.from(document.images, i => i.getAttribute('alt'))")
            bad = [a for a in alts if not a or not a.strip() or a == DEFAULT_ALT]
            if bad:
                problems.append(f"{label}: {len(bad)} of {len(alts)} images without alt text")
            if page.parent == small_run.report_dir and page.name != "index.html":
                if not alts:
                    problems.append(f"{label}: no figure at all")
                targets = driver.execute_script(
                    "return Array.from(document.querySelectorAll('nav.crm-toc a'),"
                    " a => !!document.getElementById(decodeURIComponent(a.hash.slice(1))))")
                if len(targets) < 2 or not all(targets):
                    problems.append(f"{label}: table of contents missing or broken ({targets})")
                figures = driver.execute_script(
                    "return Array.from(document.images, i => { const c = i.closest('figure')?.querySelector("
                    "'figcaption'); return [c ? c.textContent : '', i.getBoundingClientRect().width, i.naturalWidth]; })")
                uncaptioned = [c for c, _, _ in figures if not c.startswith("Figure ") or len(c) < 40]
                if uncaptioned:
                    problems.append(f"{label}: {len(uncaptioned)} of {len(figures)} figures without a caption")
                shrunk = [(shown, natural) for _, shown, natural in figures if shown < min(natural, 640) - 1]
                if shrunk:
                    problems.append(f"{label}: figures shrunk below legible size {shrunk[:3]}")
            driver.save_screenshot(str(tmp_path / f"{page.parent.name}-{page.stem}-{width}.png"))
    assert problems == []


def test_pages_link_to_each_other(small_run):
    first = (small_run.report_dir / "01_data_overview.html").read_text()
    second = (small_run.report_dir / "04_lifetime_value.html").read_text()
    assert 'rel="next" href="04_lifetime_value.html"' in first and 'rel="prev"' not in first
    assert 'rel="prev" href="01_data_overview.html"' in second and 'rel="next"' not in second
    runs = (small_run.report_dir.parent / "index.html").read_text()
    assert 'href="cdnow/index.html"' in runs and "1997-01-01 to 1998-06-30" in runs
    assert 'href="../index.html"' in (small_run.report_dir / "index.html").read_text()


def test_rerender_of_every_page_is_byte_identical(small_run):
    """Rendering the executed notebooks again (a new nbconvert pass, new chrome) changes no byte."""
    pages = [(f"{name}.html", notebook_title(nbformat.read(REPO / "notebooks" / f"{name}.ipynb", as_version=4),
                                            name)) for name in NOTEBOOKS]
    for name in NOTEBOOKS:
        nb = nbformat.read(small_run.private_dir / f"{name}.ipynb", as_version=4)
        again = render_html(nb, f"CDNOW customer analytics: {notebook_title(nb, name)}", pages=pages,
                            current=f"{name}.html")
        assert again == (small_run.report_dir / f"{name}.html").read_text(encoding="utf-8"), name
