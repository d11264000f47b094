"""Data sets that ship inside installed packages, so that a report needs no download.

The default data set is the full CDNOW transaction log (Fader & Hardie) that the
``lifetimes`` package ships as ``lifetimes/datasets/CDNOW_master.txt``:
23,570 customers, 69,659 transactions, 1997-01-01 to 1998-06-30.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

EMBEDDED_PREFIX = "embedded:"

#: How the CDNOW master file is laid out: whitespace separated, a header line,
#: zero-padded customer ids, dates as YYYYMMDD, number of CDs and dollar value.
CDNOW_COLUMN_MAP = {
    "customer_id": "customer_id",
    "date": "date",
    "amount": "dollar_value",
    "quantity": "number_of_cds",
}


def embedded_dir() -> Path:
    """Folder of the data files shipped with the installed ``lifetimes`` package."""
    # Found without importing lifetimes (about 1 s of imports the runner does not otherwise need).
    spec = importlib.util.find_spec("lifetimes")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("the lifetimes package is not installed; install it (it ships the embedded data)")
    return Path(spec.submodule_search_locations[0]).resolve() / "datasets"


def embedded_names() -> list[str]:
    """Names accepted after ``embedded:`` in ``data_path``."""
    return sorted(p.name for p in embedded_dir().iterdir() if p.suffix in {".txt", ".csv"})


def resolve_data_path(data_path: str | Path, base_dir: str | Path | None = None) -> Path | str:
    """Turn a ``data_path`` parameter into an absolute file path.

    Parameters
    ----------
    data_path : str or Path
        ``embedded:<file name>`` for a file shipped with ``lifetimes`` (for example
        ``embedded:CDNOW_master.txt``), or a path to a CSV or Parquet file.
    base_dir : str or Path, optional
        Folder that a relative path is resolved from (the runner passes the folder of
        the params file). Defaults to the current working directory.

    Returns
    -------
    Path
        The absolute path (a warehouse ``postgresql:`` data_path is returned as it is).
        Existence is checked by :func:`crm_lib.data.load_transactions`.
    """
    text = str(data_path)
    from crm_lib.sources import parse_source

    if parse_source(text) is not None:  # a warehouse table or query: no file to resolve
        return text
    if text.startswith(EMBEDDED_PREFIX):
        return embedded_dir() / text[len(EMBEDDED_PREFIX):]
    path = Path(text).expanduser()
    if not path.is_absolute():
        path = Path(base_dir or Path.cwd()) / path
    return path.resolve()


def cdnow_master_path() -> Path:
    """Path of the full CDNOW log inside the installed ``lifetimes`` package."""
    return embedded_dir() / "CDNOW_master.txt"
