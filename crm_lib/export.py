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

import csv
import io
import logging
import os
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

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
        if not write_csv_like_pandas(table, path, index=index):
            table.to_csv(path, index=index)
    else:
        table.to_parquet(path, index=index)
    logger.info("wrote %s customers to %s", f"{len(table):,}", path)
    return path.resolve()


# ------------------------------------------------------------------ CSV at millions of rows

#: Rows formatted at once by :func:`write_csv_like_pandas` (bounds its memory to a few hundred MB).
CSV_CHUNK_ROWS = 200_000
#: Floats in [1e-4, 1e10) and zero are written by Arrow's formatter (same shortest digits as
#: Python's repr; Python adds ".0" to whole numbers); others by repr, as pandas does.
_ARROW_FLOAT_RANGE = (1e-4, 1e10)


def write_csv_like_pandas(table: pd.DataFrame, path: str | Path, *, index: bool = True) -> bool:
    """Write ``table`` as ``table.to_csv(path, index=index)`` would, column-wise and chunked.

    pandas' writer formats every cell in Python (about 15 s per million rows of a customer
    table); this formats a column at a time with Arrow and NumPy and writes the same text:
    floats as Python's ``repr`` (pandas: ``astype(str)``), integers and booleans as ``str``,
    missing values as empty fields, text quoted when it holds a comma, a quote or a line
    break that the standard ``csv`` module quotes (quotes doubled), ``os.linesep`` after
    each row, UTF-8.

    Parameters
    ----------
    table : DataFrame
    path : str or Path
    index : bool
        Write the index first (its name, or an empty header when unnamed).

    Returns
    -------
    bool
        False, and nothing written, for a table this writer does not cover (a column of
        dates, mixed objects, a float32 or nullable extension column, a MultiIndex, fewer
        than two columns); the caller then uses ``to_csv``.

    Examples
    --------
    >>> frame = pd.DataFrame({"id": ["a", "b,c"], "clv": [1.0, float("nan")]})
    >>> write_csv_like_pandas(frame, "x.csv", index=False)  # doctest: +SKIP
    True
    """
    columns = [(str(name), table[name]) for name in table.columns] if table.columns.is_unique else None
    if columns is None or isinstance(table.columns, pd.MultiIndex):
        return False
    if index:
        if isinstance(table.index, pd.MultiIndex):
            return False
        columns.insert(0, ("" if table.index.name is None else str(table.index.name), pd.Series(table.index)))
    if len(columns) < 2 or not all(_csv_supported(series) for _, series in columns):
        return False
    with open(path, "wb") as handle:
        handle.write(_csv_row([name for name, _ in columns]).encode())
        for start in range(0, len(table), CSV_CHUNK_ROWS):
            fields = [_csv_fields(series.iloc[start:start + CSV_CHUNK_ROWS]) for _, series in columns]
            lines = pc.binary_join_element_wise(pc.binary_join_element_wise(*fields, ","), "", os.linesep)
            _write_string_buffer(handle, lines)
    return True


def _csv_row(values: list[str]) -> str:
    """One row as the standard csv module writes it (QUOTE_MINIMAL), with pandas' line end."""
    out = io.StringIO()
    csv.writer(out, lineterminator=os.linesep).writerow(values)
    return out.getvalue()


def _quoted_characters() -> str:
    """Characters that make the csv module quote a field, as a regex class (Python 3.11 leaves a lone CR bare)."""
    quoted = [c for c in ',"\r\n' if _csv_row(["a" + c + "b", ""]).startswith('"')]
    return "[" + "".join({"\r": "\\r", "\n": "\\n"}.get(c, c) for c in quoted) + "]"


_CSV_QUOTED = _quoted_characters()


def _csv_supported(series: pd.Series) -> bool:
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return _is_text(pd.Series(dtype.categories))
    if isinstance(dtype, np.dtype) and dtype.kind in "iub":
        return True
    if isinstance(dtype, np.dtype) and dtype.kind == "f":
        return dtype.itemsize == 8
    return _is_text(series)


def _is_text(series: pd.Series) -> bool:
    """Only str values (and missing ones): pandas' str dtype, or an object column of str."""
    if isinstance(series.dtype, pd.StringDtype):
        return True
    if series.dtype != object:
        return False
    try:
        pa.array(series.to_numpy(), type=pa.string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return False
    return True


def _csv_fields(series: pd.Series) -> pa.Array:
    """The column's CSV fields as an Arrow string array without nulls."""
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        labels = _text_fields(pa.concat_arrays([pa.array(dtype.categories.to_numpy(dtype=object), type=pa.string(),
                                                         from_pandas=True), pa.array([None], type=pa.string())]))
        codes = series.cat.codes.to_numpy()
        return labels.take(pa.array(np.where(codes < 0, len(dtype.categories), codes)))
    if not isinstance(dtype, np.dtype):
        return _text_fields(_arrow_text(series))
    values = series.to_numpy()
    if dtype.kind == "b":
        return pa.array(["False", "True"]).take(pa.array(values.astype(np.int8)))
    if dtype.kind in "iu":
        return pa.array(values).cast(pa.string())
    if dtype.kind == "f":
        return _float_fields(values)
    return _text_fields(_arrow_text(series))


def _arrow_text(series: pd.Series) -> pa.Array:
    """A text column as Arrow strings: pandas' str dtype hands over its Arrow buffers (no copy)."""
    if isinstance(series.dtype, pd.StringDtype) and hasattr(series.array, "__arrow_array__"):
        arrow = series.array.__arrow_array__()  # the Arrow interchange protocol: the column's own buffers
        arrow = arrow.combine_chunks() if isinstance(arrow, pa.ChunkedArray) else arrow
        return arrow.cast(pa.string()) if arrow.type != pa.string() else arrow
    return pa.array(series.to_numpy(), type=pa.string(), from_pandas=True)


def _float_fields(values: np.ndarray) -> pa.Array:
    """Python's repr of each float (pandas writes ``astype(str)``, the same text), "" for NaN."""
    low, high = _ARROW_FLOAT_RANGE
    size = np.abs(values)
    with np.errstate(invalid="ignore"):
        by_arrow = ((size >= low) & (size < high)) | (values == 0)
        whole = by_arrow & (values == np.floor(values))
    text = pa.array(values).cast(pa.string())
    text = pc.if_else(pa.array(whole), pc.binary_join_element_wise(text, ".0", ""), text)
    rest = np.flatnonzero(~by_arrow)
    if len(rest):
        mask = np.zeros(len(values), dtype=bool)
        mask[rest] = True
        reprs = ["" if v != v else repr(v) for v in values[rest].tolist()]
        text = pc.replace_with_mask(text, pa.array(mask), pa.array(reprs, type=pa.string()))
    return text


def _text_fields(text: pa.Array) -> pa.Array:
    """Text fields quoted as csv.QUOTE_MINIMAL does (quotes doubled); missing values as ""."""
    text = pc.fill_null(text, "")
    if len(text) > 1_000:
        encoded = pc.dictionary_encode(text)  # a label column: quote each distinct label once
        if 4 * len(encoded.dictionary) < len(text):
            return _text_fields(encoded.dictionary).take(encoded.indices)
    special = pc.fill_null(pc.match_substring_regex(text, _CSV_QUOTED), False)
    if pc.any(special).as_py():
        quoted = pc.binary_join_element_wise('"', pc.replace_substring(text, '"', '""'), '"', "")
        text = pc.if_else(special, quoted, text)
    return text


def _write_string_buffer(handle, lines: pa.Array) -> None:
    """Write the concatenated values of an Arrow string array (no nulls) as UTF-8 bytes."""
    lines = lines.combine_chunks() if isinstance(lines, pa.ChunkedArray) else lines
    if len(lines) == 0:
        return
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32 if lines.type == pa.string() else np.int64)
    start, end = int(offsets[lines.offset]), int(offsets[lines.offset + len(lines)])
    handle.write(memoryview(lines.buffers()[2])[start:end])


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
