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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from crm_lib.exceptions import DataValidationError

logger = logging.getLogger(__name__)

#: Canonical column names used by every function of crm_lib.
REQUIRED_COLUMNS = ("customer_id", "date", "amount")
OPTIONAL_COLUMNS = ("quantity", "channel", "cost")
NUMERIC_COLUMNS = ("amount", "quantity", "cost")

DUPLICATE_RULES = ("keep", "drop")
NEGATIVE_RULES = ("drop", "keep")
ZERO_RULES = ("keep", "drop")

PARQUET_SUFFIXES = {".parquet", ".pq"}


@dataclass(frozen=True)
class TransactionLog:
    """A validated transaction log and what validation found.

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
        First transaction date and the end of the observation window.
    rows_read : int
        Rows in the file before any rule.
    """

    transactions: pd.DataFrame
    quality: pd.DataFrame
    path: Path
    observation_start: pd.Timestamp
    observation_end: pd.Timestamp
    rows_read: int
    rules: dict = field(default_factory=dict)

    @property
    def n_customers(self) -> int:
        """Number of distinct customers after the rules."""
        return int(self.transactions["customer_id"].nunique())

    @property
    def n_transactions(self) -> int:
        """Number of transactions (rows) after the rules."""
        return len(self.transactions)

    def summary(self) -> str:
        """A few lines for people: file, window, counts and what the rules changed."""
        lines = [
            f"Transaction log: {self.path.name}",
            f"  window       {self.observation_start:%Y-%m-%d} to {self.observation_end:%Y-%m-%d}",
            f"  rows read    {self.rows_read:,}",
            f"  rows used    {self.n_transactions:,}",
            f"  customers    {self.n_customers:,}",
        ]
        for _, row in self.quality.iterrows():
            if row["rows"] and row["check"] not in {"rows read", "rows used"}:
                lines.append(f"  {row['check']}: {row['rows']:,} ({row['rule']})")
        return "\n".join(lines)


def _fail(path: Path, message: str) -> DataValidationError:
    return DataValidationError(f"{path.name}: {message}")


def _read_raw(path: Path, sep: str | None) -> pd.DataFrame:
    if not path.exists():
        raise _fail(
            path,
            f"file not found (looked at {path}); check data_path in the params file "
            "(a relative path is read from the params file's folder).",
        )
    if path.is_dir():
        raise _fail(path, f"is a folder, not a file ({path}); point data_path at a CSV or Parquet file.")
    if path.stat().st_size == 0:
        raise _fail(path, "the file is empty (0 bytes); export the transaction log again.")
    if path.suffix.lower() in PARQUET_SUFFIXES:
        return pd.read_parquet(path)
    # Read as text: customer ids keep their leading zeros, and bad dates or amounts are
    # reported with the value as it stands in the file.
    try:
        return pd.read_csv(
            path,
            sep=sep or ",",
            dtype=str,
            keep_default_na=False,
            na_values=[""],
            engine="c" if sep in (None, ",", ";", "\t", "|", r"\s+") else "python",
        )
    except pd.errors.EmptyDataError:
        raise _fail(path, "the file has no header and no rows; export the transaction log again.") from None


def _example(values: pd.Series) -> str:
    return repr(values.iloc[0]) if len(values) else "''"


def _parse_dates(raw: pd.Series, path: Path, column: str, date_format: str | None, n: int) -> pd.Series:
    text = raw.astype("string") if raw.dtype == object or pd.api.types.is_string_dtype(raw) else None
    if text is None and pd.api.types.is_datetime64_any_dtype(raw):
        dates = raw
    else:
        dates = pd.to_datetime(
            raw if text is None else text.str.strip(),
            format=date_format or "ISO8601" if text is not None else None,
            errors="coerce",
        )
    bad = dates.isna()
    if bad.any():
        examples = raw[bad]
        missing = examples.isna().sum()
        raise _fail(
            path,
            f"column '{column}' has {int(bad.sum()):,} of {n:,} values that are not dates"
            + (f" ({missing:,} of them empty)" if missing else "")
            + f" (e.g. {_example(examples.dropna()) if missing < len(examples) else 'an empty cell'}); "
            + (
                f"the expected format is date_format={date_format!r}: fix the rows or change date_format in params."
                if date_format
                else "set date_format in params (e.g. '%Y%m%d' or '%d/%m/%Y') or fix the rows."
            ),
        )
    if getattr(dates.dt, "tz", None) is not None:
        dates = dates.dt.tz_convert("UTC").dt.tz_localize(None)
    return dates.astype("datetime64[ns]")


def _parse_numbers(raw: pd.Series, path: Path, column: str, canonical: str, n: int) -> pd.Series:
    if pd.api.types.is_numeric_dtype(raw):
        numbers = raw.astype(float)
        bad = numbers.isna()
    else:
        text = raw.astype("string").str.strip()
        numbers = pd.to_numeric(text, errors="coerce").astype(float)
        bad = numbers.isna() | ~np.isfinite(numbers.to_numpy(dtype=float, na_value=np.nan))
    if bad.any():
        examples = raw[bad]
        empty = int(examples.isna().sum())
        shown = _example(examples.dropna()) if empty < len(examples) else "an empty cell"
        raise _fail(
            path,
            f"column '{column}' ({canonical}) has {int(bad.sum()):,} of {n:,} values that are not numbers"
            + (f" ({empty:,} of them empty)" if empty else "")
            + f" (e.g. {shown}); remove currency symbols and thousands separators, use '.' for decimals, "
            "or drop the rows.",
        )
    return numbers


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
        Last day of the observation window; transactions after it are dropped and
        counted. Defaults to the last transaction date.
    duplicate_rows : {"keep", "drop"}
        What to do with rows identical to an earlier row in every column.
    negative_amounts : {"drop", "keep"}
        What to do with rows whose amount is below zero (returns, refunds).
    zero_amounts : {"keep", "drop"}
        What to do with rows whose amount is exactly zero.

    Returns
    -------
    TransactionLog
        The canonical transactions, the data-quality table and the window.

    Raises
    ------
    DataValidationError
        Missing or empty file, missing column, unparseable dates, missing customer ids,
        non-numeric amounts (or quantity / cost), or an unknown rule.

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
    for name, value, allowed in (
        ("duplicate_rows", duplicate_rows, DUPLICATE_RULES),
        ("negative_amounts", negative_amounts, NEGATIVE_RULES),
        ("zero_amounts", zero_amounts, ZERO_RULES),
    ):
        if value not in allowed:
            raise DataValidationError(f"{name}={value!r} is not a rule; use one of {', '.join(allowed)}.")
    mapping = {name: name for name in REQUIRED_COLUMNS}
    unknown = set(column_map or {}) - set(REQUIRED_COLUMNS) - set(OPTIONAL_COLUMNS)
    if unknown:
        raise DataValidationError(
            f"column_map has unknown canonical name(s) {sorted(unknown)}; "
            f"use {', '.join(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)}."
        )
    mapping.update(column_map or {})

    raw = source.read() if source else _read_raw(path, sep)
    n = len(raw)
    if n == 0:
        raise _fail(path, f"the file has a header ({', '.join(map(str, raw.columns))}) but no rows; export the log again.")
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

    out = pd.DataFrame(index=raw.index)
    ids = raw[mapping["customer_id"]]
    ids_text = ids.astype("string").str.strip()
    missing_ids = ids_text.isna() | (ids_text == "")
    if missing_ids.any():
        first = int(np.flatnonzero(missing_ids.to_numpy())[0])
        raise _fail(
            path,
            f"column '{mapping['customer_id']}' (customer_id) is empty in {int(missing_ids.sum()):,} of {n:,} rows "
            f"(e.g. data row {first + 1:,}); drop those rows or fill in the customer ids.",
        )
    out["customer_id"] = ids_text.astype(str)
    out["date"] = _parse_dates(raw[mapping["date"]], path, mapping["date"], date_format, n)
    out["amount"] = _parse_numbers(raw[mapping["amount"]], path, mapping["amount"], "amount", n)
    for canonical in present_optional:
        column = mapping.get(canonical, canonical)
        if canonical == "channel":
            out["channel"] = raw[column].astype("string").fillna("(missing)").astype(str)
        else:
            out[canonical] = _parse_numbers(raw[column], path, column, canonical, n)

    observation_start = out["date"].min()
    last_date = out["date"].max()
    if observation_end is None:
        end = last_date.normalize()
    else:
        end = pd.Timestamp(observation_end)
        if pd.isna(end):
            raise DataValidationError(f"observation_end={observation_end!r} is not a date; use YYYY-MM-DD.")
    # A date-only end covers the whole day.
    end_exclusive = end.normalize() + pd.Timedelta(days=1) if end == end.normalize() else end

    checks = []

    def record(check: str, mask: pd.Series | None, rule: str, count: int | None = None) -> None:
        rows = int(mask.sum()) if mask is not None else int(count or 0)
        example = ""
        if mask is not None and rows:
            # The data row number and values, not the customer id: reports never show real ids.
            position = int(np.flatnonzero(mask.to_numpy())[0])
            row = out.iloc[position]
            example = f"data row {position + 1:,}: {row['date']:%Y-%m-%d}, amount {row['amount']:g}"
        checks.append({"check": check, "rows": rows, "share_of_rows": rows / n, "example": example, "rule": rule})

    record("rows read", None, "", count=n)
    duplicated = out.duplicated(keep="first")
    record(
        "exact duplicate rows",
        duplicated,
        "kept: no order id tells a double export from two identical orders"
        if duplicate_rows == "keep"
        else "dropped (first copy kept)",
    )
    negative = out["amount"] < 0
    record("negative amounts (returns)", negative, "dropped" if negative_amounts == "drop" else "kept")
    zero = out["amount"] == 0
    record("zero amounts", zero, "kept as purchases with no revenue" if zero_amounts == "keep" else "dropped")
    late = out["date"] >= end_exclusive
    record(f"after observation end ({end:%Y-%m-%d})", late, "dropped")

    keep = ~late
    if duplicate_rows == "drop":
        keep &= ~duplicated
    if negative_amounts == "drop":
        keep &= ~negative
    if zero_amounts == "drop":
        keep &= ~zero
    transactions = out[keep].sort_values(["customer_id", "date"], kind="stable").reset_index(drop=True)
    record("rows used", None, "", count=len(transactions))
    if transactions.empty:
        raise _fail(
            path,
            f"no rows are left after the data rules (of {n:,} rows read); check observation_end "
            f"({end:%Y-%m-%d}) and the amount rules.",
        )
    quality = pd.DataFrame(checks)
    logger.info("read %s: %d rows, %d used", path.name, n, len(transactions))
    return TransactionLog(
        transactions=transactions,
        quality=quality,
        path=path,
        observation_start=observation_start,
        observation_end=end,
        rows_read=n,
        rules={
            "duplicate_rows": duplicate_rows,
            "negative_amounts": negative_amounts,
            "zero_amounts": zero_amounts,
        },
    )
