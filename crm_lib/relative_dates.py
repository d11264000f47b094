"""Relative dates of the observation window, so a scheduled run needs no edited params file.

Two knobs take them (``params/*.yaml``, ``--set``, :func:`crm_lib.session`):

- ``observation_end: latest``: the day of the last transaction in the data (the same as
  leaving it empty, ``None``).
- ``calibration_end: -26w`` (or ``-6m``, ``-90d``): that many weeks, calendar months or
  days before the observation end; ``-6m`` from 1998-06-30 is 1997-12-30 (calendar months
  as :class:`pandas.DateOffset` counts them, the day clipped to the month's length).

:func:`resolve_relative_date` is the one rule; :func:`crm_lib.context.calibration_end_for`
applies it to ``calibration_end``, :func:`observation_end_knob` to ``observation_end``.
"""
from __future__ import annotations

import re
from typing import Any

import pandas as pd

from crm_lib.exceptions import ParamsError

#: The word for "the last day in the data" (``observation_end: latest``).
LATEST = "latest"
#: ``-<count><unit>``: a span before the observation end (d days, w weeks, m calendar months).
RELATIVE_PATTERN = re.compile(r"^\s*-\s*(\d+)\s*([dwm])\s*$", re.IGNORECASE)
_UNIT_WORDS = {"d": "days", "w": "weeks", "m": "months"}


def is_relative_date(value: Any) -> bool:
    """Whether ``value`` is ``latest`` or an offset such as ``-26w``.

    Examples
    --------
    >>> is_relative_date("-26w"), is_relative_date("latest"), is_relative_date("1998-01-01")
    (True, True, False)
    """
    return isinstance(value, str) and (value.strip().lower() == LATEST or RELATIVE_PATTERN.match(value) is not None)


def resolve_relative_date(value: str, observation_end: pd.Timestamp) -> pd.Timestamp:
    """The day that a relative date (``latest``, ``-26w``, ``-6m``, ``-90d``) names.

    Parameters
    ----------
    value : str
        ``latest`` or ``-<count><d|w|m>``.
    observation_end : Timestamp
        Last day of the observation window (the anchor).

    Returns
    -------
    Timestamp
        Normalized to midnight.

    Raises
    ------
    ParamsError
        ``value`` is not one of the forms above.

    Examples
    --------
    >>> end = pd.Timestamp("1998-06-30")
    >>> [f"{resolve_relative_date(v, end):%Y-%m-%d}" for v in ("latest", "-26w", "-6m", "-90d")]
    ['1998-06-30', '1997-12-30', '1997-12-30', '1998-04-01']
    """
    anchor = pd.Timestamp(observation_end).normalize()
    if isinstance(value, str) and value.strip().lower() == LATEST:
        return anchor
    match = RELATIVE_PATTERN.match(value) if isinstance(value, str) else None
    if match is None:
        raise ParamsError(f"{value!r} is not a relative date; use 'latest', or -<count> followed by d (days), "
                          "w (weeks) or m (calendar months), e.g. -26w.")
    count, unit = int(match.group(1)), _UNIT_WORDS[match.group(2).lower()]
    return (anchor - pd.DateOffset(**{unit: count})).normalize()


def observation_end_knob(value: Any, where: str = "observation_end") -> Any:
    """The ``observation_end`` knob as the loader takes it: ``latest`` becomes None (the last day in the data).

    Raises
    ------
    ParamsError
        An offset such as ``-26w``: the end of observation cannot be relative to itself.
    """
    if isinstance(value, str) and value.strip().lower() == LATEST:
        return None
    if isinstance(value, str) and RELATIVE_PATTERN.match(value):
        raise ParamsError(f"{where}: observation_end={value!r}: an offset is relative to the observation end itself; "
                          "use 'latest' (the last day in the data) or a date YYYY-MM-DD.")
    return value
