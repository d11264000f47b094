"""Pseudonymous customer ids for reports: the salt, the pseudonyms and hiding ids in a table.

*Pseudonymous ids* are the first ``length`` hex characters of
``HMAC-SHA256(key, customer_id)`` (:mod:`crm_lib.keys`): stable for a given secret key, not
reversible without it. The HTML reports show only these; the
per-customer export files (:mod:`crm_lib.export`) carry both so that a row can be found.
"""
from __future__ import annotations

from typing import Any, Iterable

import numpy as np
import pandas as pd

from crm_lib.exceptions import ParamsError

__all__ = ["hide_customer_ids", "pseudonymize", "resolve_salt"]


def resolve_salt(salt: str | None = None) -> bytes:
    """The secret pseudonym key (the salt is replaced by it; see :mod:`crm_lib.keys`).

    A ``salt`` argument is ignored: a salt from params was published with the executed
    notebooks and its public default made every pseudonym reversible.
    """
    from crm_lib.keys import load_key

    return load_key()


def pseudonymize(customer_ids: Iterable[Any], salt: str | None = None, *, length: int = 16) -> pd.Series:
    """Stable pseudonymous ids: HMAC-SHA256 of each id under the secret key (:mod:`crm_lib.keys`).

    Parameters
    ----------
    customer_ids : iterable
        Real customer ids (converted to str).
    salt : str, optional
        Ignored (kept so that old calls still work): the key replaces the salt.
    length : int
        Hex characters kept, 16..64 (64 bits or more; collisions are checked).

    Returns
    -------
    Series of str
        Indexed by the real ids, named ``pseudonymous_id``.

    Raises
    ------
    ParamsError
        No pseudonym key (the message says how to set one), a length outside 16..64,
        or two ids with the same pseudonym.
    """
    from crm_lib.keys import hex_text, pseudonym_digests, text_ids

    if isinstance(customer_ids, pd.Index) and customer_ids.dtype == "str" and not customer_ids.hasnans:
        index = customer_ids.rename("customer_id")  # already the text ids: no second index of millions of str
    else:
        index = pd.Index(text_ids(customer_ids), name="customer_id")
    digests = pseudonym_digests(index, length=length)
    series = pd.Series(hex_text(digests, int(length)), index=index, name="pseudonymous_id")
    if _may_collide(digests) and series.duplicated().any() and not series.index.duplicated().any():
        first = series[series.duplicated(keep=False)]
        raise ParamsError(
            f"{int(series.duplicated().sum())} pseudonymous ids collide (e.g. {first.iloc[0]!r}); "
            f"use a longer length than {length}."
        )
    return series


def _may_collide(digests: np.ndarray) -> bool:
    """Whether two rows share their first 64 bits (needed for two equal pseudonyms of 16+ hex characters)."""
    leading = np.ascontiguousarray(digests[:, :8]).view(">u8").ravel()
    leading = np.sort(leading)
    return bool((leading[1:] == leading[:-1]).any())


def hide_customer_ids(
    data: pd.DataFrame | pd.Series, salt: str | None = None, *, column: str | None = None, values: bool = False
) -> pd.DataFrame | pd.Series:
    """A copy of ``data`` for a report: real customer ids replaced by their pseudonyms.

    Parameters
    ----------
    data : DataFrame or Series
        Holds real customer ids in its index (the default), in ``column``, or in its
        values (a Series with ``values=True``).
    salt : str, optional
        Ignored, as in :func:`pseudonymize` (the secret key replaces it).
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
