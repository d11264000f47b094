"""Key findings: the 3-5 computed sentences a report opens with, and the run's headline data.

A notebook builds a list of :class:`Finding` (each a sentence with its number, unit,
interval and the id of the heading that shows it) and calls :func:`show_key_findings`
right after it loads the data. That shows a "Key findings" box at the top of the page
and, when the runner set ``CRM_FINDINGS_DIR``, writes ``$CRM_FINDINGS_DIR/<notebook>.json``
so the run index can show the run's headline figures and link to the sections.

The same module shows library notes (a warning that changes or qualifies a number) as a
visible "Note" callout in words: :func:`show_notes`.

Everything here is a pure function of its input: no clock, no random ids, sorted JSON,
so two renders of the same data are byte-identical.

>>> f = Finding("customers", "23,570 customers bought 69,659 times.", 23570, "customers", anchor="1.-The-log")
>>> print(findings_json([f], "01_data_overview").splitlines()[0])
{
"""
from __future__ import annotations

import html
import json
import logging
import math
import re
import numbers
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence
from urllib.parse import quote, unquote

__all__ = [
    "FINDINGS_DIR_ENV",
    "Finding",
    "heading_anchor",
    "findings_json",
    "findings_html",
    "show_key_findings",
    "notes_html",
    "show_notes",
    "LibraryNotes",
    "library_notes",
    "spend_fit_notes",
    "setting_text",
    "settings_table",
    "show_settings",
    "key_slug",
]

#: The environment variable the runner sets to the run's private ``findings/`` folder.
FINDINGS_DIR_ENV = "CRM_FINDINGS_DIR"

_BOX_STYLE = ("border:1px solid #9db7d5;border-left:6px solid #2b6cb0;border-radius:4px;background:#f4f8fc;"
              "padding:0.6rem 1rem;margin:0.5rem 0 1rem 0;max-width:100%;box-sizing:border-box;"
              "overflow-wrap:anywhere;line-height:1.45")
_NOTE_STYLE = ("border:1px solid #e0c97a;border-left:6px solid #b7791f;border-radius:4px;background:#fffaf0;"
               "padding:0.5rem 1rem;margin:0.5rem 0 1rem 0;max-width:100%;box-sizing:border-box;"
               "overflow-wrap:anywhere;line-height:1.45")


@dataclass(frozen=True)
class Finding:
    """One key finding of a report: the sentence shown and the figure behind it.

    Parameters
    ----------
    key : str
        Stable id of the figure across runs (``"customers"``, ``"customer_equity"``).
    text : str
        The sentence shown, with its computed numbers.
    value : float, str or None
        The figure itself (a verdict in words for a hypothesis: ``"supported"``).
    unit : str
        ``"customers"``, ``"transactions"``, ``"USD"``, ``"share"``, ``"weeks"``, ``"verdict"``, ...
    lower, upper : float, optional
        The interval around ``value`` (for customer equity: the parameter-uncertainty interval).
    anchor : str
        HTML id of the heading under which the page shows the figure, without ``#``
        (see :func:`heading_anchor`).

    Raises
    ------
    ValueError
        For an empty key or text.
    """

    key: str
    text: str
    value: float | str | None
    unit: str
    lower: float | None = None
    upper: float | None = None
    anchor: str = ""

    def __post_init__(self) -> None:
        if not str(self.key).strip() or not str(self.text).strip():
            raise ValueError(f"a Finding needs a key and a sentence; got key={self.key!r}, text={self.text!r}")
        for name in ("value", "lower", "upper"):
            object.__setattr__(self, name, _plain_number(getattr(self, name)))


def _plain_number(value: Any) -> Any:
    """numpy scalars to Python numbers, NaN to None (JSON has no NaN); other values unchanged."""
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        return None if math.isnan(value) else value
    return value


# Headings seen by heading_anchor, so a finding's link can name its section exactly (hyphens included).
_HEADINGS: dict[str, str] = {}


def heading_anchor(heading: str) -> str:
    """The HTML id nbconvert gives a markdown heading (spaces to ``-``, URL-quoted).

    The rule of ``nbconvert.filters.strings.add_anchor`` (nbconvert 7), applied to the
    heading's text without markdown emphasis.

    >>> heading_anchor("3. Who is still a customer?"), heading_anchor("Value (USD)")
    ('3.-Who-is-still-a-customer?', 'Value-(USD)')
    """
    text = " ".join(heading.replace("*", "").replace("`", "").split())
    anchor = quote(text.replace(" ", "-"), safe="?/:@!$&'()*+,;=")
    _HEADINGS[anchor] = text
    return anchor


def findings_json(findings: Sequence[Finding], notebook: str) -> str:
    """The findings file's text: ``{"notebook": name, "findings": [asdict(f), ...]}``, sorted keys."""
    document = {"notebook": notebook, "findings": [asdict(finding) for finding in findings]}
    return json.dumps(document, sort_keys=True, indent=1, allow_nan=False) + "\n"


def _section_link(anchor: str) -> str:
    if not anchor:
        return ""
    title = _HEADINGS.get(anchor) or unquote(anchor).replace("-", " ")
    return (f' <a href="#{html.escape(anchor, quote=True)}">'
            f"(see &ldquo;{html.escape(title)}&rdquo;)</a>")


def findings_html(findings: Sequence[Finding]) -> str:
    """The "Key findings" box: one list item per sentence, each linking to its section.

    Findings that share a sentence (one sentence giving several figures) show it once.

    >>> findings_html([Finding("x", "a < b & c", 1, "share")]).count("a &lt; b &amp; c")
    1
    """
    shown: dict[str, Finding] = {}
    for finding in findings:  # several figures may share one sentence (the share of every segment)
        shown.setdefault(finding.text, finding)
    items = "".join(f"<li>{html.escape(f.text)}{_section_link(f.anchor)}</li>" for f in shown.values())
    return (f'<section class="crm-findings" aria-label="Key findings" style="{_BOX_STYLE}">'
            '<p style="margin:0 0 0.3rem 0;font-weight:600;font-size:1.1em">Key findings</p>'
            f'<ul style="margin:0;padding-left:1.2rem">{items}</ul></section>')


def show_key_findings(findings: Sequence[Finding], notebook: str) -> None:
    """Show the "Key findings" box and, under ``CRM_FINDINGS_DIR``, write ``<notebook>.json``.

    Parameters
    ----------
    findings : sequence of Finding
        The report's 3-5 findings, in reading order.
    notebook : str
        The notebook's name without ``.ipynb`` (``"01_data_overview"``).

    Raises
    ------
    ValueError
        When two findings share a key (the run's headline is keyed by it).
    """
    from IPython.display import HTML, display

    keys = [finding.key for finding in findings]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise ValueError(f"{notebook}: finding keys must be unique; repeated: {', '.join(repeated)}")
    folder = os.environ.get(FINDINGS_DIR_ENV)
    if folder:
        path = Path(folder) / f"{notebook}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(findings_json(findings, notebook), encoding="utf-8")
    display(HTML(findings_html(findings)))


def notes_html(notes: Iterable[str]) -> str:
    """A "Note" callout with one paragraph per note (empty string when there is none).

    >>> notes_html([]) == "", "Note" in notes_html(["1 of 2 buyers <= 0"])
    (True, True)
    """
    paragraphs = "".join(f'<p style="margin:0.2rem 0">{html.escape(note)}</p>' for note in notes)
    if not paragraphs:
        return ""
    return (f'<aside class="crm-note" role="note" style="{_NOTE_STYLE}">'
            f'<p style="margin:0;font-weight:600">Note</p>{paragraphs}</aside>')


def show_notes(notes: Iterable[str] | None = None) -> None:
    """Display :func:`notes_html` (nothing when there are no notes).

    Without ``notes``, shows (and clears) the warnings :func:`library_notes` collected.
    """
    from IPython.display import HTML, display

    if notes is None:
        notes = library_notes().pop()
    text = notes_html(list(notes))
    if text:
        display(HTML(text))


# Library warnings that a page states from the fitted object instead (so the page does not depend on
# whether the object was fitted in this notebook or read from the run context's cache).
_STATED_ELSEWHERE = (re.compile(r"^Gamma-Gamma: \d+ of \d+ repeat buyers with a mean spend <= 0 are left out"),)


class LibraryNotes(logging.Handler):
    """Collects the warnings of ``crm_lib``'s loggers so a report shows them as a Note, not on stderr."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:  # noqa: D102 - logging.Handler's hook
        message = record.getMessage()
        if not any(pattern.match(message) for pattern in _STATED_ELSEWHERE):
            self.messages.append(message[:1].upper() + message[1:])

    def pop(self) -> list[str]:
        """The collected messages, in order, and forget them."""
        messages, self.messages = self.messages, []
        return messages


def library_notes() -> LibraryNotes:
    """The collector on the ``crm_lib`` logger (installed on first call; one per process).

    With it in place, a library warning no longer reaches Python's last-resort handler,
    which would print it as a stderr block on the page; :func:`show_notes` shows it instead.
    """
    root = logging.getLogger("crm_lib")
    for handler in root.handlers:
        if isinstance(handler, LibraryNotes):
            return handler
    handler = LibraryNotes()
    root.addHandler(handler)
    return handler


def spend_fit_notes(spend_model: Any, time_unit: str = "W") -> list[str]:
    """A note in words when the spend model (Gamma-Gamma) left repeat buyers out of its fit.

    ``time_unit`` is the models' unit: a repeat purchase is one in a later period of it.

    >>> class Fit: n_excluded_, n_customers_ = 1.0, 11349.0
    >>> spend_fit_notes(Fit())
    ['1 of the 11,350 customers with a repeat purchase in a later week spent nothing on their repeat purchases (free orders only), so the spend model (Gamma-Gamma) leaves that buyer out of its fit; their predicted spend still weighs in their own mean of 0.']
    """
    from crm_lib.format import number, repeat_buyers

    excluded = float(getattr(spend_model, "n_excluded_", 0) or 0)
    if not excluded:
        return []
    total = excluded + float(spend_model.n_customers_)
    who = "that buyer" if excluded == 1 else "these buyers"
    return [f"{number(excluded)} of the {repeat_buyers(total, time_unit)} spent nothing on their repeat purchases "
            f"(free orders only), so the spend model (Gamma-Gamma) leaves {who} out of its fit; their predicted spend "
            "still weighs in their own mean of 0."]


def setting_text(value: Any, max_chars: int = 90) -> str:
    """A setting's value for people: ``None`` as "not set", lists and mappings spelled out, long ones cut.

    >>> setting_text(None), setting_text("M"), setting_text([0.3, 0.7]), setting_text({"amount": "dollar_value"})
    ('not set', 'M', '0.3, 0.7', 'amount: dollar_value')
    >>> setting_text([{"name": "champions"}, {"name": "loyal"}])
    '2 rules: champions, loyal'
    """
    if value is None:
        return "not set"
    if isinstance(value, dict):
        text = ", ".join(f"{key}: {setting_text(item)}" for key, item in value.items())
    elif isinstance(value, (list, tuple)) and value and all(isinstance(item, dict) and "name" in item for item in value):
        text = f"{len(value)} rules: " + ", ".join(str(item["name"]) for item in value)
    elif isinstance(value, (list, tuple)):
        text = ", ".join(setting_text(item) for item in value)
    elif value == "":
        text = "(empty)"
    else:
        text = str(value)
    return text if len(text) <= max_chars else text[: max_chars - 1] + "…"


def settings_table(namespace: dict[str, Any], notebook: str | None = None, names: Sequence[str] | None = None,
                   help_texts: dict[str, str] | None = None):
    """A table of settings (name as in the params file, value, meaning), for a closing section.

    Parameters
    ----------
    namespace : dict
        Where the values are (the notebook's ``globals()``).
    notebook : str, optional
        List every knob this notebook declares (in the order of its parameters cell).
    names : sequence of str, optional
        Or list these settings, in order. Names missing from ``namespace`` are skipped.
    help_texts : dict, optional
        Meaning of each setting (default: the knob registry's one-line help).
    """
    import pandas as pd

    knobs: dict[str, Any] = {}
    if help_texts is None or names is None:
        from crm_lib.context import project_root
        from crm_lib.report.knobs import registry

        folder = project_root() / "notebooks"
        knobs = registry(folder) if folder.is_dir() else {}
    if help_texts is None:
        help_texts = {name: knob.help for name, knob in knobs.items()}
    if names is None:
        names = [name for name, knob in knobs.items() if notebook in knob.notebooks and name != "params_file"]
    rows = [(name, setting_text(namespace[name]), help_texts.get(name, "")) for name in names if name in namespace]
    return pd.DataFrame(rows, columns=["setting", "value", "meaning"]).set_index("setting")


def show_settings(namespace: dict[str, Any], notebook: str | None = None, names: Sequence[str] | None = None,
                  help_texts: dict[str, str] | None = None) -> None:
    """Display :func:`settings_table` (words left-aligned, no code beyond the setting names)."""
    from crm_lib.format import show_table

    show_table(settings_table(namespace, notebook, names, help_texts), formatted=True, label_index=False)


def key_slug(name: str) -> str:
    """A name as part of a finding key: lower case, runs of other characters as ``_``.

    >>> key_slug("Potential loyalists"), key_slug("cannot lose!")
    ('potential_loyalists', 'cannot_lose')
    """
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
