"""Kernels of one run that start at once (``crm-workbench run --jobs``) compute each cached
object of the run context once: the first holds a lock, the others wait and read its result."""
from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

from crm_lib.context import RunContext


class _Context(RunContext):
    """A run context whose cache folder is a test's folder (no data needed)."""

    def __init__(self, folder: Path) -> None:
        self._memo = {}
        self._folder = folder

    @property
    def cache_dir(self) -> Path:
        return self._folder


def _compute_in_process(folder: str, marks: str, results) -> None:
    def compute() -> str:
        with open(marks, "a") as handle:  # one line per computation
            handle.write("computed\n")
        time.sleep(0.5)  # long enough that the other process asks while this one computes
        return "the summary"

    results.put(_Context(Path(folder))._cached("summary", compute))


def test_two_processes_compute_a_cached_object_once(tmp_path):
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    marks = tmp_path / "marks.txt"
    workers = [context.Process(target=_compute_in_process, args=(str(tmp_path / "cache"), str(marks), results))
               for _ in range(2)]
    for worker in workers:
        worker.start()
    values = [results.get(timeout=30) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
    assert values == ["the summary", "the summary"]
    assert marks.read_text() == "computed\n"  # without the lock both processes compute it
    assert (tmp_path / "cache" / "summary.pkl").is_file()


def test_a_cached_object_is_not_computed_again(tmp_path):
    calls = []
    first = _Context(tmp_path)._cached("fit", lambda: calls.append(1) or {"alpha": 1.0})
    second = _Context(tmp_path)._cached("fit", lambda: calls.append(1) or {"alpha": 2.0})
    assert first == second == {"alpha": 1.0} and calls == [1]
