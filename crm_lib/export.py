"""Per-customer files for the teams that run one-to-one campaigns.

These files are the only place where real customer ids leave the analysis: the HTML
report shows pseudonymous ids (:func:`crm_lib.segments.pseudonymize`), and each file
carries both so that a row of the report can be found in it.

Files with real ids are written only under the *private folder*, never next to the HTML
given to reviewers: ``.crm_private/runs/<run>/`` when the runner executes the notebook
(it sets ``CRM_PRIVATE_DIR`` and makes it the working directory), otherwise
``<private folder>/lab/`` (a notebook opened in Lab or run with papermill); the private
folder is :func:`crm_lib.paths.private_root`, ``<project>/.crm_private`` by default.
``export_dir`` is a path relative to that folder; an absolute path or one with ``..``
is refused. The folder is git-ignored and owner-only (0700).
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Iterable

import pandas as pd

from crm_lib.exceptions import DataValidationError, ParamsError
# The project- and private-folder rules live in crm_lib.paths; re-exported here, where they were first.
from crm_lib.paths import PRIVATE_DIR_ENV, PRIVATE_FOLDER, PRIVATE_ROOT_ENV, private_root, project_root

__all__ = [
    "EXPORT_FORMATS", "PRIVATE_DIR_ENV", "PRIVATE_FOLDER", "PRIVATE_ROOT_ENV", "export_customer_actions",
    "private_dir", "private_path", "private_root", "project_root", "read_customer_actions", "write_customer_table",
]

logger = logging.getLogger(__name__)

EXPORT_FORMATS = ("csv", "parquet")


def private_dir() -> Path:
    """The folder real-id files of this notebook run go to, created owner-only.

    ``CRM_PRIVATE_DIR`` (set by the runner to ``.crm_private/runs/<run>/`` being built), or
    ``<project>/.crm_private/lab`` for a notebook run outside the runner.
    """
    value = os.environ.get(PRIVATE_DIR_ENV)
    folder = Path(value).resolve() if value else private_root() / "lab"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return folder


def private_path(*parts: str | Path) -> Path:
    """``parts`` joined under :func:`private_dir`, refusing ``..`` and absolute paths outside
    :func:`private_root`.

    Examples
    --------
    >>> private_path("exports", "customer_value.csv")  # doctest: +SKIP
    PosixPath('/home/me/crm/.crm_private/lab/exports/customer_value.csv')

    Raises
    ------
    ParamsError
        A part that is absolute or climbs out with ``..`` (e.g. ``export_dir='../../tmp'``).
    """
    relative = Path(*[str(p) for p in parts if str(p)]) if any(str(p) for p in parts) else Path()
    root = private_root().resolve()
    if relative.is_absolute() and ".." not in relative.parts and (relative == root or root in relative.parents):
        return relative
    if relative.is_absolute() or ".." in relative.parts or str(relative).startswith("~"):
        raise ParamsError(
            f"export path {str(relative)!r} leaves the private folder; set export_dir / the file name in params "
            "to a relative path without '..' (files with real ids stay under .crm_private/)."
        )
    return private_dir() / relative


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
        Folder to write to, relative to the private folder (created if missing); ``""``
        is the private folder itself (see :func:`private_dir`).
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
        An unknown format, an ``export_dir`` that is an existing file, absolute or has ``..``.
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
    folder = private_path(export_dir)
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
