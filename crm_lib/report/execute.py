"""Execute one notebook with Papermill and strip what would differ between two runs."""
from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import nbformat

logger = logging.getLogger(__name__)

#: With MPLBACKEND=Agg in the environment the kernel would not use the inline backend
#: and every figure would silently vanish from the executed notebook.
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"


@dataclass(frozen=True)
class NotebookRun:
    """Outcome of executing one notebook.

    Attributes
    ----------
    name : str
        Notebook stem (``01_data_overview``).
    status : {"ok", "failed"}
    seconds : float
        Wall time of the execution.
    error : str
        ``ExceptionName: message`` of the first failing cell, empty when ok.
    output_path : Path
        The executed notebook (also written when it failed).
    """

    name: str
    status: str
    seconds: float
    error: str
    output_path: Path

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@contextlib.contextmanager
def kernel_environment() -> Iterator[None]:
    """Environment for the kernel: inline figures, and this interpreter first on PATH.

    The ``python3`` kernelspec of ipykernel starts ``python`` from PATH; putting this
    interpreter's folder first makes the kernel use the same virtual environment even
    when the console script is called without activating it.
    """
    saved = {key: os.environ.get(key) for key in ("MPLBACKEND", "PATH", "PYDEVD_DISABLE_FILE_VALIDATION")}
    os.environ["MPLBACKEND"] = INLINE_BACKEND
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), saved["PATH"] or ""])
    os.environ["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def execute_notebook(
    notebook: Path,
    output_path: Path,
    parameters: dict[str, Any],
    *,
    cwd: Path,
    kernel_name: str | None = None,
    progress_bar: bool = False,
    timeout_seconds: int | None = None,
) -> NotebookRun:
    """Run ``notebook`` with ``parameters`` and write the executed copy to ``output_path``.

    A failing cell does not raise: the result says ``failed`` with the error, and the
    executed notebook (with the traceback in it) is still written.
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    started = time.perf_counter()
    error = ""
    with kernel_environment():
        try:
            papermill.execute_notebook(
                str(notebook),
                str(output_path),
                parameters=parameters,
                cwd=str(cwd),
                kernel_name=kernel_name,
                progress_bar=progress_bar,
                request_save_on_cell_execute=False,
                log_output=False,
                execution_timeout=timeout_seconds,
            )
        except PapermillExecutionError as exc:
            error = f"{exc.ename}: {exc.evalue}"
        except Exception as exc:  # noqa: BLE001 - a dead kernel or timeout fails this notebook, not the run
            logger.exception("%s could not be executed", notebook.name)
            error = f"{type(exc).__name__}: {exc}"
    seconds = time.perf_counter() - started
    return NotebookRun(
        name=notebook.stem,
        status="failed" if error else "ok",
        seconds=seconds,
        error=error,
        output_path=output_path,
    )


def make_reproducible(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Remove what differs between two executions of the same notebook on the same data.

    Papermill gives its injected-parameters cell a random id and stamps start and end
    times on every cell and on the notebook; cell ids become their position and the
    timings go (they are kept in the run manifest instead).
    """
    nb.metadata.pop("papermill", None)
    for key in ("widgets",):
        nb.metadata.pop(key, None)
    for index, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{index:03d}"
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
    return nb
