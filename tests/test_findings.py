"""crm_lib.report.findings: the Key findings box and the per-notebook findings file."""
from __future__ import annotations

import doctest
import json
import re
from pathlib import Path

import nbformat
import numpy as np
import pytest

from crm_lib.report import findings as fnd
from crm_lib.report.findings import Finding, show_key_findings


def _findings():
    return [
        Finding("customers", "23,570 customers bought 69,659 times.", np.int64(23570), "customers",
                anchor="1.-The-transaction-log"),
        Finding("customer_equity", "Customer equity is 1.2 M USD (95% interval 1.1 M to 1.3 M).", np.float64(1.2e6),
                "USD", lower=1.1e6, upper=1.3e6, anchor="4.-Customer-equity"),
        Finding("loyalty_H1", "H1 <long-lived customers spend more> is not supported.", "not supported", "verdict"),
    ]


def test_doctests_pass():
    assert doctest.testmod(fnd).failed == 0


def test_no_file_without_the_variable(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(fnd.FINDINGS_DIR_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    show_key_findings(_findings(), "01_data_overview")
    assert list(tmp_path.rglob("*")) == []
    assert "HTML object" in capsys.readouterr().out  # outside a kernel IPython's display prints the object


def test_json_written_as_specified_and_deterministic(tmp_path, monkeypatch):
    folder = tmp_path / "private" / "findings"  # does not exist yet: show_key_findings creates it
    monkeypatch.setenv(fnd.FINDINGS_DIR_ENV, str(folder))
    show_key_findings(_findings(), "04_lifetime_value")
    first = (folder / "04_lifetime_value.json").read_bytes()
    show_key_findings(_findings(), "04_lifetime_value")
    assert (folder / "04_lifetime_value.json").read_bytes() == first
    document = json.loads(first)
    assert document["notebook"] == "04_lifetime_value"
    assert [f["key"] for f in document["findings"]] == ["customers", "customer_equity", "loyalty_H1"]
    equity = document["findings"][1]
    assert equity == {"key": "customer_equity", "text": "Customer equity is 1.2 M USD (95% interval 1.1 M to 1.3 M).",
                      "value": 1.2e6, "unit": "USD", "lower": 1.1e6, "upper": 1.3e6, "anchor": "4.-Customer-equity"}
    assert document["findings"][0]["value"] == 23570 and document["findings"][2]["lower"] is None
    # sort_keys=True, indent=1 as in the shared schema
    assert first.decode() == json.dumps(document, sort_keys=True, indent=1) + "\n"


def test_nan_becomes_null_not_invalid_json():
    text = fnd.findings_json([Finding("share_alive", "n/a", float("nan"), "share")], "03")
    assert json.loads(text)["findings"][0]["value"] is None and "NaN" not in text


def test_repeated_keys_and_empty_sentences_are_refused():
    with pytest.raises(ValueError, match="repeated: customers"):
        show_key_findings(_findings()[:1] * 2, "01_data_overview")
    with pytest.raises(ValueError, match="needs a key and a sentence"):
        Finding("customers", " ", 1, "customers")


def test_html_escapes_text_and_links_each_section():
    page = fnd.findings_html(_findings())
    assert "&lt;long-lived customers spend more&gt;" in page and "<long-lived" not in page
    assert page.count("<li>") == 3
    assert 'href="#1.-The-transaction-log"' in page and "(see &ldquo;4. Customer equity&rdquo;)" in page
    assert page == fnd.findings_html(_findings())  # no random ids


def test_heading_anchor_matches_nbconvert():
    from nbconvert.filters.strings import add_anchor

    for heading in ["3. Who is still a customer?", "Value (USD) & margin", "Key findings"]:
        rendered = add_anchor(f"<h2>{heading.replace('&', '&amp;')}</h2>")
        assert f'id="{fnd.heading_anchor(heading).replace("&", "&amp;")}"' in rendered


def test_note_callout_escapes_and_is_empty_without_notes():
    assert fnd.notes_html([]) == ""
    box = fnd.notes_html(["1 of 11,350 repeat buyers had a mean spend <= 0."])
    assert "&lt;= 0" in box and 'role="note"' in box


def test_library_warnings_are_collected_not_printed(capsys):
    import logging

    notes = fnd.library_notes()
    assert fnd.library_notes() is notes  # installed once
    notes.pop()
    logging.getLogger("crm_lib.survival").warning("cox: %d covariates dropped", 2)
    logging.getLogger("crm_lib.models.gamma_gamma").warning(
        "Gamma-Gamma: %d of %d repeat buyers with a mean spend <= 0 are left out of the fit", 1, 11350)
    assert capsys.readouterr().err == ""
    assert notes.pop() == ["Cox: 2 covariates dropped"] and notes.pop() == []  # the spend one is stated from the fit


def test_spend_fit_note_counts_in_words():
    class Fit:
        n_excluded_, n_customers_ = 3.0, 1997.0

    assert fnd.spend_fit_notes(Fit()) == [
        "3 of the 2,000 customers with a repeat purchase in a later week spent nothing on their repeat purchases "
        "(free orders only), so the spend model (Gamma-Gamma) leaves these buyers out of its fit; their predicted "
        "spend still weighs in their own mean of 0."]
    # The models' unit names what a repeat purchase is (the page's other repeat count is by day).
    assert fnd.spend_fit_notes(Fit(), time_unit="D")[0].startswith("3 of the 2,000 customers with a repeat purchase on a later day ")
    Fit.n_excluded_ = 0.0
    assert fnd.spend_fit_notes(Fit()) == []


def test_a_sentence_shared_by_several_figures_is_shown_once():
    text = "Champions are 10.0% of customers, new 20.0%."
    shared = [Finding("segment_share_champions", text, 0.1, "share"), Finding("segment_share_new", text, 0.2, "share")]
    assert fnd.findings_html(shared).count("<li>") == 1
    assert len(json.loads(fnd.findings_json(shared, "02"))["findings"]) == 2


NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("0*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_reports_open_with_findings_that_link_to_their_own_headings(path):
    nb = nbformat.read(path, as_version=4)
    headings = {line.lstrip("#").strip() for cell in nb.cells if cell.cell_type == "markdown"
                for line in cell.source.splitlines() if line.startswith("#")}
    code = [cell.source for cell in nb.cells if cell.cell_type == "code"]
    # The box comes right after the cell that opens the run context (the session), before any section.
    opening = next(i for i, source in enumerate(code) if "session(params_file" in source)
    assert "show_key_findings(" in code[opening + 1], path.name
    linked = {m for source in code for m in re.findall(r'heading_anchor\("([^"]+)"\)', source)}
    assert linked and linked <= headings, linked - headings
    assert f'"{path.stem}")' in code[opening + 1]  # the findings file is named after the notebook


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_setting_names_only_in_the_closing_section(path):
    from crm_lib.report.knobs import parameters_cell

    knobs = {name for name, _, _ in parameters_cell(path) if "_" in name}
    nb = nbformat.read(path, as_version=4)
    closing = max(i for i, cell in enumerate(nb.cells) if cell.source.startswith("## How this was computed"))
    assert closing >= len(nb.cells) - 2, "the settings section closes the report"
    for cell in nb.cells[:closing]:
        if cell.cell_type == "markdown":
            named = {k for k in knobs if re.search(rf"\b{k}\b", cell.source)}
            assert not named, (path.name, cell.get("id"), named)
