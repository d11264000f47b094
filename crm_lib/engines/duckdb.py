"""Out-of-core summary, calibration/holdout split, KPIs, cohorts and data quality with DuckDB.

DuckDB reads the CSV or Parquet file (or a warehouse extract saved as Parquet) itself,
streams it through its operators and spills to disk when a ``memory_limit`` is reached,
so a log larger than memory never becomes a pandas frame. What comes back to Python is
small: per-customer summaries (or only their distinct (frequency, recency, T) rows with
counts), KPI and cohort tables, and the data-quality counts.

Every number follows the pandas definitions exactly (tests compare at 1e-12):

- :func:`rfm_summary` / :func:`calibration_holdout_summary` as :mod:`crm_lib.summary`
  (lifetimes' definitions: purchases in one period merged, their amounts summed);
- :func:`headline_kpis`, :func:`activity_by_period`, :func:`cohort_sizes`,
  :func:`cohort_retention` as :mod:`crm_lib.kpi`;
- :attr:`DuckDBLog.quality` as the data-quality table of
  :func:`crm_lib.data.load_transactions` (rows read, duplicates, negative and zero
  amounts, rows after the observation end, rows used), with the same rules.

Model fits stay in numpy on collapsed rows (:func:`collapsed_histories`,
:func:`collapsed_spend`); :func:`score_customers` predicts once per distinct history
and joins the predictions back to every customer inside DuckDB.

Example
-------
>>> log = open_log("transactions.parquet", memory_limit="2GB")        # doctest: +SKIP
>>> rows = collapsed_histories(log, time_unit="W")                     # doctest: +SKIP
>>> fit = fit_model(rows, "bg_nbd", weights=rows["weight"])            # doctest: +SKIP
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from crm_lib.data import (
    DECIMAL_MARKS,
    DEFAULT_TIME_UNIT,
    OPTIONAL_COLUMNS,
    REQUIRED_COLUMNS,
    TIME_UNITS,
    ObservationWindow,
    check_data_rules,
    observation_end_day,
    quality_checks,
)
from crm_lib.data import end_period as _period_number  # the one rule: the period holding the last instant of the day
from crm_lib.engines.scoring import score_histories, score_spend
from crm_lib.exceptions import DataValidationError
from crm_lib.kpi import PERIODS, HeadlineKPIs, _check_period

logger = logging.getLogger(__name__)

__all__ = [
    "DuckDBLog",
    "open_log",
    "rfm_summary",
    "calibration_holdout_summary",
    "collapsed_histories",
    "collapsed_spend",
    "score_customers",
    "headline_kpis",
    "activity_by_period",
    "cohort_sizes",
    "cohort_retention",
]

PARQUET_SUFFIXES = {".parquet", ".pq"}
INTEGER_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT")
FLOAT_TYPES = ("DOUBLE", "FLOAT", "REAL", "DECIMAL")
NUMERIC_TYPES = INTEGER_TYPES + FLOAT_TYPES


def _quote(name: str) -> str:
    return '"' + str(name).replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + str(text).replace("'", "''") + "'"


@dataclass
class DuckDBLog:
    """A validated transaction log held by DuckDB (never loaded into pandas).

    Attributes
    ----------
    connection : duckdb.DuckDBPyConnection
        The connection that owns the view ``transactions`` (canonical columns
        ``customer_id`` VARCHAR, ``date`` TIMESTAMP, ``amount`` DOUBLE, and the optional
        ones present), with the data rules applied.
    quality : DataFrame
        Data-quality counts: ``check``, ``rows``, ``share_of_rows`` and ``rule``, as in
        :attr:`crm_lib.data.TransactionLog.quality` (without the example column).
    observation_start, observation_end : Timestamp
        First transaction date and the last day of the window (included), by the one
        window rule :func:`crm_lib.data.observation_end_day`, as in
        :class:`crm_lib.data.TransactionLog`.
    rows_read : int
    name : str
        File name, for messages.
    time_unit : {"D", "W", "h"}
        Default unit of the summaries built from this log (``TransactionLog.time_unit``).
    """

    connection: duckdb.DuckDBPyConnection
    quality: pd.DataFrame
    observation_start: pd.Timestamp
    observation_end: pd.Timestamp
    rows_read: int
    name: str
    table: str = "transactions"
    summaries: dict = field(default_factory=dict, repr=False)
    time_unit: str = DEFAULT_TIME_UNIT

    @property
    def window(self) -> ObservationWindow:
        """The observation window (start, last day included, time unit), as ``TransactionLog.window``."""
        return ObservationWindow(self.observation_start, self.observation_end, self.time_unit)

    def sql(self, query: str) -> duckdb.DuckDBPyRelation:
        """Run SQL on the log's connection (the log is the view ``transactions``)."""
        return self.connection.sql(query)

    @property
    def n_transactions(self) -> int:
        """Rows after the data rules."""
        return int(_scalar(self.connection, f"SELECT count(*) FROM {self.table}"))

    @property
    def n_customers(self) -> int:
        """Distinct customers after the data rules."""
        return int(_scalar(self.connection, f"SELECT count(DISTINCT customer_id) FROM {self.table}"))


def _reader(path: Path, sep: str | None, encoding: str | None = None) -> str:
    if path.suffix.lower() in PARQUET_SUFFIXES or path.is_dir():
        target = str(path / "**" / "*.parquet") if path.is_dir() else str(path)
        return f"read_parquet({_literal(target)})"
    if sep in (r"\s+", " "):
        raise DataValidationError(
            f"{path.name}: the DuckDB engine reads delimited files with one separator character, not "
            f"sep={sep!r}; convert the file to Parquet or CSV first (crm_lib.data.load_transactions reads it)."
        )
    delim = sep or ","
    encoding_option = f", encoding={_literal(encoding)}" if encoding else ""
    return f"read_csv({_literal(str(path))}, delim={_literal(delim)}, header=true, all_varchar=true{encoding_option})"


def _scalar(con: duckdb.DuckDBPyConnection, query: str):
    return con.execute(query).fetchall()[0][0]


def _check_values(con, name: str, where: str, column: str, canonical: str, what: str, advice: str, n: int) -> None:
    bad = _scalar(con, f"SELECT count(*) FROM canonical_input WHERE {where}")
    if bad:
        example = _scalar(con, f"SELECT raw_{canonical} FROM canonical_input WHERE {where} LIMIT 1")
        raise DataValidationError(
            f"{name}: column '{column}' ({canonical}) has {bad:,} of {n:,} values that are not {what} "
            f"(e.g. {example!r}); {advice}"
        )


def _id_sql(column: str, column_type: str) -> tuple[str, str]:
    """Customer id and "written as a decimal" flag, as :func:`crm_lib.data.normalise_ids`.

    Integer ids stay integers (cheaper to group; shown as text). A float column's whole
    values become integers (every one is flagged, as pandas does); text ``1.0`` becomes
    ``1``; leading zeros are kept.
    """
    if column_type.startswith(INTEGER_TYPES):
        return column, "FALSE"
    if column_type.startswith(FLOAT_TYPES):
        whole = f"({column} = floor({column}))"
        return (f"CASE WHEN {whole} THEN CAST(CAST({column} AS HUGEINT) AS VARCHAR) ELSE CAST({column} AS VARCHAR) END",
                f"coalesce({whole}, FALSE)")
    text = f"trim(CAST({column} AS VARCHAR))"
    decimal = f"coalesce(regexp_full_match({text}, '-?\\d+\\.0+'), FALSE)"
    return f"CASE WHEN {decimal} THEN regexp_replace({text}, '\\.0+$', '') ELSE {text} END", decimal


def _text_number_sql(column: str, decimal: str) -> str:
    """Text to DOUBLE as :func:`crm_lib.data._parse_numbers` (with ``decimal=","``, dots are thousands separators)."""
    text = f"trim(CAST({column} AS VARCHAR))"
    if decimal == ",":
        text = f"replace(CASE WHEN contains({text}, ',') THEN replace({text}, '.', '') ELSE {text} END, ',', '.')"
    return f"TRY_CAST({text} AS DOUBLE)"


# A UTC offset at the end of a time (crm_lib.data._to_datetime): dropped, the local calendar date is kept.
_OFFSET = r"(\d{2}:\d{2}(:\d{2}(\.\d+)?)?)\s*(Z|UTC|GMT|[+-]\d{2}:?\d{2})$"


def _canonical_view(con, path: Path, sep, column_map, date_format, decimal=".", encoding=None) -> tuple[dict, list[str]]:
    """Views ``raw_input`` (the file) and ``canonical_input`` (canonical names and types, NULL where unparsable)."""
    con.execute(f"CREATE OR REPLACE VIEW raw_input AS SELECT * FROM {_reader(path, sep, encoding)}")
    columns = [row[0] for row in con.sql("DESCRIBE raw_input").fetchall()]
    mapping = {name: name for name in REQUIRED_COLUMNS + OPTIONAL_COLUMNS}
    mapping.update(column_map or {})
    for canonical in REQUIRED_COLUMNS:
        if mapping[canonical] not in columns:
            raise DataValidationError(
                f"{path.name}: column '{mapping[canonical]}' ({canonical}) not found; the file has columns "
                f"{columns}. Set column_map in params to name the {canonical} column."
            )
    optional = [c for c in OPTIONAL_COLUMNS if mapping[c] in columns]
    types = dict(con.sql("SELECT column_name, column_type FROM (DESCRIBE raw_input)").fetchall())
    date_col = _quote(mapping["date"])
    date_text = f"regexp_replace(trim(CAST({date_col} AS VARCHAR)), {_literal(_OFFSET)}, '\\1')"
    if types[mapping["date"]].startswith("TIMESTAMP WITH TIME ZONE"):
        raise DataValidationError(
            f"{path.name}: column '{mapping['date']}' holds timestamps with a time zone; the DuckDB engine reads "
            "local (naive) timestamps only. Store local times, or read the file with crm_lib.data.load_transactions."
        )
    if types[mapping["date"]].startswith(("TIMESTAMP", "DATE")):
        date_expr = f"CAST({date_col} AS TIMESTAMP)"
    elif date_format:
        date_expr = f"try_strptime({date_text}, {_literal(date_format)})"
    else:
        date_expr = f"TRY_CAST({date_text} AS TIMESTAMP)"

    def number(column: str) -> str:
        # Numbers stored as numbers are used as they are; text is parsed (bad values become NULL and are reported).
        if types[column].startswith(NUMERIC_TYPES):
            return f"CAST({_quote(column)} AS DOUBLE)"
        return _text_number_sql(_quote(column), decimal)

    id_expr, decimal_id = _id_sql(_quote(mapping["customer_id"]), types[mapping["customer_id"]])
    select = [
        f"{id_expr} AS customer_id",
        f"{decimal_id} AS decimal_id",
        f"{date_expr} AS date",
        f"{number(mapping['amount'])} AS amount",
        f"CAST({date_col} AS VARCHAR) AS raw_date",
        f"CAST({_quote(mapping['amount'])} AS VARCHAR) AS raw_amount",
    ]
    for canonical in optional:
        column = mapping[canonical]
        select.append(f"coalesce(CAST({_quote(column)} AS VARCHAR), '(missing)') AS channel" if canonical == "channel"
                      else f"{number(column)} AS {canonical}")
    con.execute(f"CREATE OR REPLACE VIEW canonical_input AS SELECT {', '.join(select)} FROM raw_input")
    return mapping, optional


def open_log(
    path: str | Path,
    *,
    # The keywords of crm_lib.data.load_transactions, with the same defaults:
    column_map: dict[str, str] | None = None, sep: str | None = None, date_format: str | None = None,
    observation_end: str | pd.Timestamp | None = None,
    duplicate_rows: str = "keep", negative_amounts: str = "drop", zero_amounts: str = "keep",
    time_unit: str = DEFAULT_TIME_UNIT, encoding: str | None = None, decimal: str = ".", timezone: str | None = None,
    # DuckDB's own:
    connection: duckdb.DuckDBPyConnection | None = None, memory_limit: str | None = None,
    temp_directory: str | Path | None = None, threads: int | None = None,
) -> DuckDBLog:
    """Open a CSV or Parquet transaction log in DuckDB, validate it and apply the data rules.

    The keywords mean what they mean in :func:`crm_lib.data.load_transactions`
    (``column_map``, ``sep``, ``date_format``, ``observation_end``, the three rules,
    ``time_unit``, ``encoding`` and ``decimal``), and the result is the same: ids
    normalised (``1.0`` is customer ``1``), the same data-quality rows, the same window
    (the last day included, :func:`crm_lib.data.observation_end_day`). Nothing is read
    into Python: the file stays on disk and every later query streams it.

    Parameters
    ----------
    path : str or Path
        A CSV file (any single-character separator, optionally gzip-compressed), a
        Parquet file, a folder of Parquet files (a partitioned extract), or a warehouse
        ``data_path`` (``postgresql:schema.table`` or a query, see :mod:`crm_lib.sources`),
        streamed into an extract file first.
    connection : duckdb connection, optional
        Reuse a connection (for example a file database for very large logs).
    memory_limit : str, optional
        DuckDB's ``memory_limit`` (``"2GB"``): past it, operators spill to ``temp_directory``.
    temp_directory : str or Path, optional
        Where DuckDB spills.
    threads : int, optional
        Worker threads (DuckDB uses every core by default).

    Returns
    -------
    DuckDBLog

    Raises
    ------
    DataValidationError
        Missing file or column, empty customer ids, dates or amounts that do not parse,
        an unknown rule, or no rows left after the rules; a ``timezone`` (converting
        offsets to a zone is done by :func:`crm_lib.data.load_transactions` only).
    """
    from crm_lib.sources import parse_source

    source = parse_source(str(path))  # a PostgreSQL table or query: read its extract
    path = source.extract() if source else Path(path)
    _check_options(path, duplicate_rows, negative_amounts, zero_amounts, decimal, time_unit, timezone)
    con = connection or duckdb.connect()
    for setting, value in (("memory_limit", memory_limit), ("temp_directory", temp_directory), ("threads", threads)):
        if value is not None:
            con.execute(f"SET {setting} = {_literal(str(value))}")
    mapping, optional = _canonical_view(con, path, sep, column_map, date_format, decimal, encoding)
    end = observation_end_day(observation_end) if observation_end is not None else None  # the one window rule
    late = f"date >= TIMESTAMP {_literal(str(end + pd.Timedelta(days=1)))}" if end is not None else "FALSE"
    keep = [f"NOT ({late})"] + (["amount >= 0"] if negative_amounts == "drop" else []) + \
        (["amount <> 0"] if zero_amounts == "drop" else [])
    counts = _scan_and_check(con, path.name, mapping, late, " AND ".join(keep))
    end = observation_end_day(counts["last"]) if end is None else end  # no end given: the last purchase's day
    canonical_columns = ", ".join(["customer_id", "date", "amount"] + optional)
    distinct_rows = _scalar(con, f"SELECT count(*) FROM (SELECT DISTINCT {canonical_columns} FROM canonical_input)")
    body = f"SELECT {canonical_columns} FROM canonical_input WHERE {' AND '.join(keep)}"
    if duplicate_rows == "drop":
        body = f"SELECT DISTINCT * FROM ({body})"
    con.execute(f"CREATE OR REPLACE VIEW transactions AS {body}")
    used = int(_scalar(con, "SELECT count(*) FROM transactions")) if duplicate_rows == "drop" else counts["kept"]
    n = counts["n"]
    if used == 0:
        raise DataValidationError(
            f"{path.name}: no rows are left after the data rules (of {n:,} rows read); check observation_end "
            f"({end:%Y-%m-%d}) and the amount rules."
        )
    values = (n, counts["decimal_ids"], n - distinct_rows, counts["negative"], counts["zero"], counts["late"], used)
    checks = quality_checks(end, duplicate_rows=duplicate_rows, negative_amounts=negative_amounts,
                            zero_amounts=zero_amounts)
    quality = pd.DataFrame([(check, count, rule) for (check, rule), count in zip(checks, values)],
                           columns=["check", "rows", "rule"])
    quality.insert(2, "share_of_rows", quality["rows"] / n)
    logger.info("duckdb: %s, %d rows read, %d used", path.name, n, used)
    return DuckDBLog(con, quality, pd.Timestamp(counts["start"]), end, n, path.name, time_unit=time_unit)


def _check_options(path: Path, duplicate_rows, negative_amounts, zero_amounts, decimal, time_unit, timezone) -> None:
    """The rules, decimal mark, time unit and time zone of :func:`open_log`, and that the file exists."""
    check_data_rules(duplicate_rows=duplicate_rows, negative_amounts=negative_amounts, zero_amounts=zero_amounts)
    if decimal not in DECIMAL_MARKS:
        raise DataValidationError(f"decimal={decimal!r} is not a decimal mark; use '.' or ','.")
    if time_unit not in TIME_UNITS:
        raise DataValidationError(f"time_unit={time_unit!r} is not supported; use one of {', '.join(TIME_UNITS)}.")
    if timezone:
        raise DataValidationError(
            f"timezone={timezone!r}: the DuckDB engine keeps each purchase's local calendar date and does not "
            "convert time zones; leave timezone empty, or read the log with crm_lib.data.load_transactions."
        )
    if not path.exists():
        raise DataValidationError(f"{path.name}: file not found (looked at {path}); check data_path.")


def _scan_and_check(con, name: str, mapping: dict, late: str, keep: str) -> dict:
    """One scan for every data-quality count; raise on empty files, missing ids, bad dates or amounts."""
    keys = ("n", "missing", "decimal_ids", "bad_dates", "bad_amounts", "start", "last", "negative", "zero", "late",
            "kept")
    counts = dict(zip(keys, con.execute(f"""
        SELECT count(*), count(*) FILTER (WHERE customer_id IS NULL OR CAST(customer_id AS VARCHAR) = ''),
               count(*) FILTER (WHERE decimal_id),
               count(*) FILTER (WHERE date IS NULL), count(*) FILTER (WHERE amount IS NULL OR NOT isfinite(amount)),
               min(date), max(date), count(*) FILTER (WHERE amount < 0), count(*) FILTER (WHERE amount = 0),
               count(*) FILTER (WHERE {late}), count(*) FILTER (WHERE {keep})
        FROM canonical_input""").fetchall()[0]))
    n = counts["n"]
    if n == 0:
        raise DataValidationError(f"{name}: the file has a header but no rows; export the log again.")
    if counts["missing"]:
        raise DataValidationError(
            f"{name}: column '{mapping['customer_id']}' (customer_id) is empty in {counts['missing']:,} of {n:,} "
            "rows; drop those rows or fill in the customer ids."
        )
    if counts["bad_dates"]:
        _check_values(con, name, "date IS NULL", mapping["date"], "date", "dates",
                      "set date_format in params or fix the rows.", n)
    if counts["bad_amounts"]:
        _check_values(con, name, "amount IS NULL OR NOT isfinite(amount)", mapping["amount"], "amount",
                      "numbers", "remove currency symbols and thousands separators, use '.' for decimals, or drop "
                      "the rows.", n)
    counts["kept"] = int(counts["kept"])
    return counts


# ---------------------------------------------------------------------------------------
# Summaries (definitions of crm_lib.summary / lifetimes.utils)
# ---------------------------------------------------------------------------------------


def _period_sql(time_unit: str, column: str = "date") -> str:
    """SQL for crm_lib.summary.period_numbers: days or hours since 1970, or pandas 'W' weeks."""
    if time_unit not in TIME_UNITS:
        raise ValueError(f"time_unit={time_unit!r} is not supported; use one of {', '.join(TIME_UNITS)}.")
    days = f"(CAST({column} AS DATE) - DATE '1970-01-01')"
    if time_unit == "D":
        return days
    if time_unit == "h":
        return f"CAST(floor(epoch_us({column}) / 3600000000.0) AS BIGINT)"
    # 1970-01-01 was a Thursday: shift 3 days so that weeks run Monday to Sunday.
    return f"CAST(floor(({days} + 3) / 7.0) AS BIGINT)"


def _summary_sql(log: DuckDBLog, end_period: int, time_unit: str, unit_multiplier: float,
                 include_first_transaction: bool, where: str = "TRUE") -> str:
    count = "count(*)" if include_first_transaction else "(count(*) - 1)"
    # Same arithmetic as crm_lib.summary: total of the merged periods minus the first one.
    total = "fsum(amount)" if include_first_transaction else "(fsum(amount) - arg_min(amount, period))"
    return f"""
        WITH merged AS (
            SELECT customer_id, {_period_sql(time_unit)} AS period, fsum(amount) AS amount
            FROM {log.table} WHERE {where} GROUP BY ALL
        )
        SELECT customer_id,
               CAST({count} AS DOUBLE) AS frequency,
               (max(period) - min(period)) / {float(unit_multiplier)!r} AS recency,
               ({end_period} - min(period)) / {float(unit_multiplier)!r} AS T,
               CASE WHEN {count} > 0 THEN {total} / {count} ELSE 0.0 END AS monetary_value
        FROM merged WHERE period <= {end_period}
        GROUP BY customer_id"""


def _window_end(log: DuckDBLog, observation_end, what: str) -> pd.Timestamp:
    """The log's last day of observation; an ``observation_end`` must agree (as :func:`crm_lib.data.resolve_window`)."""
    if observation_end is not None and observation_end_day(observation_end) != log.observation_end:
        raise DataValidationError(
            f"{what}: observation_end={observation_end!r} differs from the log's window end "
            f"({log.observation_end:%Y-%m-%d}); pass the log alone (its window is the rule), or open it "
            "again with that observation_end."
        )
    return log.observation_end


def _end_period(log: DuckDBLog, observation_end, time_unit: str, what: str = "rfm_summary") -> int:
    return _period_number(_window_end(log, observation_end, what), time_unit)


def rfm_summary(
    log: DuckDBLog,
    *,
    observation_end: str | pd.Timestamp | None = None,
    time_unit: str | None = None,
    unit_multiplier: float = 1,
    include_first_transaction: bool = False,
    amount: bool = True,
) -> pd.DataFrame:
    """Frequency, recency, T and mean repeat spend of every customer, computed by DuckDB.

    Same definitions, arguments and output as :func:`crm_lib.summary.rfm_summary`
    (indexed by customer id, sorted). For a base too large for a per-customer frame in
    memory, use :func:`collapsed_histories` and :func:`score_customers` instead.
    ``time_unit`` defaults to the log's; ``observation_end``, when given, must be the
    log's window end.
    """
    time_unit = time_unit or log.time_unit
    end_period = _end_period(log, observation_end, time_unit)
    query = _summary_sql(log, end_period, time_unit, unit_multiplier, include_first_transaction)
    out = log.sql(query + " ORDER BY CAST(customer_id AS VARCHAR)").df().set_index("customer_id")
    out.index = pd.Index(out.index.astype(str), name="customer_id")
    return (out if amount else out.drop(columns="monetary_value")).astype(float)


def calibration_holdout_summary(
    log: DuckDBLog,
    *,
    calibration_end: str | pd.Timestamp | None = None,
    observation_end: str | pd.Timestamp | None = None,
    time_unit: str | None = None,
    unit_multiplier: float = 1,
) -> pd.DataFrame:
    """Calibration summary and holdout repeat purchases, as :func:`crm_lib.summary.calibration_holdout_summary`.

    Raises
    ------
    DataValidationError
        When the calibration or the holdout period holds no purchase.
    """
    time_unit = time_unit or log.time_unit
    observation_end = _window_end(log, observation_end, "calibration_holdout_summary")
    first = pd.Timestamp(_scalar(log.connection, f"SELECT min(date) FROM {log.table}"))
    if calibration_end is None:
        calibration_end = ObservationWindow(first, observation_end).midpoint()
    calibration_end = observation_end_day(calibration_end)  # the calibration period includes its last day whole
    if observation_end <= calibration_end:
        raise DataValidationError(
            f"calibration_end ({calibration_end:%Y-%m-%d}) must be before observation_end "
            f"({observation_end:%Y-%m-%d}); move calibration_end earlier in params."
        )
    calibration_stop = _literal(str(calibration_end + pd.Timedelta(days=1)))
    cal_where = f"date < TIMESTAMP {calibration_stop}"
    hold_where = (f"date >= TIMESTAMP {calibration_stop} "
                  f"AND date < TIMESTAMP {_literal(str(observation_end + pd.Timedelta(days=1)))}")
    counts = log.connection.execute(f"SELECT count(*) FILTER (WHERE {cal_where}), count(*) FILTER (WHERE {hold_where}) "
                     f"FROM {log.table}").fetchall()[0]
    if not counts[0]:
        raise DataValidationError(
            f"no purchase on or before calibration_end ({calibration_end:%Y-%m-%d}); the data start on "
            f"{first:%Y-%m-%d}. Move calibration_end later in params."
        )
    if not counts[1]:
        raise DataValidationError(
            f"no purchase after calibration_end ({calibration_end:%Y-%m-%d}) up to observation_end "
            f"({observation_end:%Y-%m-%d}); move calibration_end earlier in params."
        )
    cal_period = _period_number(calibration_end, time_unit)
    calibration = _summary_sql(log, cal_period, time_unit, unit_multiplier, False, where=cal_where)
    duration = (_period_number(observation_end, time_unit) - cal_period) / unit_multiplier
    query = f"""
        WITH cal AS ({calibration}),
        hold AS (
            SELECT customer_id, count(DISTINCT {_period_sql(time_unit)}) AS periods,
                   sum(amount) AS total, count(*) AS n
            FROM {log.table} WHERE {hold_where} GROUP BY customer_id
        )
        SELECT cal.customer_id, frequency AS frequency_cal, recency AS recency_cal, T AS T_cal,
               monetary_value AS monetary_value_cal,
               CAST(coalesce(hold.periods, 0) AS DOUBLE) AS frequency_holdout,
               coalesce(hold.total / hold.n, 0.0) AS monetary_value_holdout,
               {float(duration)!r} AS duration_holdout
        FROM cal LEFT JOIN hold USING (customer_id) ORDER BY CAST(cal.customer_id AS VARCHAR)"""
    out = log.sql(query).df().set_index("customer_id")
    out.index = pd.Index(out.index.astype(str), name="customer_id")
    return out.astype(float)


def _summary_table(log: DuckDBLog, observation_end, time_unit: str, unit_multiplier: float) -> str:
    """Name of a temporary table with the per-customer summary, computed once per (end, unit)."""
    time_unit = time_unit or log.time_unit
    end_period = _end_period(log, observation_end, time_unit)
    key = (end_period, time_unit, float(unit_multiplier))
    if key not in log.summaries:
        name = f"customer_summary_{len(log.summaries)}"
        log.connection.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS "
                               f"{_summary_sql(log, end_period, time_unit, unit_multiplier, False)}")
        log.summaries[key] = name
    return log.summaries[key]


def _collapsed(name: str, columns: str, where: str, doc: str):
    """A public function returning the distinct ``columns`` rows of the summary with their counts."""

    def collapsed(
        log: DuckDBLog,
        *,
        observation_end: str | pd.Timestamp | None = None,
        time_unit: str | None = None,
        unit_multiplier: float = 1,
    ) -> pd.DataFrame:
        summary = _summary_table(log, observation_end, time_unit, unit_multiplier)
        return log.sql(f"SELECT {columns}, CAST(count(*) AS DOUBLE) AS weight FROM {summary} "
                       f"WHERE {where} GROUP BY ALL ORDER BY ALL").df()

    collapsed.__name__ = collapsed.__qualname__ = name
    collapsed.__doc__ = doc
    return collapsed


collapsed_histories = _collapsed("collapsed_histories", "frequency, recency, T", "TRUE", """\
Distinct (frequency, recency, T) rows of the summary with the number of customers behind each.

    The BTYD likelihood depends on a customer only through (x, t_x, T), so a fit on
    these rows with ``weights=weight`` equals the fit on every customer (what
    :func:`crm_lib.clv.collapse_histories` does in memory), and a base of millions of
    customers reduces to a few thousand rows when time is counted in weeks.

    Parameters
    ----------
    log : DuckDBLog
    observation_end, time_unit, unit_multiplier
        As in :func:`rfm_summary`.

    Returns
    -------
    DataFrame
        ``frequency``, ``recency``, ``T``, ``weight`` (float), sorted by the first three.
    """)

collapsed_spend = _collapsed("collapsed_spend", "frequency, monetary_value", "frequency > 0", """\
Distinct (frequency, monetary_value) pairs of repeat buyers with their counts, for the Gamma-Gamma fit.

    Same arguments as :func:`collapsed_histories`. Returns a DataFrame with ``frequency``,
    ``monetary_value`` and ``weight``, repeat buyers only (frequency > 0), sorted.
    """)


def score_customers(
    log: DuckDBLog,
    transaction_model,
    spend_model,
    *,
    observation_end: str | pd.Timestamp | None = None,
    time_unit: str | None = None,
    horizon_periods: float = 52,
    horizon_months: int = 12,
    discount_rate_monthly: float = 0.01,
    gross_margin: float = 1.0,
    output: str | Path | None = None,
) -> pd.DataFrame | Path:
    """P(alive), expected purchases, expected spend and CLV of every customer, joined inside DuckDB.

    Predictions are computed once per distinct (frequency, recency, T) row and once per
    distinct (frequency, monetary_value) pair, in numpy with the fitted models' own
    methods, and joined back to every customer by DuckDB; the values equal
    :func:`crm_lib.clv.customer_value_table` (gross_margin x spend x discounted purchases).

    Parameters
    ----------
    transaction_model, spend_model
        Fitted BTYD model and Gamma-Gamma model (:func:`crm_lib.clv.fit_model`,
        :func:`crm_lib.clv.fit_spend_model` or their ``fit(..., weights=...)``).
    output : str or Path, optional
        Write the per-customer table to this Parquet file (never materialised in
        pandas) and return its path; by default return a DataFrame indexed by customer id.

    Returns
    -------
    DataFrame or Path
    """
    con = log.connection
    time_unit = time_unit or log.time_unit
    summary = _summary_table(log, observation_end, time_unit, 1)
    histories = score_histories(
        con.sql(f"SELECT DISTINCT frequency, recency, T FROM {summary}").df(), transaction_model,
        horizon_periods=horizon_periods, horizon_months=horizon_months, discount_rate_monthly=discount_rate_monthly,
        time_unit=time_unit)
    spend = score_spend(con.sql(f"SELECT DISTINCT frequency, monetary_value FROM {summary}").df(), spend_model)
    con.register("history_predictions", histories)
    con.register("spend_predictions", spend)
    query = f"""
        SELECT s.customer_id, s.frequency, s.recency, s.T, s.monetary_value, h.p_alive, h.expected_purchases,
               p.expected_spend_per_purchase,
               {float(gross_margin)!r} * p.expected_spend_per_purchase * h.discounted_purchases AS clv
        FROM {summary} s
        JOIN history_predictions h USING (frequency, recency, T)
        JOIN spend_predictions p USING (frequency, monetary_value)"""
    try:
        if output is not None:
            con.execute(f"COPY ({query}) TO {_literal(str(output))} (FORMAT PARQUET)")
            return Path(output)
        out = con.sql(query + " ORDER BY CAST(customer_id AS VARCHAR)").df().set_index("customer_id")
        out.index = pd.Index(out.index.astype(str), name="customer_id")
        return out
    finally:
        con.unregister("history_predictions")
        con.unregister("spend_predictions")


# ---------------------------------------------------------------------------------------
# KPIs and cohorts (definitions of crm_lib.kpi)
# ---------------------------------------------------------------------------------------


def _ordinal_sql(period: str, column: str = "date") -> str:
    """pandas Period ordinal of ``column`` for W (Monday-Sunday), M, Q and Y."""
    _check_period(period)
    if period == "W":
        # pandas' weekly ordinal 0 is the week ending Sunday 1969-12-28: one more than period_numbers'.
        return f"({_period_sql('W', column)} + 1)"
    if period == "M":
        return f"((year({column}) - 1970) * 12 + month({column}) - 1)"
    if period == "Q":
        return f"((year({column}) - 1970) * 4 + quarter({column}) - 1)"
    return f"(year({column}) - 1970)"


def _end_ordinal(log: DuckDBLog, period: str) -> int:
    """pandas Period ordinal of the log's last day (the tables run to the window end)."""
    return int(log.observation_end.to_period(period).ordinal)


def _periods(ordinals, period: str, name: str) -> pd.PeriodIndex:
    return pd.PeriodIndex.from_ordinals(np.asarray(ordinals, dtype=np.int64), freq=period).rename(name)


def headline_kpis(log: DuckDBLog) -> HeadlineKPIs:
    """:func:`crm_lib.kpi.headline_kpis` computed by DuckDB."""
    customers, n, revenue, first, last = log.connection.execute(
        f"SELECT count(DISTINCT customer_id), count(*), sum(amount), min(date), max(date) FROM {log.table}").fetchall()[0]
    repeat = _scalar(log.connection, f"SELECT count(*) FROM (SELECT customer_id FROM {log.table} GROUP BY customer_id "
                                     "HAVING count(DISTINCT CAST(date AS DATE)) > 1)")
    return HeadlineKPIs(
        customers=int(customers), transactions=int(n), revenue=float(revenue), repeat_customers=int(repeat),
        repeat_purchase_rate=repeat / customers, average_order_value=revenue / n,
        revenue_per_customer=revenue / customers, transactions_per_customer=n / customers,
        first_date=pd.Timestamp(first), last_date=pd.Timestamp(last),
    )


def _with_periods_sql(log: DuckDBLog, period: str) -> str:
    return (f"SELECT customer_id, amount, {_ordinal_sql(period)} AS period, "
            f"min({_ordinal_sql(period)}) OVER (PARTITION BY customer_id) AS cohort FROM {log.table}")


def activity_by_period(log: DuckDBLog, period: str = "M") -> pd.DataFrame:
    """:func:`crm_lib.kpi.activity_by_period` computed by DuckDB (same columns and index)."""
    query = f"""
        WITH tx AS ({_with_periods_sql(log, period)}),
        active AS (SELECT DISTINCT customer_id, period FROM tx),
        retained AS (SELECT a.period, count(*) AS retained FROM active a
                     JOIN active b ON a.customer_id = b.customer_id AND b.period = a.period - 1 GROUP BY a.period)
        SELECT t.period, count(DISTINCT customer_id) AS active_customers,
               count(DISTINCT customer_id) FILTER (WHERE period = cohort) AS new_customers,
               count(*) AS transactions, sum(amount) AS revenue, any_value(r.retained) AS retained_customers
        FROM tx t LEFT JOIN retained r USING (period) GROUP BY t.period ORDER BY t.period"""
    raw = log.sql(query).df()
    # Periods run to the window end (crm_lib.kpi._ordinal_range), empty ones with zeros.
    full = np.arange(raw["period"].min(), max(raw["period"].max(), _end_ordinal(log, period)) + 1)
    out = raw.set_index("period").reindex(full).fillna(0)
    out.index = _periods(full, period, "period")
    for column in ("active_customers", "new_customers", "transactions", "retained_customers"):
        out[column] = out[column].astype(int)
    out["revenue"] = out["revenue"].astype(float)
    out["returning_customers"] = out["active_customers"] - out["new_customers"]
    prior_active = out["active_customers"].shift(1)
    out["retention_rate"] = (out["retained_customers"] / prior_active.where(prior_active > 0)).astype(float)
    out["attrition_rate"] = 1.0 - out["retention_rate"]
    return out[["active_customers", "new_customers", "returning_customers", "transactions", "revenue",
                "retained_customers", "retention_rate", "attrition_rate"]]


def cohort_sizes(log: DuckDBLog, cohort_period: str = "Q") -> pd.DataFrame:
    """:func:`crm_lib.kpi.cohort_sizes` computed by DuckDB."""
    query = f"""
        WITH tx AS ({_with_periods_sql(log, cohort_period)})
        SELECT cohort, count(DISTINCT customer_id) AS new_customers,
               sum(amount) FILTER (WHERE period = cohort) AS first_purchase_revenue
        FROM tx GROUP BY cohort ORDER BY cohort"""
    raw = log.sql(query).df()
    full = np.arange(raw["cohort"].min(), max(raw["cohort"].max(), _end_ordinal(log, cohort_period)) + 1)
    out = raw.set_index("cohort").reindex(full).fillna(0)
    out.index = _periods(full, cohort_period, "cohort")
    out["new_customers"] = out["new_customers"].astype(int)
    out["first_purchase_revenue"] = out["first_purchase_revenue"].astype(float)
    out["share_of_customers"] = out["new_customers"] / out["new_customers"].sum()
    return out[["new_customers", "share_of_customers", "first_purchase_revenue"]]


def cohort_retention(
    log: DuckDBLog, cohort_period: str = "Q", observation_end: str | pd.Timestamp | None = None
) -> pd.DataFrame:
    """:func:`crm_lib.kpi.cohort_retention` computed by DuckDB (cohorts x periods since acquisition)."""
    query = f"""
        WITH tx AS ({_with_periods_sql(log, cohort_period)}),
        sizes AS (SELECT cohort, count(DISTINCT customer_id) AS size FROM tx GROUP BY cohort)
        SELECT cohort, period - cohort AS k, count(DISTINCT customer_id) / any_value(size) AS share
        FROM tx JOIN sizes USING (cohort) GROUP BY cohort, k"""
    raw = log.sql(query).df()
    last = _window_end(log, observation_end, "cohort_retention").to_period(cohort_period).ordinal
    cohorts = np.sort(raw["cohort"].unique())
    ks = np.arange(0, last - cohorts.min() + 1)
    shares = raw.pivot(index="cohort", columns="k", values="share").reindex(index=cohorts, columns=ks)
    observed = (last - cohorts)[:, None] >= ks[None, :]
    shares = shares.where(observed, np.nan).where(~(observed & shares.isna()), 0.0)
    shares.index = _periods(cohorts, cohort_period, "cohort")
    shares.columns = pd.Index(ks, name=f"{PERIODS[cohort_period]}s since acquisition")
    return shares
