"""Load and validate a transaction log.

A transaction log has one row per purchase with at least a customer id, a timestamp and
an amount; it may also carry a quantity, a channel and a cost. The column names of the
file are mapped onto these canonical names by ``column_map`` (in the params file).

Problems that make the analysis impossible stop it with a :class:`DataValidationError`
naming the file, the column, how many rows are affected, an example value and what to do:
a missing or empty file, a missing column, dates that do not parse, missing customer
ids, amounts that are not numbers.

Findings that do not stop the analysis are counted in a data-quality table and handled
by a documented rule (each rule is a keyword of :func:`load_transactions`):

========================  ================  ==============================================
finding                   default rule      why
========================  ================  ==============================================
exact duplicate rows      ``keep``          a log without an order id cannot tell a double
                                            export from two identical orders on one day
negative amounts          ``drop``          returns and refunds are not purchases
zero amounts              ``keep``          a free order is still a purchase occasion
after observation end     ``drop``          always: they lie outside the study window
========================  ================  ==============================================
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from crm_lib.exceptions import DataValidationError
from crm_lib.readers import _fail, _read_raw
# Public names of the reading step, importable from here as before the split.
from crm_lib.readers import InputTooLargeError, available_memory_bytes, detect_encoding  # noqa: F401

logger = logging.getLogger(__name__)

#: Canonical column names used by every function of crm_lib.
REQUIRED_COLUMNS = ("customer_id", "date", "amount")
OPTIONAL_COLUMNS = ("quantity", "channel", "cost")
NUMERIC_COLUMNS = ("amount", "quantity", "cost")

DUPLICATE_RULES = ("keep", "drop")
NEGATIVE_RULES = ("drop", "keep")
ZERO_RULES = ("keep", "drop")

DECIMAL_MARKS = (".", ",")


#: Units of the per-customer summary and the models: days, weeks (Monday to Sunday), hours.
TIME_UNITS = ("D", "W", "h")
#: The default time unit of every notebook and of the run context.
DEFAULT_TIME_UNIT = "W"


def observation_end_day(value: str | pd.Timestamp) -> pd.Timestamp:
    """THE rule for the end of observation: the last calendar day included, whole day.

    Every function of crm_lib that needs the end of the window goes through this helper:
    ``"1998-06-30"`` and ``"1998-06-30 14:00"`` both mean *up to and including
    1998-06-30*: a purchase at any time on that day is inside the window, one on the next
    day is outside. In a period count (:meth:`ObservationWindow.end_period`), the end is
    the period that contains this day, so a customer's age ``T`` runs to it, as in
    ``lifetimes.utils.summary_data_from_transaction_data``.

    Raises
    ------
    DataValidationError
        When ``value`` is not a date.

    Examples
    --------
    >>> observation_end_day("1998-06-30 14:00")
    Timestamp('1998-06-30 00:00:00')
    """
    try:
        end = pd.Timestamp(value)
    except (TypeError, ValueError):
        end = pd.NaT
    if pd.isna(end):
        raise DataValidationError(f"observation_end={value!r} is not a date; use YYYY-MM-DD (the last day included).")
    if end.tzinfo is not None:
        end = end.tz_convert("UTC").tz_localize(None)
    return end.normalize()


def end_period(end: str | pd.Timestamp, time_unit: str) -> int:
    """Number of the ``time_unit`` period that holds the last instant of the day ``end``.

    The one place where the end of observation becomes a period number (T, holdout
    length): :func:`observation_end_day` of ``end``, then the period of the last
    nanosecond of that day.
    """
    from crm_lib.summary import period_numbers

    last_instant = observation_end_day(end) + pd.Timedelta(days=1) - pd.Timedelta(1, "ns")
    return int(period_numbers(pd.Series([last_instant]), time_unit)[0])


@dataclass(frozen=True)
class ObservationWindow:
    """The study window of a transaction log: first and last day included, and the time unit.

    Attributes
    ----------
    start : Timestamp
        First day of the window (the day of the first transaction).
    end : Timestamp
        Last day of the window, included (see :func:`observation_end_day`).
    time_unit : {"D", "W", "h"}
        Unit of the per-customer summary and of the models.
    """

    start: pd.Timestamp
    end: pd.Timestamp
    time_unit: str = DEFAULT_TIME_UNIT

    def __post_init__(self) -> None:
        if self.time_unit not in TIME_UNITS:
            raise DataValidationError(
                f"time_unit={self.time_unit!r} is not supported; use one of {', '.join(TIME_UNITS)}."
            )
        if self.end < self.start.normalize():
            raise DataValidationError(
                f"the observation window ends ({self.end:%Y-%m-%d}) before it starts ({self.start:%Y-%m-%d}); "
                "move observation_end later in params."
            )

    @property
    def end_exclusive(self) -> pd.Timestamp:
        """Midnight after the last day: a timestamp is inside when it is before this."""
        return self.end + pd.Timedelta(days=1)

    def contains(self, dates: pd.Series) -> pd.Series:
        """True for the dates on or before the last day of the window."""
        return dates < self.end_exclusive

    def end_period(self, time_unit: str | None = None) -> int:
        """Period number (``crm_lib.summary.period_numbers``) holding the last instant of the window.

        For days and weeks that is the period of the last day; for hours, the last hour
        of that day (the whole day is observed).
        """
        return end_period(self.end, time_unit or self.time_unit)

    def midpoint(self) -> pd.Timestamp:
        """The day halfway through the window: the default ``calibration_end``.

        For CDNOW (1997-01-01 to 1998-06-30) it is 1997-09-30, the 39-week calibration
        period of Fader, Hardie & Lee (2005).
        """
        start = self.start.normalize()
        return (start + (self.end_exclusive - start) / 2).normalize() - pd.Timedelta(days=1)

    def days(self) -> int:
        """Number of days in the window, both ends included."""
        return int((self.end_exclusive - self.start.normalize()) / pd.Timedelta(days=1))


@dataclass(frozen=True)
class TransactionLog:
    """A validated transaction log, its observation window and what validation found.

    The window travels with the data: functions of :mod:`crm_lib.summary`,
    :mod:`crm_lib.kpi` and the run context take a ``TransactionLog`` and read its end and
    time unit from it instead of being handed a date next to a bare frame.

    Attributes
    ----------
    transactions : DataFrame
        Canonical columns ``customer_id`` (str), ``date`` (datetime64), ``amount``
        (float) and any of ``quantity``, ``channel``, ``cost``, after the rules were
        applied; sorted by customer and date.
    quality : DataFrame
        The data-quality table: one row per check with the rows affected, their share
        of the rows read, an example and the rule applied.
    path : Path
        The file that was read.
    observation_start, observation_end : Timestamp
        First transaction date and the last day of the observation window (included;
        see :func:`observation_end_day`).
    rows_read : int
        Rows in the file before any rule.
    rules : dict
        The data rules applied.
    time_unit : {"D", "W", "h"}
        Unit of the per-customer summary built from this log.
    """

    transactions: pd.DataFrame
    quality: pd.DataFrame
    path: Path
    observation_start: pd.Timestamp
    observation_end: pd.Timestamp
    rows_read: int
    rules: dict = field(default_factory=dict)
    time_unit: str = DEFAULT_TIME_UNIT

    def __post_init__(self) -> None:
        if self.time_unit not in TIME_UNITS:
            raise DataValidationError(
                f"time_unit={self.time_unit!r} is not supported; use one of {', '.join(TIME_UNITS)}."
            )

    @classmethod
    def from_frame(
        cls,
        transactions: pd.DataFrame,
        *,
        observation_end: str | pd.Timestamp,
        time_unit: str = DEFAULT_TIME_UNIT,
        path: str | Path = "(frame)",
    ) -> "TransactionLog":
        """Wrap canonical transactions (already validated) with an explicit window.

        Transactions after ``observation_end`` are dropped, by the window rule.
        """
        end = observation_end_day(observation_end)
        inside = transactions[transactions["date"] < end + pd.Timedelta(days=1)]
        n = len(transactions)
        quality = pd.DataFrame([{"check": "rows read", "rows": n, "share_of_rows": 1.0, "example": "", "rule": ""}])
        return cls(inside.reset_index(drop=True), quality, Path(path), inside["date"].min(), end, n, {}, time_unit)

    @property
    def window(self) -> ObservationWindow:
        """The observation window (start, last day included, time unit)."""
        return ObservationWindow(self.observation_start, self.observation_end, self.time_unit)

    def with_time_unit(self, time_unit: str) -> "TransactionLog":
        """The same log with another time unit for its summaries."""
        ObservationWindow(self.observation_start, self.observation_end, time_unit)  # validates the unit
        return replace(self, time_unit=time_unit)

    @property
    def n_customers(self) -> int:
        """Number of distinct customers after the rules."""
        from crm_lib.summary import sorted_id_runs

        ids = self.transactions["customer_id"]
        # A loaded log is sorted by customer: count the runs of its ids (nunique would hash a
        # Python string of every row, +0.8 GB kept at 10 M rows).
        runs = sorted_id_runs(ids)
        return int(ids.nunique()) if runs is None else len(runs[1])

    @property
    def n_transactions(self) -> int:
        """Number of transactions (rows) after the rules."""
        return len(self.transactions)

    def summary(self) -> str:
        """A few lines for people: file, window, counts and what the rules changed."""
        lines = [
            f"Transaction log: {self.path.name}",
            f"  window       {self.observation_start:%Y-%m-%d} to {self.observation_end:%Y-%m-%d} (last day included)",
            f"  rows read    {self.rows_read:,}",
            f"  rows used    {self.n_transactions:,}",
            f"  customers    {self.n_customers:,}",
        ]
        for _, row in self.quality.iterrows():
            if row["rows"] and row["check"] not in {"rows read", "rows used"}:
                lines.append(f"  {row['check']}: {row['rows']:,} ({row['rule']})")
        return "\n".join(lines)


def resolve_window(
    data: "TransactionLog | pd.DataFrame",
    observation_end: str | pd.Timestamp | None = None,
    *,
    what: str,
) -> tuple[pd.DataFrame, pd.Timestamp]:
    """The transactions and the last day of observation of ``data``, by the one window rule.

    A :class:`TransactionLog` brings its own end; a bare frame needs ``observation_end``
    (there is no silent default to the last transaction date).

    Raises
    ------
    DataValidationError
        A bare frame without ``observation_end``, or a log given a different end.
    """
    if isinstance(data, TransactionLog):
        if observation_end is not None and observation_end_day(observation_end) != data.observation_end:
            raise DataValidationError(
                f"{what}: observation_end={observation_end!r} differs from the log's window end "
                f"({data.observation_end:%Y-%m-%d}); pass the log alone (its window is the rule), or load it "
                "again with that observation_end."
            )
        return data.transactions, data.observation_end
    if observation_end is None:
        raise DataValidationError(
            f"{what}: a bare transactions frame has no observation window; pass the TransactionLog "
            "(crm_lib.data.load_transactions or ctx.log), or observation_end='YYYY-MM-DD' (the last day included)."
        )
    return data, observation_end_day(observation_end)


def _example(values: pd.Series) -> str:
    return repr(values.iloc[0]) if len(values) else "''"


EPOCH_FORMATS = ("%s", "epoch", "unix")


def _date_hint(date_format: str | None) -> str:
    if date_format:
        return f"the expected format is date_format={date_format!r}: fix the rows or change date_format in params."
    return "set date_format in params (e.g. '%Y%m%d' or '%d/%m/%Y') or fix the rows."


def _to_datetime(text: pd.Series, path: Path, column: str, date_format: str | None, timezone: str | None) -> pd.Series:
    """Text to naive datetimes; offsets kept on the local calendar date unless ``timezone`` is set."""
    if date_format in EPOCH_FORMATS:
        seconds = pd.to_numeric(text, errors="coerce")
        dates = pd.to_datetime(seconds, unit="s", errors="coerce", utc=True)
        return dates.dt.tz_convert(timezone).dt.tz_localize(None) if timezone else dates.dt.tz_localize(None)
    offsets = text.str.contains(r"\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:Z|UTC|GMT|[+-]\d{2}:?\d{2})$", regex=True,
                                na=False)
    try:
        if offsets.any() and timezone:
            return pd.to_datetime(text, format=date_format or "ISO8601", errors="coerce", utc=True).dt.tz_convert(
                timezone).dt.tz_localize(None)
        if offsets.any():
            # Keep the wall-clock time where the purchase happened: converting to UTC would move
            # late-evening purchases to the next day (and past observation_end).
            text = text.where(~offsets, text.str.replace(r"\s*(?:Z|UTC|GMT|[+-]\d{2}:?\d{2})$", "", regex=True))
            date_format = None if date_format and "%z" in date_format else date_format
        return pd.to_datetime(text, format=date_format or "ISO8601", errors="coerce")
    except (ValueError, TypeError) as error:
        raise _fail(
            path,
            f"column '{column}' cannot be read with date_format={date_format!r} ({error}; e.g. {_example(text.dropna())}); "
            "use a strftime format such as '%Y-%m-%d', or 'epoch' for seconds since 1970.",
        ) from None


def _parse_dates(
    raw: pd.Series, path: Path, column: str, date_format: str | None, n: int, timezone: str | None = None
) -> pd.Series:
    if timezone:
        try:
            pd.Timestamp("2000-01-01", tz=timezone)
        except Exception:  # noqa: BLE001 - pytz/zoneinfo raise different types for an unknown zone
            raise DataValidationError(
                f"timezone={timezone!r} is not a time zone name; use e.g. 'UTC' or 'Europe/Berlin', "
                "or leave it empty to keep each purchase's local calendar date."
            ) from None
    if pd.api.types.is_datetime64_any_dtype(raw):
        dates = raw
        if getattr(dates.dt, "tz", None) is not None:
            dates = dates.dt.tz_convert(timezone) if timezone else dates
            dates = dates.dt.tz_localize(None)
    elif pd.api.types.is_numeric_dtype(raw) and date_format in EPOCH_FORMATS:
        dates = _to_datetime(raw.astype("string"), path, column, date_format, timezone)
    else:
        dates = _to_datetime(raw.astype("string").str.strip(), path, column, date_format, timezone)
    bad = dates.isna()
    if bad.any():
        examples = raw[bad]
        missing = examples.isna().sum()
        raise _fail(
            path,
            f"column '{column}' has {int(bad.sum()):,} of {n:,} values that are not dates"
            + (f" ({missing:,} of them empty)" if missing else "")
            + f" (e.g. {_example(examples.dropna()) if missing < len(examples) else 'an empty cell'}); "
            + _date_hint(date_format),
        )
    return dates.astype("datetime64[ns]")


def _parse_numbers(raw: pd.Series, path: Path, column: str, canonical: str, n: int, decimal: str = ".") -> pd.Series:
    if decimal not in DECIMAL_MARKS:
        raise DataValidationError(f"decimal={decimal!r} is not a decimal mark; use '.' or ','.")
    if pd.api.types.is_numeric_dtype(raw):
        numbers = raw.astype(float)
        bad = numbers.isna()
    else:
        text = raw.astype("string").str.strip()
        if decimal == ",":
            # 1.234,56 -> 1234.56: the dots are thousands separators when a comma is the decimal mark.
            text = text.where(~text.str.contains(",", na=False), text.str.replace(".", "", regex=False))
            text = text.str.replace(",", ".", regex=False)
        numbers = pd.to_numeric(text, errors="coerce").astype(float)
        bad = numbers.isna() | ~np.isfinite(numbers.to_numpy(dtype=float, na_value=np.nan))
    if bad.any():
        examples = raw[bad]
        empty = int(examples.isna().sum())
        shown = _example(examples.dropna()) if empty < len(examples) else "an empty cell"
        comma = decimal == "." and examples.dropna().astype(str).str.fullmatch(r"-?[\d.]*\d,\d+").any()
        raise _fail(
            path,
            f"column '{column}' ({canonical}) has {int(bad.sum()):,} of {n:,} values that are not numbers"
            + (f" ({empty:,} of them empty)" if empty else "")
            + f" (e.g. {shown}); "
            + ("the values use a decimal comma: set decimal: ',' in params." if comma else
               "remove currency symbols and thousands separators, set decimal ('.' or ',') in params, "
               "or drop the rows."),
        )
    return numbers


def normalise_ids(ids: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Customer ids as text, with ``1.0`` written as ``1`` (a float export of an integer id).

    Returns the ids and the mask of the rows that were rewritten (counted in the
    data-quality table). Leading zeros are kept: ``007`` and ``7`` stay two customers.

    Examples
    --------
    >>> normalise_ids(pd.Series(["1", "1.0", "007"]))[0].tolist()
    ['1', '1', '007']
    """
    if pd.api.types.is_float_dtype(ids):
        whole = ids.notna() & (ids == np.floor(ids))
        text = ids.astype("string")
        text = text.where(~whole, ids[whole].astype("int64").astype("string") if whole.any() else text)
        return text.str.strip(), whole
    text = ids.astype("string").str.strip()
    decimal = text.str.fullmatch(r"-?\d+\.0+", na=False)
    if decimal.any():
        text = text.where(~decimal, text.str.replace(r"\.0+$", "", regex=True))
    return text, decimal


def check_data_rules(*, duplicate_rows: str, negative_amounts: str, zero_amounts: str) -> None:
    """The one check that the three data rules name known rules.

    Raises
    ------
    DataValidationError
        A rule not in ``DUPLICATE_RULES``, ``NEGATIVE_RULES`` or ``ZERO_RULES``.
    """
    for name, value, allowed in (
        ("duplicate_rows", duplicate_rows, DUPLICATE_RULES),
        ("negative_amounts", negative_amounts, NEGATIVE_RULES),
        ("zero_amounts", zero_amounts, ZERO_RULES),
    ):
        if value not in allowed:
            raise DataValidationError(f"{name}={value!r} is not a rule; use one of {', '.join(allowed)}.")


def quality_checks(
    end: pd.Timestamp, *, duplicate_rows: str, negative_amounts: str, zero_amounts: str
) -> list[tuple[str, str]]:
    """The rows of the data-quality table, in order: each check's name and the rule applied.

    The one wording shared by :func:`load_transactions` and the DuckDB engine, so both
    tables read the same.

    Parameters
    ----------
    end : Timestamp
        The observation end (last day included), named in the late-rows check.
    duplicate_rows, negative_amounts, zero_amounts : str
        The data rules, as given to :func:`load_transactions`.

    Returns
    -------
    list of (str, str)
        ``(check, rule)`` for rows read, decimal ids, duplicates, negative and zero amounts,
        rows after the end and rows used.

    Examples
    --------
    >>> quality_checks(pd.Timestamp("1998-06-30"), duplicate_rows="keep", negative_amounts="drop",
    ...                zero_amounts="keep")[5]
    ('after observation end (1998-06-30)', 'dropped')
    """
    return [
        ("rows read", ""),
        ("customer ids written as decimals (1.0)", "read as whole numbers: 1.0 and 1 are one customer"),
        ("exact duplicate rows", "kept: no order id tells a double export from two identical orders"
         if duplicate_rows == "keep" else "dropped (first copy kept)"),
        ("negative amounts (returns)", "dropped" if negative_amounts == "drop" else "kept"),
        ("zero amounts", "kept as purchases with no revenue" if zero_amounts == "keep" else "dropped"),
        (f"after observation end ({end:%Y-%m-%d})", "dropped"),
        ("rows used", ""),
    ]


def load_transactions(
    path: str | Path,
    *,
    column_map: dict[str, str] | None = None,
    sep: str | None = None,
    date_format: str | None = None,
    observation_end: str | pd.Timestamp | None = None,
    duplicate_rows: str = "keep",
    negative_amounts: str = "drop",
    zero_amounts: str = "keep",
    time_unit: str = DEFAULT_TIME_UNIT,
    encoding: str | None = None,
    decimal: str = ".",
    timezone: str | None = None,
    max_input_bytes: int | None = None,
) -> TransactionLog:
    """Read a transaction log from CSV or Parquet, validate it and apply the data rules.

    Parameters
    ----------
    path : str or Path
        A ``.csv`` / ``.txt`` / ``.tsv`` file (any of them gzip-compressed), a
        ``.parquet`` file, or ``embedded:<name>`` for a log shipped with ``lifetimes``
        (``embedded:CDNOW_master.txt``).
    column_map : dict, optional
        Canonical name -> column name in the file, for ``customer_id``, ``date``,
        ``amount`` (required) and ``quantity``, ``channel``, ``cost`` (optional). A
        canonical name left out is looked up under its own name.
    sep : str, optional
        Field separator of a text file (default ``,``; ``\\s+`` for whitespace).
    date_format : str, optional
        ``strftime`` format of the date column (e.g. ``%Y%m%d``); ISO 8601 by default.
    observation_end : str or Timestamp, optional
        Last day of the observation window, included whole (:func:`observation_end_day`);
        transactions after it are dropped and counted. None takes the day of the last
        transaction, and the log records it: functions downstream read it from the log.
    time_unit : {"D", "W", "h"}
        Unit of the per-customer summaries built from the log (``TransactionLog.time_unit``).
    duplicate_rows : {"keep", "drop"}
        What to do with rows identical to an earlier row in every column.
    negative_amounts : {"drop", "keep"}
        What to do with rows whose amount is below zero (returns, refunds).
    zero_amounts : {"keep", "drop"}
        What to do with rows whose amount is exactly zero.
    encoding : str, optional
        Text encoding (``utf-8``, ``utf-8-sig``, ``utf-16``, ``latin-1``, ...); detected
        from the file by default (:func:`detect_encoding`).
    decimal : {".", ","}
        Decimal mark of the amounts; with ``","`` dots are thousands separators.
    timezone : str, optional
        Time zone to convert dates with a UTC offset to (``"Europe/Berlin"``). By default
        each purchase keeps its local calendar date (the offset is dropped), so an evening
        purchase is not moved to the next day.
    max_input_bytes : int, optional
        Refuse files larger than this; by default a file is refused when reading it would
        need more memory than is available.

    Returns
    -------
    TransactionLog
        The canonical transactions, the data-quality table and the window.

    Raises
    ------
    DataValidationError
        Missing or empty file, missing column, unparseable dates, missing customer ids,
        non-numeric amounts (or quantity / cost), an unknown rule, a binary or
        undecodable file, ragged rows (with the line number), a file too large for memory
        (:class:`InputTooLargeError`).

    Examples
    --------
    >>> from crm_lib.datasets import cdnow_master_path, CDNOW_COLUMN_MAP
    >>> log = load_transactions(cdnow_master_path(), column_map=CDNOW_COLUMN_MAP,
    ...                         sep=r"\\s+", date_format="%Y%m%d")
    >>> log.n_customers, log.n_transactions
    (23570, 69659)
    """
    from crm_lib.datasets import resolve_data_path
    from crm_lib.sources import parse_source

    source = parse_source(path)  # a warehouse table or query (crm_lib.sources), or None for a file
    path = source or (resolve_data_path(path) if str(path).startswith("embedded:") else Path(path))
    rules = {"duplicate_rows": duplicate_rows, "negative_amounts": negative_amounts, "zero_amounts": zero_amounts}
    check_data_rules(**rules)
    mapping = _column_mapping(column_map)
    raw = source.read() if source else _read_raw(path, sep, encoding=encoding, max_input_bytes=max_input_bytes)
    n = len(raw)
    if n == 0:
        raise _fail(path, f"the file has a header ({', '.join(map(str, raw.columns))}) but no rows; export the log again.")
    present_optional = _check_columns(raw, mapping, column_map, path)
    out, decimal_ids = _canonical_frame(raw, mapping, present_optional, path, date_format=date_format,
                                        timezone=timezone, decimal=decimal)
    # The one window rule (observation_end_day): the end is the last day included.
    end = observation_end_day(out["date"].max() if observation_end is None else observation_end)
    transactions, quality = _apply_rules(out, decimal_ids, end, **rules)
    if transactions.empty:
        raise _fail(
            path,
            f"no rows are left after the data rules (of {n:,} rows read); check observation_end "
            f"({end:%Y-%m-%d}) and the amount rules.",
        )
    logger.info("read %s: %d rows, %d used", path.name, n, len(transactions))
    return TransactionLog(transactions=transactions, quality=quality, path=path,
                          observation_start=out["date"].min(), observation_end=end, rows_read=n, rules=rules,
                          time_unit=time_unit)


def _column_mapping(column_map: dict[str, str] | None) -> dict[str, str]:
    """Canonical name -> column of the file: the required names under their own name, then ``column_map``."""
    unknown = set(column_map or {}) - set(REQUIRED_COLUMNS) - set(OPTIONAL_COLUMNS)
    if unknown:
        raise DataValidationError(
            f"column_map has unknown canonical name(s) {sorted(unknown)}; "
            f"use {', '.join(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)}."
        )
    return {**{name: name for name in REQUIRED_COLUMNS}, **(column_map or {})}


def _check_columns(raw: pd.DataFrame, mapping: dict[str, str], column_map: dict[str, str] | None,
                   path: Path) -> list[str]:
    """The optional canonical columns present in ``raw``; raises for a required or named column not found."""
    n = len(raw)
    for canonical in REQUIRED_COLUMNS:
        if mapping[canonical] not in raw.columns:
            raise _fail(
                path,
                f"column '{mapping[canonical]}' ({canonical}) not found in {n:,} rows; the file has columns "
                f"{list(map(str, raw.columns))}. Set column_map in params to name the {canonical} column"
                + (" (or check sep: one column means the separator is wrong)." if raw.shape[1] == 1 else "."),
            )
    present_optional = [c for c in OPTIONAL_COLUMNS if mapping.get(c, c) in raw.columns]
    for canonical in OPTIONAL_COLUMNS:
        if canonical in (column_map or {}) and canonical not in present_optional:
            raise _fail(
                path,
                f"column '{mapping[canonical]}' ({canonical}) is named in column_map but not found; the file has "
                f"columns {list(map(str, raw.columns))}. Fix column_map or remove the {canonical} entry.",
            )
    return present_optional


def _canonical_frame(raw: pd.DataFrame, mapping: dict[str, str], present_optional: list[str], path: Path, *,
                     date_format: str | None, timezone: str | None, decimal: str) -> tuple[pd.DataFrame, pd.Series]:
    """The file's rows under canonical names and types, and which ids were written as decimals."""
    n = len(raw)
    out = pd.DataFrame(index=raw.index)
    ids_text, decimal_ids = normalise_ids(raw[mapping["customer_id"]])
    missing_ids = ids_text.isna() | (ids_text == "")
    if missing_ids.any():
        first = int(np.flatnonzero(missing_ids.to_numpy())[0])
        raise _fail(
            path,
            f"column '{mapping['customer_id']}' (customer_id) is empty in {int(missing_ids.sum()):,} of {n:,} rows "
            f"(e.g. data row {first + 1:,}); drop those rows or fill in the customer ids.",
        )
    out["customer_id"] = ids_text.astype(str)
    out["date"] = _parse_dates(raw[mapping["date"]], path, mapping["date"], date_format, n, timezone)
    out["amount"] = _parse_numbers(raw[mapping["amount"]], path, mapping["amount"], "amount", n, decimal)
    for canonical in present_optional:
        column = mapping.get(canonical, canonical)
        if canonical == "channel":
            out["channel"] = raw[column].astype("string").fillna("(missing)").astype(str)
        else:
            out[canonical] = _parse_numbers(raw[column], path, column, canonical, n, decimal)
    return out, decimal_ids


def _apply_rules(out: pd.DataFrame, decimal_ids: pd.Series, end: pd.Timestamp, *, duplicate_rows: str,
                 negative_amounts: str, zero_amounts: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The transactions kept by the data rules and the window, and the data-quality table (:func:`quality_checks`)."""
    n = len(out)
    duplicated = out.duplicated(keep="first")
    negative = out["amount"] < 0
    zero = out["amount"] == 0
    late = out["date"] >= end + pd.Timedelta(days=1)
    keep = ~late
    if duplicate_rows == "drop":
        keep &= ~duplicated
    if negative_amounts == "drop":
        keep &= ~negative
    if zero_amounts == "drop":
        keep &= ~zero
    transactions = out[keep].sort_values(["customer_id", "date"], kind="stable").reset_index(drop=True)
    decimal_mask = pd.Series(decimal_ids.to_numpy(dtype=bool), index=out.index)
    masks = (None, decimal_mask, duplicated, negative, zero, late, None)
    counts = (n, None, None, None, None, None, len(transactions))
    rows = quality_checks(end, duplicate_rows=duplicate_rows, negative_amounts=negative_amounts,
                          zero_amounts=zero_amounts)
    checks = []
    for (check, rule), mask, count in zip(rows, masks, counts):
        rows_hit = int(mask.sum()) if mask is not None else int(count or 0)
        example = ""
        if mask is not None and rows_hit:
            # The data row number and values, not the customer id: reports never show real ids.
            position = int(np.flatnonzero(mask.to_numpy())[0])
            row = out.iloc[position]
            example = f"data row {position + 1:,}: {row['date']:%Y-%m-%d}, amount {row['amount']:g}"
        checks.append({"check": check, "rows": rows_hit, "share_of_rows": rows_hit / n, "example": example,
                       "rule": rule})
    return transactions, pd.DataFrame(checks)
