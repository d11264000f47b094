"""Pseudonymous customer ids for reports: the salt, the pseudonyms and hiding ids in a table.

*Pseudonymous ids* are the first ``length`` hex characters of ``sha256(salt + customer_id)``:
stable for a given salt, not reversible without it. The HTML reports show only these; the
per-customer export files (:mod:`crm_lib.export`) carry both so that a row can be found.
"""
from __future__ import annotations

import hashlib
import os
from typing import Any, Iterable

import pandas as pd

from crm_lib.exceptions import ParamsError

__all__ = ["hide_customer_ids", "pseudonymize", "resolve_salt"]


def resolve_salt(salt: str) -> str:
    """The salt itself, or for ``"env:NAME"`` the value of environment variable NAME.

    Keeping the salt in the environment keeps it out of the params file, the report's
    index and its manifest.

    Raises
    ------
    ParamsError
        ``env:NAME`` names a variable that is not set or empty.
    """
    if isinstance(salt, str) and salt.startswith("env:"):
        name = salt[4:]
        value = os.environ.get(name, "")
        if not value:
            raise ParamsError(
                f"pseudonym_salt={salt!r} reads environment variable {name!r}, which is not set; "
                f"export {name}=<secret text> before running the report, or put the salt itself in params."
            )
        return value
    return salt


def pseudonymize(customer_ids: Iterable[Any], salt: str, *, length: int = 10) -> pd.Series:
    """Stable pseudonymous ids: the first ``length`` hex characters of sha256(salt + id).

    Parameters
    ----------
    customer_ids : iterable
        Real customer ids (converted to str).
    salt : str
        Secret text from the params (``pseudonym_salt``), or ``"env:NAME"`` to read it
        from an environment variable; the same salt gives the same pseudonyms in every
        run, a different salt unlinkable ones.
    length : int
        Hex characters kept (10 = 40 bits; collisions are checked).

    Returns
    -------
    Series of str
        Indexed by the real ids, named ``pseudonymous_id``.

    Raises
    ------
    ParamsError
        An empty salt (anyone could hash known ids and re-identify customers), a length
        outside 6..64, or two ids with the same pseudonym (use a longer length).

    Examples
    --------
    >>> pseudonymize(["00001"], salt="s").str.len().tolist()
    [10]
    """
    salt = resolve_salt(salt)
    if not isinstance(salt, str) or not salt:
        raise ParamsError(
            "pseudonym_salt is empty; set it in params to a secret text (e.g. a random word) so that the ids "
            "shown in the report cannot be re-computed from known customer ids."
        )
    if not 6 <= length <= 64:
        raise ParamsError(f"pseudonym length={length} must be between 6 and 64 hex characters.")
    ids = [str(c) for c in customer_ids]
    salted = salt.encode()
    hashed = [hashlib.sha256(salted + c.encode()).hexdigest()[:length] for c in ids]
    series = pd.Series(hashed, index=pd.Index(ids, name="customer_id"), name="pseudonymous_id", dtype=object)
    if series.duplicated().any() and not series.index.duplicated().any():
        first = series[series.duplicated(keep=False)]
        raise ParamsError(
            f"{int(series.duplicated().sum())} pseudonymous ids collide (e.g. {first.iloc[0]!r}); "
            f"use a longer length than {length}."
        )
    return series


def hide_customer_ids(
    data: pd.DataFrame | pd.Series, salt: str, *, column: str | None = None, values: bool = False
) -> pd.DataFrame | pd.Series:
    """A copy of ``data`` for a report: real customer ids replaced by their pseudonyms.

    Parameters
    ----------
    data : DataFrame or Series
        Holds real customer ids in its index (the default), in ``column``, or in its
        values (a Series with ``values=True``).
    salt : str
        As in :func:`pseudonymize`.
    column : str, optional
        Column of ``data`` that holds the ids.
    values : bool
        The ids are the values of the Series ``data``.

    Returns
    -------
    DataFrame or Series
        The same data with pseudonymous ids; an index of ids is renamed ``pseudonymous_id``.

    Examples
    --------
    >>> table = pd.DataFrame({"clv": [3.0]}, index=pd.Index(["00042"], name="customer_id"))
    >>> hide_customer_ids(table, "s").index.name
    'pseudonymous_id'
    """
    if column is not None:
        ids = data[column]
        return data.assign(**{column: ids.map(pseudonymize(ids.unique(), salt))})
    if values:
        return data.map(pseudonymize(data.unique(), salt))
    hidden = data.copy()
    hidden.index = pd.Index(pseudonymize(data.index, salt).to_numpy(), name="pseudonymous_id")
    return hidden
