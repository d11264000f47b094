"""Notebooks run several at a time (crm_lib.report.pool): how many, in which process, in which
order the results come back, and which kernels a stop kills."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from crm_lib.report.execute import kernel_processes
from crm_lib.report.pool import PARALLEL_MAX_TRANSACTIONS, auto_jobs, run_tasks


@pytest.mark.parametrize(
    ("notebooks", "transactions", "cores", "expected"),
    [
        (5, 69_659, 2, 2),  # CDNOW on this machine: two at once
        (5, 69_659, 1, 1),  # one core: one at a time
        (1, 69_659, 8, 1),  # never more workers than notebooks
        (6, 69_659, 16, 4),  # at most 4
        (5, PARALLEL_MAX_TRANSACTIONS, 8, 4),  # the limit itself still runs at once
        (5, PARALLEL_MAX_TRANSACTIONS + 1, 8, 1),  # a large log: one kernel (one copy of the log) at a time
        (5, None, 8, 1),  # unknown size: the safe choice
    ],
)
def test_auto_jobs(notebooks, transactions, cores, expected):
    assert auto_jobs(notebooks, transactions, cores=cores) == expected


def _pid_after(seconds: float, label: str) -> tuple[str, int]:
    time.sleep(seconds)
    return label, os.getpid()


def _fail_b(label: str) -> str:
    if label == "b":
        raise ValueError(f"task {label} failed")
    return label


def test_results_come_back_in_task_order_from_worker_processes():
    started, done = [], []
    # the first task ends last, so completion order differs from task order
    tasks = [(0.6, "a"), (0.0, "b"), (0.0, "c")]
    out = run_tasks(_pid_after, tasks, 2, on_start=started.append, on_done=lambda i, r: done.append(i))
    assert [label for label, _ in out] == ["a", "b", "c"]
    assert all(pid != os.getpid() for _, pid in out)
    assert started == [0, 1, 2]  # two at once, then the third when a worker frees up
    assert done[-1] == 0 and sorted(done) == [0, 1, 2]


def test_one_job_runs_in_this_process():
    out = run_tasks(_pid_after, [(0.0, "a"), (0.0, "b")], 1)
    assert out == [("a", os.getpid()), ("b", os.getpid())]


def test_a_failing_task_raises_here():
    with pytest.raises(ValueError, match="task b failed"):
        run_tasks(_fail_b, [("a",), ("b",), ("c",)], 2)


def test_kernel_processes_finds_kernels_of_worker_processes():
    """A kernel started by a worker (a grandchild) is found and can be killed; another process's is not."""
    # A child (the "worker") that starts a grandchild whose command line names ipykernel.
    worker = subprocess.Popen([sys.executable, "-c",
                               "import subprocess, sys, time; "
                               "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)', 'ipy' + 'kernel']); "
                               "time.sleep(30)"])
    try:
        deadline = time.monotonic() + 10
        found = []
        while not found and time.monotonic() < deadline:
            found = kernel_processes()
            time.sleep(0.05)
        assert len(found) == 1 and found[0] != worker.pid
        with open(f"/proc/{found[0]}/stat") as stat:
            assert int(stat.read().rsplit(")", 1)[1].split()[1]) == worker.pid
    finally:
        for pid in kernel_processes():
            os.kill(pid, 9)
        worker.kill()
        worker.wait()


def test_start_order_longest_first_by_the_last_run():
    from crm_lib.report.pool import start_order

    names = ["01_data_overview", "02_segmentation", "03_retention_survival", "05_loyalty_profit"]
    last_run = {"01_data_overview": 7.3, "02_segmentation": 7.8, "03_retention_survival": 10.6,
                "05_loyalty_profit": 24.3}
    assert start_order(names, last_run) == [3, 2, 1, 0]
    # a notebook new since the last run (no time yet) starts first
    assert start_order(names, {k: v for k, v in last_run.items() if k != "02_segmentation"}) == [1, 3, 2, 0]
    # no last run: later reports first
    assert start_order(names, {}) == [3, 2, 1, 0]


def test_previous_seconds_reads_the_last_manifest(tmp_path):
    import json

    from crm_lib.report.pool import previous_seconds

    assert previous_seconds(tmp_path / "none") == {}
    (tmp_path / "manifest.json").write_text(json.dumps({"notebooks": [
        {"name": "01_data_overview", "seconds": 7.25}, {"name": "05_loyalty_profit", "seconds": 24}]}))
    assert previous_seconds(tmp_path) == {"01_data_overview": 7.25, "05_loyalty_profit": 24.0}
    (tmp_path / "manifest.json").write_text("{not json")
    assert previous_seconds(tmp_path) == {}
