"""Warehouse sources: a ``data_path`` that is a PostgreSQL table or query.

``data_path`` in a params file may name a table or a query instead of a file::

    data_path: "postgresql:sales.transactions"                  # a table (schema.table)
    data_path: "postgresql:SELECT customer_id, date, amount FROM sales.orders WHERE amount > 0"
    data_path: "postgresql[SALES_DSN]:sales.transactions"      # DSN from the variable SALES_DSN

Credentials never appear in the params file. The connection is libpq's: the DSN (a URI or
``key=value`` string) is read from the environment variable named in brackets, else from
``CRM_WAREHOUSE_DSN``; without either, libpq's own ``PGHOST``, ``PGPORT``, ``PGUSER``,
``PGPASSWORD`` (or ``~/.pgpass``), ``PGDATABASE`` and ``PGSSLMODE`` apply. A ``data_path``
that carries a connection URI (``postgresql://user:secret@host/db``) is refused.

The rows are streamed with ``COPY (query) TO STDOUT`` in CSV into an extract file (so
the report can record the SHA-256 of exactly the data it analysed, and the DuckDB engine
can read it out of core), then go through the same validation as a CSV file
(:func:`crm_lib.data.load_transactions`). The client is psycopg 3: the reference
PostgreSQL driver, binary wheels with libpq included, and COPY streaming, which is the
fastest way out of PostgreSQL and needs no ORM (SQLAlchemy would add a layer we do not
use) nor a server-side extension.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from crm_lib.exceptions import DataValidationError

logger = logging.getLogger(__name__)

__all__ = ["WarehouseSource", "parse_source", "DEFAULT_DSN_ENV", "EXTRACT_DIR_ENV"]

#: Environment variable holding the warehouse DSN when ``data_path`` names none.
DEFAULT_DSN_ENV = "CRM_WAREHOUSE_DSN"
#: Environment variable naming the folder of the extracts (default: the temporary folder).
EXTRACT_DIR_ENV = "CRM_WAREHOUSE_EXTRACT_DIR"
_PATTERN = re.compile(r"^(?:postgresql|postgres|sql)(?:\[(?P<env>[A-Za-z_][A-Za-z0-9_]*)\])?:(?P<body>.*)$", re.S)
_TABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$")
_CHUNK = 1 << 20


def parse_source(data_path) -> "WarehouseSource | None":
    """The warehouse source a ``data_path`` names, or None for a file.

    Raises
    ------
    DataValidationError
        A connection URI inside ``data_path`` (credentials belong in the environment), or
        an empty table/query.
    """
    if isinstance(data_path, WarehouseSource):
        return data_path
    if not isinstance(data_path, str):
        return None
    text = data_path.strip()
    if text.startswith(("postgresql://", "postgres://")):
        raise DataValidationError(
            "data_path holds a PostgreSQL connection URI; credentials must not be in the params file. Put the "
            f"URI in an environment variable ({DEFAULT_DSN_ENV}, or name one: 'postgresql[MY_DSN]:schema.table') "
            "and set data_path to the table or query."
        )
    match = _PATTERN.match(text)
    if match is None:
        return None
    body = match["body"].strip()
    if not body:
        raise DataValidationError(f"data_path {text!r} names no table or query after the ':'; e.g. 'postgresql:sales.orders'.")
    return WarehouseSource(body=body, dsn_env=match["env"])


@dataclass(frozen=True)
class WarehouseSource:
    """A PostgreSQL table or query that stands where a transaction file would.

    It behaves enough like the file's ``Path`` for the report: ``name`` for messages,
    ``os.fspath`` / ``stat()`` give the extract written by :meth:`extract`.
    """

    body: str
    dsn_env: str | None = None

    @property
    def is_table(self) -> bool:
        return bool(_TABLE.match(self.body))

    @property
    def name(self) -> str:
        """How messages and reports name the source (no credentials)."""
        what = f"table {self.body}" if self.is_table else f"query {self.body[:60]!r}" + ("..." if len(self.body) > 60 else "")
        return f"PostgreSQL {what}"

    def __str__(self) -> str:
        return f"postgresql{f'[{self.dsn_env}]' if self.dsn_env else ''}:{self.body}"

    @property
    def extract_path(self) -> Path:
        folder = Path(os.environ.get(EXTRACT_DIR_ENV) or Path(tempfile.gettempdir()) / "crm-warehouse")
        digest = hashlib.sha256(str(self).encode()).hexdigest()[:12]
        stem = re.sub(r"[^A-Za-z0-9_.]+", "_", self.body)[:40] if self.is_table else "query"
        return folder / f"postgresql_{stem}_{digest}.csv"

    def __fspath__(self) -> str:
        return str(self.extract_path)

    def stat(self):
        return self.extract_path.stat()

    def _dsn(self) -> tuple[str, str]:
        env = self.dsn_env or DEFAULT_DSN_ENV
        if self.dsn_env and self.dsn_env not in os.environ:
            raise DataValidationError(
                f"{self.name}: data_path names the DSN variable {self.dsn_env}, which is not set in the environment; "
                f"export {self.dsn_env}='postgresql://user@host:5432/db' (password in ~/.pgpass or PGPASSWORD)."
            )
        dsn = os.environ.get(env, "")
        return dsn, (f"${env}" if dsn else "the PG* environment variables (PGHOST, PGPORT, PGUSER, PGDATABASE)")

    def _query(self):
        from psycopg import sql

        if self.is_table:
            return sql.SQL("SELECT * FROM {}").format(sql.Identifier(*self.body.split(".")))
        return sql.SQL(self.body.rstrip().rstrip(";"))

    def extract(self) -> Path:
        """Stream the table or query as CSV (with a header) into :attr:`extract_path`.

        Raises
        ------
        DataValidationError
            No server or a bad connection string, a missing table, a query PostgreSQL
            rejects.
        """
        import psycopg
        from psycopg import sql

        dsn, where = self._dsn()
        try:
            connection = psycopg.connect(dsn, connect_timeout=int(os.environ.get("PGCONNECT_TIMEOUT", "10")))
        except psycopg.Error as error:
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise DataValidationError(
                f"{self.name}: cannot connect to PostgreSQL with {where}: {reason}. Check the DSN (a URI "
                "'postgresql://user@host:5432/db' or 'host=... dbname=...'), that the server runs and accepts you."
            ) from None
        path = self.extract_path
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        copy = sql.SQL("COPY ({}) TO STDOUT WITH (FORMAT csv, HEADER true)").format(self._query())
        try:
            with connection, connection.cursor() as cursor, partial.open("wb") as handle:
                cursor.execute("SET TRANSACTION READ ONLY")
                with cursor.copy(copy) as stream:
                    for block in stream:
                        handle.write(block)
        except psycopg.errors.UndefinedTable as error:
            raise DataValidationError(
                f"{self.name}: {str(error).splitlines()[0]}; check the schema and table name in data_path "
                "(schema.table) and that the user may read it."
            ) from None
        except psycopg.Error as error:
            raise DataValidationError(
                f"{self.name}: PostgreSQL refused the query: {str(error).strip().splitlines()[0]}; fix the query in "
                "data_path (one SELECT returning customer id, date and amount columns)."
            ) from None
        finally:
            connection.close()
        partial.replace(path)
        logger.info("extracted %s to %s (%d bytes)", self.name, path, path.stat().st_size)
        return path

    def read(self):
        """The rows as text columns, as :func:`crm_lib.data.load_transactions` reads a CSV file."""
        import pandas as pd

        path = self.extract()
        try:
            return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
        except pd.errors.EmptyDataError:
            raise DataValidationError(f"{self.name}: the query returned no columns; select the log's columns.") from None
