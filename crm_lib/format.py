"""The one place that formats numbers for people: counts, decimals, percentages, money,
p-values, durations and plural-aware counts.

Every table and sentence of a report goes through these functions, so one quantity reads
the same on every page (``12.3%``, ``1,234``, ``< 0.001``). A missing value (None or
NaN) becomes ``missing`` (an empty cell by default) instead of ``"nan"``.

>>> number(1234.5), number(0.25, 2), percent(0.1234), p_value(0.0004), count(1, "repeat buyer")
('1,234', '0.25', '12.3%', '< 0.001', '1 repeat buyer')
"""
from __future__ import annotations

import html
import math
import re
from typing import Any, Iterable

import pandas as pd

__all__ = [
    "is_missing",
    "number",
    "percent",
    "currency",
    "p_value",
    "p_text",
    "days",
    "count",
    "repeat_buyers",
    "TIME_UNIT_WORDS",
    "plural",
    "yes_no",
    "column_label",
    "table_for_people",
    "table_html",
    "show_table",
    "LABELS",
    "label_value",
    "in_words",
]


def is_missing(value: Any) -> bool:
    """True for None, NaN and pandas' NA/NaT.

    >>> is_missing(float("nan")), is_missing(None), is_missing(0)
    (True, True, False)
    """
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def number(value: float | None, decimals: int = 0, *, signed: bool = False, missing: str = "") -> str:
    """``value`` with thousands separators and ``decimals`` fixed decimals.

    >>> number(1234567), number(-3.14159, 2), number(2.5, 1, signed=True), number(None)
    ('1,234,567', '-3.14', '+2.5', '')
    """
    if is_missing(value):
        return missing
    if isinstance(value, float) and math.isinf(value):
        return "∞" if value > 0 else "-∞"
    return format(value, f"{'+' if signed else ''},.{int(decimals)}f")


def percent(share: float | None, decimals: int = 1, *, signed: bool = False, missing: str = "") -> str:
    """A share (0.123) as a percentage (``"12.3%"``).

    >>> percent(0.5), percent(0.12345, 2), percent(-0.02, signed=True), percent(float("nan"), missing="n/a")
    ('50.0%', '12.35%', '-2.0%', 'n/a')
    """
    if is_missing(share):
        return missing
    return format(share, f"{'+' if signed else ''}.{int(decimals)}%")


def currency(amount: float | None, code: str = "USD", decimals: int = 0, *, missing: str = "") -> str:
    """An amount with thousands separators and the currency code after it.

    >>> currency(241047.3), currency(12.5, "EUR", 2)
    ('241,047 USD', '12.50 EUR')
    """
    if is_missing(amount):
        return missing
    return f"{number(amount, decimals)} {code}".rstrip()


def p_value(p: float | None, *, missing: str = "n/a") -> str:
    """A p-value for a table: three decimals, ``"< 0.001"`` below one in a thousand.

    The same rule as ``crm_lib.survival.format_p`` (which writes ``"<0.001"`` without the
    space) and the loyalty tables.

    >>> p_value(0.04213), p_value(0.00002), p_value(1.0), p_value(None)
    ('0.042', '< 0.001', '1.000', 'n/a')
    """
    if is_missing(p):
        return missing
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def p_text(p: float | None) -> str:
    """A p-value for a sentence: ``"p < 0.001"`` or ``"p = 0.042"`` (as ``crm_lib.survival.p_text``).

    >>> p_text(0.0001), p_text(0.042), p_text(float("nan"))
    ('p < 0.001', 'p = 0.042', 'p = n/a')
    """
    text = p_value(p)
    return f"p {text}" if text.startswith("<") else f"p = {text}"


def days(value: float | None, missing: str = "not reached") -> str:
    """A duration in days: ``"123 days"``; ``missing`` for NaN, ``"beyond the data"`` for inf.

    The rule of ``crm_lib.survival.format_days`` (a median that the curve never reaches is
    "not reached"; one past the last observed day is "beyond the data").

    >>> days(1234.4), days(float("nan")), days(float("inf"))
    ('1,234 days', 'not reached', 'beyond the data')
    """
    if is_missing(value):
        return missing
    if math.isinf(value):
        return "beyond the data"
    return f"{value:,.0f} days"


def plural(n: float, noun: str, plural_form: str | None = None) -> str:
    """``noun`` or its plural, whichever fits ``n`` (plural: ``noun + "s"`` unless given).

    >>> plural(1, "customer"), plural(0, "customer"), plural(2, "repeat buyer"), plural(3, "child", "children")
    ('customer', 'customers', 'repeat buyers', 'children')
    """
    return noun if n == 1 else (plural_form or noun + "s")


def count(n: float, noun: str, plural_form: str | None = None) -> str:
    """A count with thousands separators and the noun in the right number.

    >>> count(1, "repeat buyer"), count(2, "repeat buyer"), count(12345, "customer"), count(2, "day", "days")
    ('1 repeat buyer', '2 repeat buyers', '12,345 customers', '2 days')
    """
    return f"{number(n)} {plural(n, noun, plural_form)}"


#: The models' time units (``time_unit``) as one unit in words.
TIME_UNIT_WORDS = {"W": "week", "D": "day", "h": "hour"}


def repeat_buyers(n: float, time_unit: str = "W") -> str:
    """A count of repeat buyers that says what a repeat is for the models: a purchase in a later period.

    The models count repeat purchases per ``time_unit`` (distinct weeks by default), so their
    repeat buyers can be fewer than the customers who bought again on a later day.

    >>> repeat_buyers(11350), repeat_buyers(1, "D")
    ('11,350 customers with a repeat purchase in a later week', '1 customer with a repeat purchase on a later day')
    """
    unit = TIME_UNIT_WORDS.get(time_unit, time_unit)
    return f"{count(n, 'customer')} with a repeat purchase {'on' if unit == 'day' else 'in'} a later {unit}"


def yes_no(flag: Any) -> str:
    """``"yes"``/``"no"`` for a flag, empty for a missing one.

    >>> yes_no(True), yes_no(False), yes_no(None)
    ('yes', 'no', '')
    """
    return "" if is_missing(flag) else ("yes" if flag else "no")


#: Column and index names of crm_lib's tables in words, with their units ({currency} is filled in).
LABELS: dict[str, str] = {
    "mean_p_alive": "mean P(alive)",
    "p_alive": "P(alive)",
    "expected_churned_by_model": "expected to have left (model)",
    "churned_by_rule": "lapsed (rule)",
    # A purchase is a purchase day (as in the BTYD summary): the first "order" is every
    # transaction of the customer's first purchase day.
    "first_order_band": "first-day spend band",
    "first_order_amount": "first-day spend",
    "first_order_quantity": "first-day quantity",
    "standard_error": "standard error",
    "std_error": "standard error",
    "se": "standard error",
    "lower_95": "lower 95% bound",
    "upper_95": "upper 95% bound",
    "lower": "lower bound",
    "upper": "upper bound",
    "sd": "standard deviation",
    "alpha": "α",
    "beta": "β",
    "alpha_se": "α standard error",
    "beta_se": "β standard error",
    "clv": "CLV ({currency})",
    "mean_clv": "mean CLV ({currency})",
    "total_clv": "total CLV ({currency})",
    "share_of_clv": "share of CLV",
    "derl_after_first_renewal": "DERL after the first renewal (payments)",
    "discounted_expected_lifetime": "DEL (discounted payments)",
    "expected_lifetime": "expected lifetime (periods)",
    "expected_periods_within_horizon": "expected periods within the horizon",
    "n_customers": "customers",
    "aov": "average order value ({currency})",
    "average_order_value": "average order value ({currency})",
    "revenue": "revenue ({currency})",
    "monetary_value": "mean spend per repeat purchase ({currency})",
    "frequency": "repeat purchases",
    "recency": "age at last purchase",
    "T": "age",
    "GLOBAL": "all covariates (global test)",
    "global": "all covariates (global test)",
    "holdout_rmse": "holdout RMSE",
    "holdout_mae": "holdout MAE",
    "aggregate_error_pct": "aggregate error (%)",
    "n_excluded": "left out",
    "pseudonymous_id": "pseudonymous id",
    "purchase_days": "purchase days",
    "mean_purchase_days": "mean purchase days",
    "mean_interpurchase_days": "mean days between purchases",
    "mean_days_since_last_purchase": "mean days since last purchase",
    "share_of_long_lived": "share of long-lived customers",
    "retention_rate": "retention rate",
    "retention_first_period": "retention in the first period",
    "lifetime_status": "expected lifetime",
    "derl_value": "value after the first renewal ({currency})",
    "log_likelihood": "log-likelihood",
    "periods_observed": "periods observed",
    "attrition_rate": "attrition rate",
}
#: Columns that hold shares (shown as percentages) although their names do not start with ``share``.
PERCENT_NAMES = frozenset({"mean_p_alive", "p_alive", "retention_rate", "attrition_rate", "churned_share",
                           "retention_at_horizon", "survival", "retention_first_period"})
_COHORT_TERM = re.compile(r"^(\w+)\[(?:T\.)?(.+)\]$")


def column_label(name: Any, currency_code: str = "USD") -> str:
    """A column or index name for people: words with units, no code names.

    Known names come from :data:`LABELS`; ``cohort[1997-01]`` (a model term) becomes
    ``cohort 1997-01``; ``*_days`` names carry ``(days)``; otherwise underscores become spaces.

    >>> column_label("share_of_customers"), column_label("mean_p_alive"), column_label("cohort[1997-01]")
    ('share of customers', 'mean P(alive)', 'cohort 1997-01')
    >>> column_label("median_days"), column_label("clv", "EUR"), column_label(3)
    ('median (days)', 'CLV (EUR)', '3')
    """
    if not isinstance(name, str):
        return str(name)
    if name in LABELS:
        return LABELS[name].format(currency=currency_code)
    term = _COHORT_TERM.match(name)
    if term:
        return f"{column_label(term.group(1), currency_code)} {term.group(2)}"
    if name.endswith("_days") and not name.startswith("days"):
        return f"{name[:-len('_days')].replace('_', ' ')} (days)"
    return name.replace("_", " ")


_CODE_NAME = re.compile(r"\b[A-Za-z]\w*\[[^\]\s]+\]|\b[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)+\b|\bGLOBAL\b")
#: Library phrases that name code rather than say what they mean.
_PHRASES = {"OLS profit ~ duration + cohort": "least-squares regression of profit on duration and cohort",
            "OLS profit ~ duration": "least-squares regression of profit on duration",
            "regression profit ~ tenure + customer": "regression of profit on tenure within each customer",
            "time scale km": "Kaplan-Meier time scale",
            "BetaGeoFit gives": "BG/NBD gives", "time scale rank": "rank time scale",
            "time scale identity": "time scale of days"}


def label_value(value: Any, currency_code: str = "USD") -> Any:
    """An index value for people when it is a code name (``cohort[1997-01]``, ``GLOBAL``, ``first_order_amount``).

    >>> label_value("cohort[1997-01]"), label_value("GLOBAL"), label_value("high end"), label_value(3)
    ('cohort 1997-01', 'all covariates (global test)', 'high end', 3)
    """
    if isinstance(value, str) and _CODE_NAME.fullmatch(value):
        return column_label(value, currency_code)
    return value


def in_words(text: str, currency_code: str = "USD") -> str:
    """A library sentence with code names (``first_order_quantity``, ``cohort[1997-01]``) in words.

    >>> in_words("first_order_quantity has a hazard ratio of 0.86; cohort[1997-03] none. Time scale km.")
    'first-day quantity has a hazard ratio of 0.86; cohort 1997-03 none. Time scale km.'
    >>> in_words("Efron residuals, time scale km.")
    'Efron residuals, Kaplan-Meier time scale.'
    """
    for phrase, words in _PHRASES.items():
        text = text.replace(phrase, words)
    return _CODE_NAME.sub(lambda m: column_label(m.group(0), currency_code), text)


def _numeric_text(text: str) -> bool:
    """Whether a cell's text is a number (right-aligned) rather than words (left-aligned)."""
    return bool(_NUMERIC_TEXT.match(text.strip()))


_NUMERIC_TEXT = re.compile(r"^[<>≤≥~]?\s*[-+−]?[$€£]?(\d[\d,]*(\.\d+)?|\.\d+|∞)\s*(%|[A-Z]{3}|days?)?$|^n/a$|^$")


def table_for_people(table: pd.DataFrame, currency_code: str = "USD", money_columns: Iterable[str] = (),
                     *, decimals: int | dict[str, int] | None = None,
                     percent_columns: Iterable[str] = ()) -> pd.DataFrame:
    """A results table as text: readable headers, thousands separators, percentages.

    ``share_*`` and ``percent_columns`` become percentages with one decimal, ``money_columns``
    get the currency in their header and two decimals, integers thousands separators, other
    numbers two decimals (``decimals`` sets it per column); missing values show as empty cells.
    Column and index names go through :func:`column_label`.

    Parameters
    ----------
    table : DataFrame
    currency_code : str
        Currency of the money columns.
    money_columns : iterable of str
        Columns that hold amounts of money.
    decimals : int or dict, optional
        Fixed decimals of every numeric column, or of some (by original name).
    percent_columns : iterable of str
        More columns that hold shares (0.25 shown as 25.0%).

    Returns
    -------
    DataFrame of str
        Same index (its values and name made readable), one text column per input column.

    Examples
    --------
    >>> t = pd.DataFrame({"customers": [1200], "share_of_customers": [0.25], "revenue": [1234.5]})
    >>> table_for_people(t, money_columns=["revenue"]).iloc[0].tolist()
    ['1,200', '25.0%', '1,234.50']
    """
    money, shares = set(money_columns), set(percent_columns)
    places = {c: decimals for c in table.columns} if isinstance(decimals, int) else dict(decimals or {})
    out = pd.DataFrame(index=table.index)
    for column in table.columns:
        values = table[column]
        name = column_label(column, currency_code)
        if isinstance(column, str) and (column.startswith("share") or column in shares or column in PERCENT_NAMES):
            text = values.map(lambda v: percent(v, places.get(column, 1)))
        elif column in money:
            if currency_code not in name:
                name = f"{name} ({currency_code})"
            text = values.map(lambda v: number(v, places.get(column, 2)))
        elif pd.api.types.is_bool_dtype(values):
            text = values.map(yes_no)
        elif pd.api.types.is_integer_dtype(values):
            text = values.map(number)
        elif pd.api.types.is_float_dtype(values):
            # Whole numbers and durations in days without decimals; other quantities two.
            whole = values.dropna().map(float.is_integer).all() or (
                isinstance(column, str) and "days" in column and "purchase_days" not in column)
            text = values.map(lambda v: number(v, places.get(column, 0 if whole else 2)))
        else:
            text = values.map(lambda v: "" if is_missing(v) else str(v))
        out[name] = text
    out.index = out.index.map(lambda v: label_value(v, currency_code))
    out.index.names = [column_label(n, currency_code) if n else None for n in table.index.names]
    out.columns.name = column_label(table.columns.name, currency_code) if table.columns.name else None
    return out


#: One small style sheet per table (classes, not a style on every cell: pages stay small). ``table.crm-table``
#: outranks the notebook theme's right-aligned cells; ``n`` marks a number. Headers wrap, numbers do not: no
#: table of a report is wider than the page at 1400 px.
TABLE_STYLE = ("<style>table.crm-table{border-collapse:collapse;margin:0.4rem 0 1rem 0}"
               "table.crm-table th,table.crm-table td{text-align:left;padding:0.2rem 0.6rem;vertical-align:top}"
               "table.crm-table .n{text-align:right}table.crm-table td.n{white-space:nowrap}"
               "table.crm-table thead{border-bottom:1px solid #999}table.crm-table thead th{vertical-align:bottom}</style>")


_NUMBER_CLASS = ' class="n"'


def table_html(table: pd.DataFrame, *, index: bool = True, caption: str = "") -> str:
    """A table of text (from :func:`table_for_people`) as HTML: words left, numbers right.

    Deterministic (no random ids) and light: header row bold with a rule below it, numbers
    right-aligned (class ``n``) and not wrapped, words left-aligned and wrapping.

    >>> t = table_for_people(pd.DataFrame({"segment": ["new"], "customers": [1234]}).set_index("segment"))
    >>> '<td class="n">1,234</td>' in table_html(t)
    True
    """
    def cell(tag: str, text: Any, right: bool = False) -> str:
        text = "" if is_missing(text) else str(text)
        return f"<{tag}{_NUMBER_CLASS if right else ''}>{html.escape(text)}</{tag}>"

    def numeric(values: Iterable[Any]) -> bool:  # a column of numbers has its header on the right too
        texts = [str(v) for v in values if not is_missing(v) and str(v).strip()]
        return bool(texts) and all(_numeric_text(t) for t in texts)

    names = [n for n in table.index.names] if index else []
    if names and not any(names) and table.columns.name:  # "years since acquisition" over the 0, 1, 2 ... headers
        names[-1] = table.columns.name
    head = [cell("th", n or "") for n in names] + [cell("th", c, numeric(table[c])) for c in table.columns]
    rows = []
    for key, row in zip(table.index, table.itertuples(index=False)):
        keys = (key if isinstance(key, tuple) else (key,)) if index else ()
        rows.append("<tr>" + "".join(cell("th", k) for k in keys)
                    + "".join(cell("td", v, _numeric_text("" if is_missing(v) else str(v)) and str(v) != "") for v in row)
                    + "</tr>")
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return (TABLE_STYLE + '<table class="crm-table">' + cap + "<thead><tr>" + "".join(head) + "</tr></thead><tbody>"
            + "".join(rows) + "</tbody></table>")


def show_table(table: pd.DataFrame, currency_code: str = "USD", money_columns: Iterable[str] = (), *,
               decimals: int | dict[str, int] | None = None, percent_columns: Iterable[str] = (), index: bool = True,
               formatted: bool = False, max_columns: int | None = None, label_index: bool = True) -> None:
    """Display a results table for people: :func:`table_for_people` then :func:`table_html`.

    ``formatted=True`` takes a table that is already text (only its labels are made readable).
    ``max_columns`` splits a wide table into several with the same rows (each repeats the
    index), so that no table is wider than a page. ``label_index=False`` keeps the row
    labels as they are (setting names in a closing "How this was computed" section).
    """
    from IPython.display import HTML, display

    # Shown, not computed on: metadata (e.g. a frame of p-values in ``attrs``) would make pandas compare it
    # on every column operation, which fails for frames.
    table = table.copy(deep=False)
    table.attrs = {}
    if formatted:
        # One p-value style everywhere: "< 0.001" (some library tables write "<0.001").
        text = table.astype(object).where(table.notna(), "").astype(str).replace(r"^<(\d)", r"< \1", regex=True)
        text = text.rename(columns=lambda c: column_label(c, currency_code))
        text.columns.name = table.columns.name
        if text.index.nlevels == 1 and label_index:
            text.index = text.index.map(lambda v: label_value(v, currency_code))
        text.index.names = [column_label(n, currency_code) if n else None for n in table.index.names]
    else:
        text = table_for_people(table, currency_code, money_columns, decimals=decimals,
                                percent_columns=percent_columns)
    step = max_columns or max(1, text.shape[1])
    for start in range(0, max(1, text.shape[1]), step):
        display(HTML(table_html(text.iloc[:, start:start + step], index=index)))
