"""Execute one notebook with Papermill and strip what would differ between two runs."""
from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import nbformat

logger = logging.getLogger(__name__)

#: With MPLBACKEND=Agg in the environment the kernel would not use the inline backend
#: and every figure would silently vanish from the executed notebook.
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"

#: Defaults of the per-cell timeout and the per-notebook wall-clock limit (seconds): long
#: enough for CDNOW on a laptop many times over, short enough that a cron job never hangs.
DEFAULT_CELL_TIMEOUT_SECONDS = 1800
DEFAULT_NOTEBOOK_TIMEOUT_SECONDS = 4 * 3600

#: Options of the kernel process. Its own log (not the notebook's output) only at ERROR:
#: ipykernel warns on every start that its localhost TCP sockets are unencrypted, which a
#: cron job would mail once per notebook (the kernel and the runner share one machine and
#: user; the connection file is owner-only and its HMAC key signs every message).
KERNEL_ARGUMENTS = ("--IPKernelApp.log_level=ERROR",)

MEMORY_HINT = (
    "the kernel died, most often because it ran out of memory: run on a machine with more memory, "
    "use a smaller data_path, or a sample; the partial notebook is kept in the failed run's private folder"
)


def kernel_processes() -> list[int]:
    """Process ids of the Jupyter kernels this process started, directly or through the worker
    processes of a parallel run (Linux ``/proc``; else none)."""
    parents: dict[int, int] = {}
    kernels = set()
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text()
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
            if b"ipykernel" in (entry / "cmdline").read_bytes():
                kernels.add(int(entry.name))
        except (OSError, ValueError, IndexError):
            continue
    me = os.getpid()

    def descends(pid: int) -> bool:
        seen = set()
        while pid in parents and pid not in seen:
            seen.add(pid)
            pid = parents[pid]
            if pid == me:
                return True
        return False

    return sorted(pid for pid in kernels if descends(pid))


def kill_kernels() -> list[int]:
    """SIGKILL the kernels this process started; their ids."""
    killed = []
    for pid in kernel_processes():
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
    return killed


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
def kernel_environment(extra: dict[str, str] | None = None) -> Iterator[None]:
    """Environment for the kernel: inline figures, and this interpreter first on PATH.

    The ``python3`` kernelspec of ipykernel starts ``python`` from PATH; putting this
    interpreter's folder first makes the kernel use the same virtual environment even
    when the console script is called without activating it.
    """
    extra = extra or {}
    saved = {key: os.environ.get(key) for key in ("MPLBACKEND", "PATH", "PYDEVD_DISABLE_FILE_VALIDATION", *extra)}
    os.environ.update(extra)
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
    timeout_seconds: int | None = DEFAULT_CELL_TIMEOUT_SECONDS,
    wall_seconds: float | None = DEFAULT_NOTEBOOK_TIMEOUT_SECONDS,
    env: dict[str, str] | None = None,
) -> NotebookRun:
    """Run ``notebook`` with ``parameters`` and write the executed copy to ``output_path``.

    A failing cell does not raise: the result says ``failed`` with the error, and the
    executed notebook (with the traceback in it) is still written. A cell running longer
    than ``timeout_seconds`` fails the notebook; after ``wall_seconds`` in all the kernel
    is killed. A kernel that dies (out of memory) fails it with a hint, and the partial
    notebook is kept.

    Parameters
    ----------
    env : dict, optional
        Extra environment variables for the kernel (the private folder).
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    started = time.perf_counter()
    error = ""
    expired = threading.Event()

    def stop() -> None:
        expired.set()
        killed = kill_kernels()
        logger.warning("%s ran longer than %s s; killed kernel(s) %s", notebook.name, wall_seconds, killed)

    timer = threading.Timer(wall_seconds, stop) if wall_seconds else None
    if timer is not None:
        timer.daemon = True
        timer.start()
    with kernel_environment(env):
        try:
            papermill.execute_notebook(
                str(notebook),
                str(output_path),
                parameters=parameters,
                cwd=str(cwd),
                kernel_name=kernel_name,
                progress_bar=progress_bar,
                # saved after every cell, so a dead kernel leaves the partial notebook
                request_save_on_cell_execute=True,
                log_output=False,
                execution_timeout=timeout_seconds,
                extra_arguments=list(KERNEL_ARGUMENTS),
                # Every cell has finished and its outputs are in the notebook when the kernel is shut
                # down, and nothing of ours runs at kernel exit (cache writes are atomic and fsynced):
                # killing it saves the 1-2 s a graceful shutdown of a kernel holding the log takes.
                shutdown_kernel="immediate",
            )
        except PapermillExecutionError as exc:
            error = f"{exc.ename}: {exc.evalue}"
            if exc.ename in {"CellTimeoutError", "TimeoutError"} or "timed out" in str(exc.evalue):
                error = f"CellTimeoutError: a cell ran longer than {timeout_seconds} s (--timeout)"
        except Exception as exc:  # noqa: BLE001 - a dead kernel or timeout fails this notebook, not the run
            name = type(exc).__name__
            if expired.is_set():
                error = f"NotebookTimeout: the notebook ran longer than {wall_seconds:g} s (--notebook-timeout)"
            elif name == "DeadKernelError":
                error = f"DeadKernelError: {MEMORY_HINT}"
            elif name in {"CellTimeoutError", "TimeoutError"}:
                error = f"CellTimeoutError: a cell ran longer than {timeout_seconds} s (--timeout)"
            else:
                error = f"{name}: {exc}"
            logger.warning("%s could not be executed: %s", notebook.name, error)
        finally:
            if timer is not None:
                timer.cancel()
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
