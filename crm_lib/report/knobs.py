"""The knob registry: one name, one meaning, one default, a type and a valid range per knob.

A knob is a variable of a notebook's ``parameters`` cell. Its default and its one-line
help are read from that cell (the value and the ``#`` comment), so the notebooks stay
the one place where a knob is declared; this module adds what a comment cannot check:
the type, the valid range or choices, and the renames of old names.

Two notebooks that declare the same knob must give it the same default and the same
help text (:func:`registry` raises otherwise; ``tests/test_knobs.py`` runs it on every
notebook), so a knob cannot mean two things in two reports.

Horizons are stated in calendar units (``clv_horizon_months``, ``forecast_horizon_weeks``,
``horizon_days``) and converted into model periods by :func:`periods_in_weeks`, so no
knob is a period count that silently changes meaning with ``time_unit``.
"""
from __future__ import annotations

import ast
import io
import json
import logging
import tokenize
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from crm_lib.exceptions import ParamsError

logger = logging.getLogger(__name__)

#: Old knob name -> its one name now. A params file using an old name still works, with a
#: deprecation message.
RENAMED = {
    "random_seed": "seed",
    "significance_level": "alpha",
    "model": "value_model",
    "discount_rate": "discount_rate_per_period",
}
#: Old knobs whose unit changed: they cannot be renamed silently (value_model's old
#: ``horizon_periods`` of 04 counted time_unit periods; 06's contract periods keep the name).
REPLACED: dict[str, str] = {}
#: Keys of a params file that are not knobs: a notebook given them was given a whole
#: params file instead of its knobs.
RUN_LEVEL_KEYS = ("run_name", "title", "notebooks", "parameters")

PERIOD_CHOICES = ("W", "M", "Q", "Y")
MODEL_CHOICES = ("bg_nbd", "mbg_nbd", "pareto_nbd")


@dataclass(frozen=True)
class Rule:
    """Type and valid range of a knob (``None`` always allowed when ``nullable``)."""

    kind: str  # "str", "int", "float", "bool", "date", "list", "dict", "any"
    choices: tuple | None = None
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    nullable: bool = False

    def describe(self) -> str:
        if self.choices is not None:
            text = "one of " + ", ".join(repr(c) for c in self.choices)
        elif self.low is not None or self.high is not None:
            left = "(" if self.low_open else "["
            right = ")" if self.high_open else "]"
            text = f"{self.kind} in {left}{'' if self.low is None else self.low}, " \
                   f"{'' if self.high is None else self.high}{right}"
        else:
            text = "any value" if self.kind == "any" else self.kind
        return text + (" or None" if self.nullable and self.kind != "any" else "")


def _r(kind: str, **kwargs: Any) -> Rule:
    return Rule(kind, **kwargs)


_PROBABILITY = dict(low=0, high=1, low_open=True, high_open=True)

#: Types and ranges. A knob not listed here is checked against the type of its default.
RULES: dict[str, Rule] = {
    "params_file": _r("str", nullable=True),
    "data_path": _r("str"),
    "column_map": _r("dict"),
    "csv_separator": _r("str", nullable=True),
    "date_format": _r("str", nullable=True),
    "observation_end": _r("date", nullable=True),
    "calibration_end": _r("date", nullable=True),
    "duplicate_rows": _r("str", choices=("keep", "drop")),
    "negative_amounts": _r("str", choices=("drop", "keep")),
    "zero_amounts": _r("str", choices=("keep", "drop")),
    "currency": _r("str"),
    "kpi_period": _r("str", choices=PERIOD_CHOICES),
    "cohort_period": _r("str", choices=PERIOD_CHOICES),
    "retention_period": _r("str", choices=PERIOD_CHOICES),
    "contract_period": _r("str", choices=("Y", "Q", "M")),
    "time_unit": _r("str", choices=("W", "D", "h")),
    "value_model": _r("str", choices=("auto",) + MODEL_CHOICES, nullable=True),
    "p_alive_model": _r("str", choices=("value_model", *MODEL_CHOICES), nullable=True),
    "lifetime_model": _r("str", choices=MODEL_CHOICES),
    "alternative_model": _r("str", choices=MODEL_CHOICES, nullable=True),
    "candidate_models": _r("list"),
    "penalizer_coef": _r("float", low=0),
    "forecast_horizon_weeks": _r("int", low=1),
    "clv_horizon_months": _r("int", low=1),
    "horizon_days": _r("int", low=1),
    "horizon_periods": _r("int", low=1),
    "projection_periods": _r("int", low=1),
    "discount_rate_annual": _r("float", low=0, high=1),
    "discount_rate_per_period": _r("float", low=0, high=1),
    "gross_margin": _r("float", low=0, high=1, low_open=True),
    "cost_per_order": _r("float", low=0, nullable=True),
    "margin_per_period": _r("float", low=0),
    "equity_draws": _r("int", low=10),
    "seed": _r("int", low=0),
    "alpha": _r("float", low=0, high=0.5, low_open=True),
    "lapse_days": _r("int", low=1),
    "rfm_bins": _r("int", low=2, high=10),
    "rfm_monetary": _r("str", choices=("revenue", "average_order_value")),
    "portfolio_value_split_quantile": _r("float", **_PROBABILITY),
    "portfolio_loyalty_split": _r("float", low=0, high=1),
    "p_alive_threshold": _r("float", **_PROBABILITY),
    "duration_quantile": _r("float", **_PROBABILITY),
    "profit_quantile": _r("float", **_PROBABILITY),
    "n_bootstrap": _r("int", low=0),
    "crossing_rule": _r("str", choices=("last", "first")),
    "event_time": _r("str", choices=("last_purchase", "lapse_recognised")),
    "h2_panel_end": _r("str", choices=("lifetime_end", "last_purchase")),
    "contracts_path": _r("str", nullable=True),
    "rfm_segment_rules": _r("list", nullable=True),
    "duration_split": _r("float", low=0, nullable=True),
    "profit_split": _r("float", nullable=True),
    "example_customer": _r("any", nullable=True),
}


@dataclass(frozen=True)
class Knob:
    """One knob: name, default, one-line help, its rule and the notebooks that declare it."""

    name: str
    default: Any
    help: str
    rule: Rule
    notebooks: tuple[str, ...]

    def check(self, value: Any, where: str) -> Any:
        """``value`` if it is valid for this knob; raise :class:`ParamsError` naming ``where`` otherwise."""
        return check_value(self.name, value, self.rule, where)


def _inferred_rule(default: Any) -> Rule:
    if default is None:
        return Rule("any", nullable=True)
    for kind, types in (("bool", bool), ("int", int), ("float", float), ("str", str), ("list", list),
                        ("dict", dict)):
        if isinstance(default, types):
            return Rule(kind)
    return Rule("any")


def check_value(name: str, value: Any, rule: Rule, where: str) -> Any:
    """Check one knob value against its rule; the message names the file, knob, value and range."""
    def fail(problem: str) -> ParamsError:
        return ParamsError(f"{where}: knob '{name}' = {value!r} {problem}; expected {rule.describe()}. "
                           f"`crm-workbench knobs PARAMS` shows every knob's help.")

    if value is None:
        if rule.nullable or rule.kind == "any":
            return value
        raise fail("may not be empty")
    kind = rule.kind
    if kind == "date":
        from crm_lib.relative_dates import is_relative_date

        if is_relative_date(value):  # latest, -26w, -6m, -90d (crm_lib.relative_dates)
            return value
        try:
            parsed = pd.Timestamp(str(value))
        except (TypeError, ValueError):
            parsed = pd.NaT
        if pd.isna(parsed):
            raise fail("is not a date")
        return value
    if kind == "int" and (isinstance(value, bool) or not (isinstance(value, int) or
                                                           (isinstance(value, float) and value.is_integer()))):
        raise fail("is not a whole number")
    if kind == "float" and (isinstance(value, bool) or not isinstance(value, (int, float))):
        raise fail("is not a number")
    if kind in ("str", "list", "dict", "bool"):
        expected = {"str": str, "list": list, "dict": dict, "bool": bool}[kind]
        if not isinstance(value, expected):
            raise fail(f"is a {type(value).__name__}, not a {kind}")
    if rule.choices is not None and value not in rule.choices:
        raise fail("is not one of the choices")
    if rule.low is not None and (value < rule.low or (rule.low_open and value == rule.low)):
        raise fail("is below the valid range")
    if rule.high is not None and (value > rule.high or (rule.high_open and value == rule.high)):
        raise fail("is above the valid range")
    return value


def parameters_cell(notebook: Path) -> list[tuple[str, Any, str]]:
    """(name, default, help) of every assignment in a notebook's ``parameters`` cell.

    The help is the ``#`` comment on the assignment's line.

    Raises
    ------
    ParamsError
        No cell tagged ``parameters``, or a line that is not a literal assignment.
    """
    # Plain JSON, not nbformat: the notebook kernels call this on every start, and nbformat's import
    # (jsonschema with its format checkers) costs about 2 s; only the tagged cell's source is needed.
    try:
        nb = json.loads(Path(notebook).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ParamsError(f"{Path(notebook).name}: cannot read the notebook ({error}); restore it from git.") from None
    cells = [c for c in nb.get("cells", []) if "parameters" in c.get("metadata", {}).get("tags", [])]
    if not cells:
        raise ParamsError(f"{notebook.name}: no cell tagged 'parameters'; tag the first code cell 'parameters'.")
    source = cells[0].get("source", "")
    source = "".join(source) if isinstance(source, list) else source
    comments = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            comments[token.start[0]] = token.string.lstrip("#").strip()
    out = []
    for node in ast.parse(source).body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            raise ParamsError(f"{notebook.name}: the parameters cell may hold only 'knob = value  # help' lines "
                              f"(line {node.lineno}).")
        try:
            default = ast.literal_eval(node.value)
        except ValueError:
            raise ParamsError(f"{notebook.name}: knob '{node.targets[0].id}' needs a literal default "
                              f"(line {node.lineno}).") from None
        out.append((node.targets[0].id, default, comments.get(node.end_lineno, "")))
    return out


def registry(notebooks_dir: str | Path = "notebooks") -> dict[str, Knob]:
    """Every knob of the notebooks in ``notebooks_dir``, checked for one default and one meaning.

    Raises
    ------
    ParamsError
        A knob declared with two defaults or two help texts, a knob without help, or an
        old (renamed) name still declared by a notebook.
    """
    seen: dict[str, list[tuple[str, Any, str]]] = {}
    for notebook in sorted(Path(notebooks_dir).glob("*.ipynb")):
        for name, default, text in parameters_cell(notebook):
            seen.setdefault(name, []).append((notebook.stem, default, text))
    knobs = {}
    for name, uses in seen.items():
        where = ", ".join(nb for nb, _, _ in uses)
        if name in RENAMED or name in REPLACED:
            raise ParamsError(f"knob '{name}' ({where}) was renamed to "
                              f"'{RENAMED.get(name) or REPLACED[name]}'; use the new name in the notebook.")
        defaults = {repr(d) for _, d, _ in uses}
        if len(defaults) > 1:
            raise ParamsError(f"knob '{name}' has {len(defaults)} defaults: "
                              + "; ".join(f"{nb}: {d!r}" for nb, d, _ in uses) + ". Give it one default.")
        texts = {t for _, _, t in uses}
        if len(texts) > 1 or not next(iter(texts)):
            raise ParamsError(f"knob '{name}' has {'two meanings' if len(texts) > 1 else 'no help'}: "
                              + "; ".join(f"{nb}: {t!r}" for nb, _, t in uses)
                              + ". Give it one help comment everywhere (or rename one of them).")
        default = uses[0][1]
        knobs[name] = Knob(name, default, uses[0][2], RULES.get(name) or _inferred_rule(default),
                           tuple(nb for nb, _, _ in uses))
    return knobs


def rename_old_knobs(parameters: dict[str, Any], where: str) -> dict[str, Any]:
    """``parameters`` with old knob names replaced by their one name (a deprecation message each).

    Raises
    ------
    ParamsError
        An old name whose unit changed, or both the old and the new name set.
    """
    out = {}
    for key, value in parameters.items():
        if key in REPLACED:
            raise ParamsError(f"{where}: knob '{key}' was replaced by '{REPLACED[key]}' (a calendar unit); "
                              "set the new knob instead.")
        new = RENAMED.get(key)
        if new is None:
            out[key] = value
            continue
        if new in parameters:
            raise ParamsError(f"{where}: both '{key}' (old name) and '{new}' are set; keep only '{new}'.")
        logger.warning("%s: knob '%s' is deprecated; it is now called '%s' (renamed for this run)", where, key, new)
        out[new] = value
    return out


def check_values(parameters: dict[str, Any], knobs: dict[str, Knob], where: str) -> None:
    """Check the type and range of every knob set in ``parameters``."""
    for key, value in parameters.items():
        if key in knobs:
            knobs[key].check(value, where)


#: Length of one time unit in weeks.
WEEKS_PER_UNIT = {"W": 1.0, "D": 1 / 7, "h": 1 / (7 * 24)}


def periods_in_weeks(weeks: float, time_unit: str) -> float:
    """A horizon of ``weeks`` calendar weeks as a number of ``time_unit`` periods.

    Examples
    --------
    >>> periods_in_weeks(52, "W"), periods_in_weeks(52, "D")
    (52.0, 364.0)
    """
    if time_unit not in WEEKS_PER_UNIT:
        raise ParamsError(f"time_unit={time_unit!r} is not supported; use one of {', '.join(WEEKS_PER_UNIT)}.")
    return float(round(weeks / WEEKS_PER_UNIT[time_unit], 9))


def knobs_help(knobs: dict[str, Knob], values: dict[str, Any] | None = None) -> str:
    """The help of every knob as text: name, default, valid values, notebooks, help (and this run's value)."""
    lines = []
    for name in sorted(knobs):
        knob = knobs[name]
        mark = f"  <- this run: {values[name]!r}" if values and name in values else ""
        lines.append(f"{name} = {knob.default!r}{mark}")
        lines.append(f"    {knob.help}")
        lines.append(f"    valid: {knob.rule.describe()}; notebooks: {', '.join(knob.notebooks)}")
    return "\n".join(lines)
