"""Reading a transaction file into text columns, with a message for every way it can fail.

CSV and other delimited text (encoding detected: UTF-8, UTF-8 with BOM, UTF-16, else
Latin-1; or set by the ``encoding`` knob), gzip-compressed text, Parquet and Excel
workbooks (openpyxl). Before reading, a size guard compares the file with the memory the
process can still use. Ragged rows are reported with their line number. Validation of the
columns read here is :func:`crm_lib.data.load_transactions`' job.
"""
from __future__ import annotations

import codecs
import contextlib
import gzip
import hashlib
import logging
import os
import re
import zipfile
from pathlib import Path

import pandas as pd

from crm_lib.exceptions import DataValidationError

logger = logging.getLogger(__name__)

PARQUET_SUFFIXES = {".parquet", ".pq"}
EXCEL_SUFFIXES = {".xlsx", ".xlsm"}
OTHER_SPREADSHEET_SUFFIXES = {".xls", ".xlsb", ".ods", ".numbers"}


def _fail(path: Path, message: str) -> DataValidationError:
    return DataValidationError(f"{path.name}: {message}")


class InputTooLargeError(DataValidationError, MemoryError):
    """The file would not fit in memory (exit status 3: the machine, not the data)."""


def available_memory_bytes() -> int | None:
    """Memory the process can still use (``MemAvailable`` on Linux), or None if unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _check_size(path: Path, max_input_bytes: int | None) -> None:
    """Refuse a file that cannot be read into memory, before reading it.

    Text read as strings takes about 12 times its size in memory (pandas object columns),
    a gzip file about 5 times more, Parquet about 6 times its compressed size.
    """
    size = path.stat().st_size
    suffixes = [s.lower() for s in path.suffixes]
    factor = 6 if path.suffix.lower() in PARQUET_SUFFIXES else 12 * (5 if ".gz" in suffixes else 1)
    if max_input_bytes is not None and size > int(max_input_bytes):
        raise InputTooLargeError(
            f"{path.name}: the file is {size:,} bytes, more than max_input_bytes={int(max_input_bytes):,}; "
            "raise max_input_bytes in params, or read a sample or a shorter period."
        )
    available = available_memory_bytes()
    if max_input_bytes is None and available is not None and size * factor > available:
        raise InputTooLargeError(
            f"{path.name}: the file is {size / 1e9:.2f} GB; reading it needs about {size * factor / 1e9:.1f} GB "
            f"of memory and {available / 1e9:.1f} GB are available. Convert it to Parquet with only the needed "
            "columns, read a shorter period, or run on a machine with more memory."
        )


def _sample(path: Path, size: int = 1 << 16) -> bytes:
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    with opener(path, "rb") as handle:
        return handle.read(size)


def detect_encoding(path: Path, encoding: str | None = None) -> str:
    """The text encoding of ``path``: ``encoding`` if given, else from its first 64 KiB.

    A byte-order mark gives UTF-8-with-BOM or UTF-16; NUL bytes without one UTF-16-LE/BE;
    text that decodes as UTF-8 is UTF-8; anything else is read as Latin-1 (every byte is
    a character, so the values are shown as they are).

    Raises
    ------
    DataValidationError
        An unknown encoding name, or a binary file (ZIP/Excel, OLE, other) named as text.
    """
    if encoding not in (None, "", "auto"):
        try:
            return codecs.lookup(encoding).name
        except LookupError:
            raise _fail(path, f"encoding={encoding!r} is not a known text encoding; use utf-8, utf-8-sig, "
                        "utf-16, latin-1 or 'auto'.") from None
    head = _sample(path)
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if head.startswith(b"PK\x03\x04"):
        raise _fail(path, "is a ZIP archive (an Excel .xlsx file renamed?), not text; name it .xlsx to read "
                    "its first sheet, or save it as CSV.")
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        raise _fail(path, "is an old Excel (.xls, 97-2003) or other OLE file, not text; save it as .xlsx or CSV.")
    if b"\x00" in head:
        even, odd = head[0::2].count(0), head[1::2].count(0)
        if max(even, odd) > len(head) // 4:
            return "utf-16-be" if even > odd else "utf-16-le"
        raise _fail(path, "is a binary file, not a text transaction log; export it as CSV or Parquet.")
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=len(head) < (1 << 16))
        return "utf-8"
    except UnicodeDecodeError:
        logger.info("%s: not UTF-8, read as Latin-1 (set encoding in params to choose)", path.name)
        return "latin-1"


def _ragged_message(path: Path, error: Exception, sep: str | None, encoding: str) -> str | None:
    match = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(error))
    if not match:
        return None
    expected, line, saw = (int(g) for g in match.groups())
    example = ""
    with contextlib.suppress(OSError, UnicodeDecodeError):
        opener = gzip.open if path.suffix.lower() == ".gz" else open
        with opener(path, "rt", encoding=encoding, errors="replace") as handle:
            for number, text in enumerate(handle, start=1):
                if number == line:
                    example = text.rstrip("\r\n")[:80]
                    break
    return (
        f"line {line:,} has {saw} fields where the header has {expected} (e.g. {example!r}); every row must "
        f"have the header's columns: check csv_separator (now {sep or ','!r}) or fix the row."
    )


def _first_undecodable_line(path: Path, encoding: str) -> tuple[int, str]:
    """Number and text (bad bytes escaped) of the first line ``encoding`` cannot decode."""
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    with opener(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                raw.decode(encoding)
            except UnicodeDecodeError:
                return number, raw.decode(encoding, errors="backslashreplace").rstrip("\r\n")[:80]
    return 0, ""


def _read_excel(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    if suffix not in EXCEL_SUFFIXES:
        raise _fail(path, f"'{suffix}' spreadsheets are not read; save the sheet as .xlsx or CSV.")
    try:
        import openpyxl  # noqa: F401 - pandas' engine for .xlsx
    except ImportError:
        raise _fail(path, "is an Excel file and openpyxl is not installed; `pip install openpyxl` or save the "
                    "sheet as CSV.") from None
    try:
        return pd.read_excel(path, sheet_name=0, dtype=str, engine="openpyxl", na_values=[""], keep_default_na=False)
    except (ValueError, KeyError, OSError, zipfile.BadZipFile) as error:
        raise _fail(path, f"cannot be read as an Excel workbook ({type(error).__name__}: {error}); save the "
                    "first sheet as CSV.") from None


def _read_raw(
    path: Path,
    sep: str | None,
    *,
    encoding: str | None = None,
    max_input_bytes: int | None = None,
) -> pd.DataFrame:
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
    _check_size(path, max_input_bytes)
    suffix = path.suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        try:
            return pd.read_parquet(path)
        except (OSError, ValueError) as error:
            raise _fail(path, f"is not a readable Parquet file ({type(error).__name__}: {str(error)[:120]}); "
                        "export it again or as CSV.") from None
    if suffix in EXCEL_SUFFIXES or suffix in OTHER_SPREADSHEET_SUFFIXES:
        return _read_excel(path)
    text_encoding = detect_encoding(path, encoding)
    # Read as text: customer ids keep their leading zeros, and bad dates or amounts are
    # reported with the value as it stands in the file.
    try:
        return pd.read_csv(
            path,
            sep=sep or ",",
            dtype=str,
            keep_default_na=False,
            na_values=[""],
            encoding=text_encoding,
            engine="c" if sep in (None, ",", ";", "\t", "|", r"\s+") else "python",
        )
    except pd.errors.EmptyDataError:
        raise _fail(path, "the file has no header and no rows; export the transaction log again.") from None
    except UnicodeDecodeError:
        line, example = _first_undecodable_line(path, text_encoding)
        raise _fail(
            path,
            f"line {line:,} is not valid {text_encoding} text (e.g. {example!r}); set encoding in params to the "
            "file's encoding (utf-8, utf-8-sig, utf-16, latin-1) or fix the line.",
        ) from None
    except (pd.errors.ParserError, ValueError) as error:
        ragged = _ragged_message(path, error, sep, text_encoding)
        raise _fail(path, ragged or f"cannot be parsed as delimited text ({str(error)[:160]}); check csv_separator "
                    f"(now {sep or ','!r}) and the quoting of the file.") from None


def sha256_of(path: str | Path) -> str:
    """SHA-256 of a file, read in 1 MiB blocks: the one fingerprint of a data file.

    The run context keys its cache by it and the runner records it in the manifest.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
