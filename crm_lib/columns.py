"""The one column check: a frame lacks columns a function needs -> a message that says what to do."""
from __future__ import annotations

from typing import Sequence

import pandas as pd

from crm_lib.exceptions import DataValidationError

__all__ = ["require_columns"]


def require_columns(
    frame: pd.DataFrame,
    columns: Sequence[str],
    what: str,
    hint: str = "",
    *,
    error: type[Exception] = DataValidationError,
) -> None:
    """Raise ``error`` naming the missing columns, the columns present and what to do.

    Parameters
    ----------
    frame : DataFrame
        The table to check.
    columns : sequence of str
        Columns the caller needs.
    what : str
        What the table is for, the start of the message (``"CLV"``, ``"transactions"``).
    hint : str
        What the user should do (one sentence).
    error : exception class
        :class:`~crm_lib.exceptions.DataValidationError` (default) or, for a column
        named by a knob, :class:`~crm_lib.exceptions.ParamsError`.

    Raises
    ------
    DataValidationError
        (or ``error``) when any column is missing.

    Examples
    --------
    >>> require_columns(pd.DataFrame({"a": [1]}), ["a"], "demo")
    >>> require_columns(pd.DataFrame({"a": [1]}), ["a", "b"], "demo", "add column b.")
    Traceback (most recent call last):
    ...
    crm_lib.exceptions.DataValidationError: demo: column(s) ['b'] not found; the table has ['a'] (1 row). add column b.
    """
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        rows = len(frame)
        message = (f"{what}: column(s) {missing} not found; the table has {list(frame.columns)} "
                   f"({rows:,} row{'' if rows == 1 else 's'}).")
        raise error(f"{message} {hint}".rstrip())
