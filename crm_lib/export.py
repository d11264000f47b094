"""Per-customer files for the teams that run one-to-one campaigns.

These files are the only place where real customer ids leave the analysis: the HTML
report shows pseudonymous ids (:func:`crm_lib.segments.pseudonymize`), and each file
carries both so that a row of the report can be found in it. Files are written to
``export_dir`` (a notebook parameter; ``""`` means the notebook's working directory,
which the runner sets to the report folder being built).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterable

import pandas as pd

from crm_lib.exceptions import DataValidationError, ParamsError

logger = logging.getLogger(__name__)

EXPORT_FORMATS = ("csv", "parquet")


def export_customer_actions(
    actions: pd.DataFrame,
    export_dir: str | Path = "",
    *,
    basename: str = "customer_actions",
    formats: Iterable[str] = EXPORT_FORMATS,
) -> dict[str, Path]:
    """Write the per-customer action table as CSV and/or Parquet.

    Parameters
    ----------
    actions : DataFrame
        Indexed by the real ``customer_id`` (from :func:`crm_lib.segments.customer_actions`).
    export_dir : str or Path
        Folder to write to (created if missing); ``""`` is the current directory.
    basename : str
        File name without suffix.
    formats : iterable of {"csv", "parquet"}
        Which files to write.

    Returns
    -------
    dict
        Format -> path written.

    Raises
    ------
    ParamsError
        An unknown format, or an ``export_dir`` that is an existing file.
    DataValidationError
        An index without customer ids or with repeated ids.

    Examples
    --------
    >>> paths = export_customer_actions(actions, "exports")   # doctest: +SKIP
    >>> read_customer_actions(paths["parquet"]).equals(actions)  # doctest: +SKIP
    True
    """
    formats = list(formats)
    unknown = sorted(set(formats) - set(EXPORT_FORMATS))
    if unknown or not formats:
        raise ParamsError(f"export formats {unknown or formats} not supported; use {', '.join(EXPORT_FORMATS)}.")
    if actions.index.name != "customer_id":
        raise DataValidationError(
            f"actions: the index is named {actions.index.name!r}, not 'customer_id'; pass the table from "
            "crm_lib.segments.customer_actions."
        )
    if actions.index.duplicated().any():
        raise DataValidationError(
            f"actions: {int(actions.index.duplicated().sum()):,} customer ids appear more than once "
            f"(e.g. {actions.index[actions.index.duplicated()][0]!r}); one row per customer is expected."
        )
    folder = Path(export_dir) if str(export_dir) else Path.cwd()
    if folder.exists() and not folder.is_dir():
        raise ParamsError(f"export_dir={str(export_dir)!r} is a file, not a folder; set export_dir in params to a folder.")
    folder.mkdir(parents=True, exist_ok=True)
    table = actions.reset_index()
    table["customer_id"] = table["customer_id"].astype(str)
    written: dict[str, Path] = {}
    for fmt in formats:
        path = folder / f"{basename}.{fmt}"
        write_customer_table(table, path, index=False)
        written[fmt] = path
    return written


def write_customer_table(table: pd.DataFrame, path: str | Path, *, index: bool = True) -> Path:
    """Write a per-customer table as CSV or Parquet, chosen by the file suffix.

    The one writer of customer files (:func:`export_customer_actions` and the CLV
    report's table use it).

    Parameters
    ----------
    table : DataFrame
    path : str or Path
        ``*.csv`` or ``*.parquet``; parent folders are created. A relative path is relative
        to the working directory (in a scheduled run: the report folder).
    index : bool
        Write the index (the customer id) as the first column.

    Returns
    -------
    Path
        The absolute path written.

    Raises
    ------
    ParamsError
        A suffix other than .csv or .parquet.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in {".csv", ".parquet"}:
        raise ParamsError(f"write_customer_table: {path.name!r} must end in .csv or .parquet.")
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        table.to_csv(path, index=index)
    else:
        table.to_parquet(path, index=index)
    logger.info("wrote %s customers to %s", f"{len(table):,}", path)
    return path.resolve()


def read_customer_actions(path: str | Path) -> pd.DataFrame:
    """Read a file written by :func:`export_customer_actions` back into the same table.

    Customer ids and pseudonymous ids are read as text, so leading zeros survive the CSV.

    Parameters
    ----------
    path : str or Path
        A ``.csv`` or ``.parquet`` file.

    Returns
    -------
    DataFrame
        Indexed by ``customer_id``.

    Raises
    ------
    DataValidationError
        A missing file or a file without a ``customer_id`` column.
    """
    path = Path(path)
    if not path.is_file():
        raise DataValidationError(f"{path}: export file not found; run the segmentation notebook to write it.")
    if path.suffix == ".parquet":
        table = pd.read_parquet(path)
    else:
        # No NA parsing: an empty action is an empty text, and ids like "NA" stay ids.
        table = pd.read_csv(path, dtype={"customer_id": str, "pseudonymous_id": str}, keep_default_na=False)
    if "customer_id" not in table.columns:
        raise DataValidationError(f"{path.name}: no customer_id column (columns {list(table.columns)}); not an action export.")
    return table.set_index("customer_id")
