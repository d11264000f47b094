"""Run the notebooks of a run several at a time, each in its own worker process (``--jobs``).

A notebook's kernel does most of its work on one core, so on a machine with more cores the
notebooks of a small run can run side by side: the CDNOW run takes about half the wall time on
two cores. The run context (:mod:`crm_lib.context`) lets concurrent kernels compute each shared
object (log, summary, fits) once: the first takes a file lock, the others wait and read its
result. Each notebook runs in a worker process that is the parent of that notebook's kernel, so
a notebook that runs out of time kills its own kernel and no other.

Large logs run one notebook at a time (:func:`auto_jobs`): every kernel holds its own copy of
the log, so running two at once would double the peak memory.
"""
from __future__ import annotations

import json
import logging
import multiprocessing
import os
import queue
import signal
from functools import partial
from pathlib import Path
from typing import Any, Callable, Sequence

from crm_lib.report.execute import kill_kernels

logger = logging.getLogger(__name__)

#: Above this many transactions a run executes one notebook at a time (memory: one log per kernel).
PARALLEL_MAX_TRANSACTIONS = 1_000_000

#: At most this many notebooks at once: beyond it they mostly wait on each other's cache locks.
MAX_AUTO_JOBS = 4


def available_cores() -> int:
    """Cores this process may use (its CPU affinity where the platform tells, else ``os.cpu_count``)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def auto_jobs(n_notebooks: int, transactions: int | None, cores: int | None = None) -> int:
    """How many notebooks to run at once when ``--jobs`` is not given.

    Parameters
    ----------
    n_notebooks : int
        Notebooks in the run.
    transactions : int or None
        Transactions in the checked log (None: not known, so one at a time).
    cores : int, optional
        Cores available (default :func:`available_cores`).

    Returns
    -------
    int
        1 for a log above :data:`PARALLEL_MAX_TRANSACTIONS` transactions or of unknown size,
        else the number of cores, at most :data:`MAX_AUTO_JOBS` and at most ``n_notebooks``.

    Examples
    --------
    >>> auto_jobs(5, 69_659, cores=2)
    2
    >>> auto_jobs(5, 10_000_000, cores=8)
    1
    """
    cores = available_cores() if cores is None else cores
    if transactions is None or transactions > PARALLEL_MAX_TRANSACTIONS:
        return 1
    return max(1, min(int(n_notebooks), int(cores), MAX_AUTO_JOBS))


def previous_seconds(report_dir: Path) -> dict[str, float]:
    """Seconds each notebook took in the last published run (its ``manifest.json``); empty when
    there is none or it cannot be read."""
    try:
        manifest = json.loads((Path(report_dir) / "manifest.json").read_text(encoding="utf-8"))
        return {entry["name"]: float(entry["seconds"]) for entry in manifest.get("notebooks", [])
                if entry.get("seconds") is not None}
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return {}


def start_order(names: Sequence[str], seconds: dict[str, float]) -> list[int]:
    """Indices of ``names`` in the order to start them when several run at once: the longest first
    (by ``seconds``, the last run's times), so the run does not end waiting on one long notebook
    started last. Notebooks without a time start first, in reverse page order: the later reports
    of a run build on more models and usually take longest.

    Examples
    --------
    >>> start_order(["01", "02", "05"], {"01": 7.0, "02": 8.0, "05": 24.0})
    [2, 1, 0]
    >>> start_order(["01", "02", "05"], {})
    [2, 1, 0]
    >>> start_order(["01", "02", "05"], {"01": 30.0, "02": 8.0})
    [2, 0, 1]
    """
    unknown = [i for i in reversed(range(len(names))) if names[i] not in seconds]
    known = sorted((i for i in range(len(names)) if names[i] in seconds), key=lambda i: -seconds[names[i]])
    return unknown + known


def _worker_start() -> None:
    # A worker is stopped by the pool's SIGTERM after its kernel was killed; it must not turn the
    # signal into KeyboardInterrupt as its parent does (crm_lib.report.runner.terminate_as_interrupt).
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _report(results: queue.Queue, index: int, ok: bool, value: Any) -> None:
    results.put((index, ok, value))


def run_tasks(
    function: Callable[..., Any],
    tasks: Sequence[tuple],
    jobs: int,
    *,
    on_start: Callable[[int], None] | None = None,
    on_done: Callable[[int, Any], None] | None = None,
) -> list[Any]:
    """``function(*task)`` for every task, at most ``jobs`` at once; the results in task order.

    Parameters
    ----------
    function : callable
        A module-level function (it is called in a worker process when ``jobs > 1``).
    tasks : sequence of tuple
        Positional arguments of each call.
    jobs : int
        1: each call in this process, one after the other. More: a pool of that many worker
        processes (forked, so they start without importing anything again); tasks start in
        order as workers free up.
    on_start, on_done : callable, optional
        Called in this process with a task's index when it starts, and with its index and
        result when it ends (in the order tasks end).

    Returns
    -------
    list
        ``function``'s result for each task, in the order of ``tasks``.

    Notes
    -----
    An exception raised by ``function`` is raised here (after the other running tasks are
    stopped). On KeyboardInterrupt (Ctrl-C, or SIGTERM under
    :func:`crm_lib.report.runner.terminate_as_interrupt`) the kernels of every worker are killed
    before the workers are.
    """
    on_start = on_start or (lambda index: None)
    on_done = on_done or (lambda index, result: None)
    jobs = max(1, min(int(jobs), len(tasks)))
    if jobs == 1:
        out = []
        for index, task in enumerate(tasks):
            on_start(index)
            out.append(function(*task))
            on_done(index, out[-1])
        return out
    finished: queue.Queue = queue.Queue()
    results: list[Any] = [None] * len(tasks)
    pool = multiprocessing.get_context("fork").Pool(processes=jobs, initializer=_worker_start)
    try:
        for index, task in enumerate(tasks):
            pool.apply_async(function, task, callback=partial(_report, finished, index, True),
                             error_callback=partial(_report, finished, index, False))
        started = min(jobs, len(tasks))
        for index in range(started):
            on_start(index)
        for _ in range(len(tasks)):
            while True:  # a timed wait, so that Ctrl-C and SIGTERM are seen at once
                try:
                    index, ok, value = finished.get(timeout=0.5)
                    break
                except queue.Empty:
                    continue
            if not ok:
                raise value
            results[index] = value
            on_done(index, value)
            if started < len(tasks):  # the pool hands tasks out in order: this one starts now
                on_start(started)
                started += 1
        pool.close()
        pool.join()
    except BaseException:
        killed = kill_kernels()
        if killed:
            logger.warning("stopped; killed the kernels %s of the running notebooks", killed)
        raise
    finally:
        pool.terminate()
    return results
