#!/usr/bin/env python3
"""Strip a notebook to the form the project commits: no outputs, no execution counts.

Used three ways (``make install`` sets up the first):

* as git's clean filter for ``*.ipynb`` (``.gitattributes``): ``git add`` stores, and
  ``git status`` / ``git diff`` compare, the stripped notebook while the one in the working
  tree keeps its outputs, so a Lab session (or its autosave) never dirties a tracked
  notebook: ``python3 tools/notebook_filter.py < in.ipynb > out.ipynb``;
* by ``make clean-notebooks``: ``python3 tools/notebook_filter.py --in-place notebooks/*.ipynb``;
* by ``tests/test_notebooks_clean.py``.

Why not nbstripout: it renumbers cell ids ("0", "1", ...) unless told not to and keeps
the kernel's display name and ``language_info`` that JupyterLab writes on save
("Python 3 (ipykernel)", the Python version), so a notebook merely opened and saved in Lab
would differ from the committed one; matching the committed form with it would mean
rewriting all six notebooks. This filter maps what Lab saves back to the committed form
byte for byte, and needs only the standard library (any ``python3`` runs it, with or
without the project's ``.venv``).

The committed form: every code cell without outputs and with ``execution_count`` null;
cell metadata only ``tags`` (Lab adds ``scrolled``, ``collapsed``, ``jupyter``, ``execution``);
notebook metadata only the kernel's name and language (``python3``, "Python 3") and
``language_info.name``; cell ids, sources and attachments unchanged. JSON as nbformat
writes it (indent 1, sorted keys, multi-line strings split into lists, trailing newline).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

#: The kernel every notebook of this project names (the ``python3`` kernel of the venv).
KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}
#: Cell metadata kept: papermill finds the parameters cell by its tag.
CELL_METADATA_KEPT = ("tags",)


def _split(text):
    return text.splitlines(True) if isinstance(text, str) else text


def clean_notebook(nb: dict) -> dict:
    """Return the committed form of a notebook given as parsed JSON (nbformat 4).

    Parameters
    ----------
    nb : dict
        The notebook as read by :func:`json.loads`.

    Returns
    -------
    dict
        The same notebook without outputs, execution counts and session metadata.

    Raises
    ------
    ValueError
        A file that is not an nbformat-4 notebook.

    Examples
    --------
    >>> cell = {"cell_type": "code", "execution_count": 3, "id": "a", "metadata": {"scrolled": True},
    ...         "outputs": [{"output_type": "stream", "name": "stdout", "text": "1"}], "source": "x = 1"}
    >>> clean_notebook({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [cell]})["cells"][0]
    {'cell_type': 'code', 'execution_count': None, 'id': 'a', 'metadata': {}, 'outputs': [], 'source': ['x = 1']}
    """
    if not isinstance(nb, dict) or nb.get("nbformat") != 4 or not isinstance(nb.get("cells"), list):
        raise ValueError("not an nbformat-4 notebook (no 'nbformat': 4 and 'cells' list); save it from JupyterLab 3 or 4")
    cells = []
    for cell in nb["cells"]:
        cell = dict(cell)
        metadata = cell.get("metadata", {})
        cell["metadata"] = {key: metadata[key] for key in CELL_METADATA_KEPT if metadata.get(key)}
        cell["source"] = _split(cell.get("source", []))
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
        cells.append(cell)
    language = nb.get("metadata", {}).get("language_info", {}).get("name", "python")
    metadata = {"kernelspec": dict(KERNELSPEC), "language_info": {"name": language}}
    return {**nb, "cells": cells, "metadata": metadata}


def dumps(nb: dict) -> str:
    """Serialise as nbformat does (``nbformat.writes`` followed by a newline)."""
    return json.dumps(nb, indent=1, sort_keys=True, separators=(",", ": "), ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Filter stdin to stdout, or rewrite the named notebooks in place with ``--in-place``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--in-place", action="store_true", help="rewrite the named files instead of stdin -> stdout")
    parser.add_argument("files", nargs="*", type=Path)
    args = parser.parse_args(argv)
    if not args.in_place:
        if args.files:
            parser.error("without --in-place the notebook is read from stdin")
        try:
            cleaned = dumps(clean_notebook(json.loads(sys.stdin.buffer.read().decode("utf-8"))))
        except ValueError as error:  # json.JSONDecodeError and UnicodeDecodeError are ValueErrors
            sys.stderr.write(f"notebook-clean filter: the notebook is not valid JSON or not nbformat 4 ({error}); "
                             "fix it (conflict markers?) before git add\n")
            return 1
        sys.stdout.buffer.write(cleaned.encode("utf-8"))
        return 0
    for path in args.files:
        before = path.read_text(encoding="utf-8")
        try:
            after = dumps(clean_notebook(json.loads(before)))
        except ValueError as error:  # json.JSONDecodeError is a ValueError
            sys.stderr.write(f"{path}: {error}\n")
            return 1
        if after != before:
            path.write_text(after, encoding="utf-8")
            sys.stderr.write(f"cleaned {path}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
