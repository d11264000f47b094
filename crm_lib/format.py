"""The one place that formats numbers for people: counts, decimals, percentages, money,
p-values, durations and plural-aware counts.

Every table and sentence of a report goes through these functions, so one quantity reads
the same on every page (``12.3%``, ``1,234``, ``< 0.001``). A missing value (None or
NaN) becomes ``missing`` (an empty cell by default) instead of ``"nan"``.

>>> number(1234.5), number(0.25, 2), percent(0.1234), p_value(0.0004), count(1, "repeat buyer")
('1,234', '0.25', '12.3%', '< 0.001', '1 repeat buyer')
"""
from __future__ import annotations

import math
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
    "plural",
    "yes_no",
    "column_label",
    "table_for_people",
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


def yes_no(flag: Any) -> str:
    """``"yes"``/``"no"`` for a flag, empty for a missing one.

    >>> yes_no(True), yes_no(False), yes_no(None)
    ('yes', 'no', '')
    """
    return "" if is_missing(flag) else ("yes" if flag else "no")


def column_label(name: str) -> str:
    """A column name for people: underscores become spaces.

    >>> column_label("share_of_customers")
    'share of customers'
    """
    return name.replace("_", " ")


def table_for_people(table: pd.DataFrame, currency_code: str = "USD", money_columns: Iterable[str] = ()) -> pd.DataFrame:
    """A results table as text: readable headers, thousands separators, percentages.

    ``share_*`` columns become percentages with one decimal, ``money_columns`` get the
    currency in their header and two decimals, integers thousands separators, other
    numbers two decimals; missing values show as empty cells.

    Parameters
    ----------
    table : DataFrame
    currency_code : str
        Currency of the money columns.
    money_columns : iterable of str
        Columns that hold amounts of money.

    Returns
    -------
    DataFrame of str
        Same index (its name made readable), one text column per input column.

    Examples
    --------
    >>> t = pd.DataFrame({"customers": [1200], "share_of_customers": [0.25], "revenue": [1234.5]})
    >>> table_for_people(t, money_columns=["revenue"]).iloc[0].tolist()
    ['1,200', '25.0%', '1,234.50']
    """
    money = set(money_columns)
    out = pd.DataFrame(index=table.index)
    for column in table.columns:
        values = table[column]
        name = column_label(column)
        if column.startswith("share"):
            text = values.map(lambda v: percent(v))
        elif column in money:
            name = f"{name} ({currency_code})"
            text = values.map(lambda v: number(v, 2))
        elif pd.api.types.is_integer_dtype(values):
            text = values.map(number)
        elif pd.api.types.is_float_dtype(values):
            text = values.map(lambda v: number(v, 2))
        else:
            text = values.astype(str)
        out[name] = text
    out.index.name = column_label(table.index.name) if table.index.name else None
    return out
