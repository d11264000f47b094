"""Scale benchmark: the full report, and summary + BG/NBD + Gamma-Gamma + per-customer CLV, 1 M to 100 M transactions.

    python benchmarks/bench_scale.py                          # 1 M transactions: steps and full report
    python benchmarks/bench_scale.py --sizes 1e6 1e7          # add 10 M (about 4 M customers)
    python benchmarks/bench_scale.py --sizes 1e8 --report-max 0   # 100 M: steps only (about 40 M customers)
    python benchmarks/bench_scale.py --sizes 1e6 --no-steps   # the full report only

The log is simulated with :func:`crm_lib.simulate.simulate_bg_nbd` (the published CDNOW
BG/NBD estimates, FHL 2005) and Gamma-Gamma spend (CDNOW p, q, gamma): each customer's age
is a whole number of days up to 78 weeks, the BG/NBD gives the number of repeat purchases x
and the time of the last one t_x, and, given them, the other x - 1 repeat purchases are
uniform on (0, t_x) (order statistics of the Poisson process). It is written to Parquet in
chunks of customers, so no step holds the whole log unless it is the pandas or lifetimes path.

Steps and engines, in one process, per size:

- ``summary``: DuckDB out of core (open, validate, collapse to distinct (x, t_x, T) rows and
  distinct (x, m) pairs); crm_lib's pandas summary and lifetimes' summary on the log read
  into memory, up to ``--pandas-max`` / ``--lifetimes-max`` transactions;
- ``BG/NBD fit`` and ``Gamma-Gamma fit``: crm_lib on the collapsed rows with weights;
  lifetimes on every customer;
- ``CLV``: crm_lib's DuckDB scoring (predictions once per distinct row, joined back, written
  to Parquet); lifetimes' ``customer_lifetime_value`` on every customer.

Before the first size, every step (crm_lib's and lifetimes') runs once untimed on a log of
20,000 transactions, so neither library's timing carries imports and first-call set-up.

The in-memory summaries (crm_lib's, on the log as written and on the log sorted by customer
and date as ``load_transactions`` hands it over; lifetimes' on the sorted log) are timed as the
best of ``--repeat`` calls (default 3), as ``timeit`` does: a single sub-second call on a shared
machine moves by 2-3x with what else runs.

Peak memory is the largest resident set size of the process sampled every 20 ms during the
step (DuckDB's memory is in-process, so it counts). lifetimes steps are skipped above
``--lifetimes-max`` (its summary needs the whole log as a frame and minutes per 10 M rows);
the table says so.

The full report (``--report-max``, default up to 10 M transactions): the simulated log's
Parquet file, a params file with the CDNOW run's knobs pointing at it (``data_path`` the
Parquet file, its own column names), then ``crm-workbench run`` in a child process
(notebooks ``--notebooks``, by default 01 to 05), its pages written under ``--workdir``.
Each notebook's wall time is the runner's own ("done in X s"); its peak memory is the
largest RSS of the runner's process tree (runner + the notebook's kernel) sampled every
0.2 s while that notebook runs, and the kernel's own peak beside it.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import gc
import shutil
import threading
import time
import warnings
from pathlib import Path

import yaml

import numpy as np
import pandas as pd
import psutil
import pyarrow as pa
import pyarrow.parquet as pq

warnings.filterwarnings("ignore")

from crm_lib.clv import GammaGammaFit, fit_model, monthly_discount_rate  # noqa: E402
from crm_lib.engines import duckdb as engine  # noqa: E402
from crm_lib.simulate import simulate_bg_nbd  # noqa: E402
from crm_lib.summary import rfm_summary  # noqa: E402

BG_NBD_CDNOW = (0.243, 4.414, 0.793, 2.426)  # FHL (2005a), weeks
GAMMA_GAMMA_CDNOW = (6.25, 3.74, 15.44)  # FHL (2005b)
OBSERVATION_END = pd.Timestamp("2024-12-31")
MAX_AGE_DAYS = 78 * 7
CHUNK_CUSTOMERS = 1_000_000


class PeakMemory:
    """Largest RSS of this process while the block runs, sampled in a thread."""

    def __init__(self, interval: float = 0.02) -> None:
        self.interval, self.peak, self._stop = interval, 0, threading.Event()
        self._process = psutil.Process()

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._process.memory_info().rss)
            time.sleep(self.interval)

    def __enter__(self):
        self.peak = self._process.memory_info().rss
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._process.memory_info().rss)


#: CPU seconds of the last :func:`measure` (all threads of this process): on a shared machine
#: they move far less with the load than wall seconds, so the ratios are read from both.
LAST_CPU = [0.0]


def measure(function, repeat: int = 1):
    """``(result, seconds, peak GB)`` of ``function()``: with ``repeat`` > 1, the best wall time
    (and its CPU time) of that many calls, as ``timeit`` reports, and the largest peak."""
    best, best_cpu = np.inf, 0.0
    with PeakMemory() as memory:
        for _ in range(repeat):
            gc.collect()
            started, cpu = time.perf_counter(), time.process_time()
            result = function()
            seconds = time.perf_counter() - started
            if seconds < best:
                best, best_cpu = seconds, time.process_time() - cpu
    LAST_CPU[0] = best_cpu
    return result, best, memory.peak / 2**30


def _chunk(first_id: int, n: int, rng: np.random.Generator, seed: int) -> pa.Table:
    age_days = rng.integers(1, MAX_AGE_DAYS + 1, n)
    base = simulate_bg_nbd(age_days / 7.0, *BG_NBD_CDNOW, seed=seed)
    x = base["frequency"].to_numpy().astype(np.int64)
    t_x = base["recency"].to_numpy()
    per_customer = x + 1
    owner = np.repeat(np.arange(n), per_customer)
    # Position within the customer's purchases: 0 = first, x = last repeat, others uniform on (0, t_x).
    position = np.arange(len(owner)) - np.repeat(np.cumsum(per_customer) - per_customer, per_customer)
    weeks = np.where(position == 0, 0.0, rng.uniform(0.0, 1.0, len(owner)) * t_x[owner])
    weeks = np.where((position == x[owner]) & (position > 0), t_x[owner], weeks)
    first_day = OBSERVATION_END.value // 86_400_000_000_000 - age_days
    day = first_day[owner] + np.floor(weeks * 7).astype(np.int64)
    p, q, gamma = GAMMA_GAMMA_CDNOW
    nu = rng.gamma(q, 1.0 / gamma, n)
    amount = np.round(rng.gamma(p, 1.0 / nu[owner]), 2)
    return pa.table({
        "customer_id": pa.array(first_id + owner, pa.int64()),
        "date": pa.array(day * 86_400, pa.timestamp("s")),
        "amount": pa.array(amount, pa.float64()),
    })


def simulate_log(path: Path, n_transactions: int, seed: int = 0) -> tuple[int, int]:
    """Write a simulated log of about ``n_transactions`` rows to Parquet; return (rows, customers)."""
    rng = np.random.default_rng(seed)
    pilot = _chunk(0, 20_000, np.random.default_rng(seed + 10_000), seed + 10_000)
    per_customer = pilot.num_rows / 20_000
    customers = int(round(n_transactions / per_customer))
    rows, written, chunk = 0, 0, 0
    with pq.ParquetWriter(path, pa.schema([("customer_id", pa.int64()), ("date", pa.timestamp("s")),
                                           ("amount", pa.float64())])) as writer:
        while written < customers:
            n = min(CHUNK_CUSTOMERS, customers - written)
            table = _chunk(written, n, rng, seed + 1 + chunk)
            writer.write_table(table, row_group_size=1_000_000)
            rows, written, chunk = rows + table.num_rows, written + n, chunk + 1
    return rows, customers


PROJECT = Path(__file__).resolve().parents[1]
DEFAULT_NOTEBOOKS = ["01_data_overview", "02_segmentation", "03_retention_survival", "04_lifetime_value",
                     "05_loyalty_profit"]


def write_report_params(log_path: Path, workdir: Path, name: str, notebooks: list[str]) -> Path:
    """A params file: the CDNOW run's knobs (segments, margin, costs) on the simulated Parquet log."""
    cdnow = yaml.safe_load((PROJECT / "params" / "cdnow.yaml").read_text(encoding="utf-8"))
    parameters = dict(cdnow["parameters"])
    parameters.update(data_path=str(log_path.resolve()),
                      column_map={"customer_id": "customer_id", "date": "date", "amount": "amount"},
                      csv_separator=",", date_format=None)
    from crm_lib.report.knobs import registry

    declared = {knob for knob, spec in registry(PROJECT / "notebooks").items() if set(spec.notebooks) & set(notebooks)}
    parameters = {knob: value for knob, value in parameters.items() if knob in declared}
    params = {"run_name": name, "title": f"Scale benchmark ({name})", "notebooks": notebooks,
              "parameters": parameters}
    path = workdir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    return path


class TreeSampler(threading.Thread):
    """Peak RSS of a process and its children, per label (the notebook running), every ``interval`` s."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.root, self.interval, self.label = psutil.Process(pid), interval, "(start)"
        self.tree_peak: dict[str, int] = {}
        self.kernel_peak: dict[str, int] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                processes = [self.root] + self.root.children(recursive=True)
            except psutil.NoSuchProcess:
                return
            sizes = []
            for process in processes:
                try:
                    sizes.append(process.memory_info().rss)
                except psutil.NoSuchProcess:
                    pass
            label = self.label
            self.tree_peak[label] = max(self.tree_peak.get(label, 0), sum(sizes))
            self.kernel_peak[label] = max(self.kernel_peak.get(label, 0), max(sizes[1:], default=0))
            time.sleep(self.interval)


def run_report(log_path: Path, args, label: str, add) -> None:
    """``crm-workbench run`` on the simulated log; one row per notebook (runner's time, sampled peaks)."""
    workdir = Path(args.workdir)
    name = f"bench-{log_path.stem}"
    params = write_report_params(log_path, workdir, name, args.notebooks)
    command = [str(Path(sys.executable).with_name("crm-workbench")), "run", str(params), "--project", str(PROJECT),
               "--output-dir", str(workdir / "reports"), "--no-wait",
               "--jobs", "1"]  # one notebook at a time, so each row's time and peak are that notebook's
    env = dict(os.environ, CRM_PRIVATE_ROOT=str(workdir / "private"))
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    sampler = TreeSampler(process.pid)
    sampler.start()
    done = re.compile(r"\[\d+/\d+\] (\S+): (done|FAILED.*) in ([\d.]+) s")
    log_lines = []
    for line in process.stderr:
        log_lines.append(line.rstrip())
        running = re.match(r"\[\d+/\d+\] (\S+): running", line)
        if running:
            sampler.label = running.group(1)
        elif line.startswith("checking the input data"):
            sampler.label = "(check data)"
        finished = done.match(line)
        if finished:
            nb = finished.group(1)
            status = "" if finished.group(2) == "done" else finished.group(2)[:120]
            add(f"report {nb}", "crm-workbench run", float(finished.group(3)), sampler.tree_peak.get(nb, 0) / 2**30,
                f"kernel peak {sampler.kernel_peak.get(nb, 0) / 2**30:.2f} GB {status}".strip())
            sampler.label = "(render, index)"
    code = process.wait()
    sampler.stop.set()
    sampler.join()
    total = time.perf_counter() - started
    peak = max(sampler.tree_peak.values(), default=0) / 2**30
    add("report (all)", "crm-workbench run", total, peak,
        f"exit {code}; check data {sampler.tree_peak.get('(check data)', 0) / 2**30:.2f} GB" +
        ("" if code == 0 else f"; last lines: {' | '.join(log_lines[-3:])[:300]}"))


def run_size(n_transactions: int, args, rows: list[dict]) -> None:
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / f"log_{n_transactions}.parquet"
    (n_rows, n_customers), seconds, peak = measure(lambda: simulate_log(path, n_transactions))
    label = f"{n_rows / 1e6:.1f} M tx / {n_customers / 1e6:.2f} M customers"
    print(f"\n== {label}: simulated in {seconds:.1f} s ({path.stat().st_size / 2**20:.0f} MB Parquet)", flush=True)

    def add(step, engine_name, seconds, peak, note="", cpu=None):
        rows.append({"size": label, "step": step, "engine": engine_name, "seconds": round(seconds, 2),
                     "cpu_s": round(cpu, 2) if cpu is not None else np.nan, "peak_GB": round(peak, 2), "note": note})
        cpu_text = f"{cpu:8.2f} cpu" if cpu is not None else " " * 12
        print(f"  {step:<16} {engine_name:<26} {seconds:8.2f} s {cpu_text} {peak:6.2f} GB {note}", flush=True)

    if n_transactions <= args.report_max:
        run_report(path, args, label, add)
    if args.steps:
        warm_up(args)
        run_steps(path, n_transactions, n_rows, n_customers, args, add)


#: Transactions of the log every step runs on once, untimed, before the first timed size.
WARM_UP_TRANSACTIONS = 20_000
_WARMED = [False]


def warm_up(args) -> None:
    """Run every step, crm_lib's and lifetimes', once on a small log, untimed.

    The first call in a process pays imports and first-call set-up (DuckDB's extensions,
    SciPy's optimisers, pandas' and lifetimes' code paths); without this the first timed
    step of either library carries them, which moved a 1 M-transaction ratio by up to 4x.
    """
    if _WARMED[0]:
        return
    _WARMED[0] = True
    path = Path(args.workdir) / "log_warm_up.parquet"
    n_rows, n_customers = simulate_log(path, WARM_UP_TRANSACTIONS, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_steps(path, WARM_UP_TRANSACTIONS, n_rows, n_customers, args, lambda *a, **k: None)


def run_steps(path: Path, n_transactions: int, n_rows: int, n_customers: int, args, add_row) -> None:
    """Summary, fits and scoring by crm_lib's engines, then by lifetimes on the same log."""
    workdir = Path(args.workdir)

    def add(step, engine_name, seconds, peak, note=""):
        add_row(step, engine_name, seconds, peak, note, cpu=LAST_CPU[0] if seconds else None)
    temp = workdir / "duckdb_tmp"
    settings = dict(memory_limit=args.memory_limit, temp_directory=temp, threads=args.threads)

    def duck_summary():
        log = engine.open_log(path, observation_end=OBSERVATION_END, time_unit="W", **settings)
        histories = engine.collapsed_histories(log, time_unit="W", observation_end=OBSERVATION_END)
        spend = engine.collapsed_spend(log, time_unit="W", observation_end=OBSERVATION_END)
        return log, histories, spend

    (log, histories, spend), seconds, peak = measure(duck_summary)
    add("summary", "crm_lib DuckDB (collapsed)", seconds, peak,
        f"{len(histories):,} distinct (x, t_x, T) rows, {len(spend):,} (x, m) pairs")
    fit, seconds, peak = measure(lambda: fit_model(histories, "bg_nbd", weights=histories["weight"]))
    add("BG/NBD fit", "crm_lib (weighted rows)", seconds, peak, "r, alpha, a, b = " +
        ", ".join(f"{v:.3f}" for v in fit.params_))
    spend_fit, seconds, peak = measure(lambda: GammaGammaFit().fit(
        spend["frequency"], spend["monetary_value"], weights=spend["weight"], nonpositive_spend="exclude"))
    add("Gamma-Gamma fit", "crm_lib (weighted pairs)", seconds, peak,
        "p, q, gamma = " + ", ".join(f"{v:.2f}" for v in spend_fit.params_))
    discount = monthly_discount_rate(0.10)
    output = workdir / f"clv_{n_rows}.parquet"
    _, seconds, peak = measure(lambda: engine.score_customers(
        log, fit, spend_fit, time_unit="W", observation_end=OBSERVATION_END, discount_rate_monthly=discount,
        output=output))
    add("CLV", "crm_lib DuckDB -> Parquet", seconds, peak, f"{n_customers:,} customers scored")
    log.connection.close()
    del log
    shutil.rmtree(temp, ignore_errors=True)

    if n_transactions > args.pandas_max and n_transactions > args.lifetimes_max:
        add("summary", "crm_lib pandas", 0, 0, f"skipped: above --pandas-max {args.pandas_max:,.0f}")
        add("(all steps)", "lifetimes", 0, 0, f"skipped: above --lifetimes-max {args.lifetimes_max:,.0f}")
        return
    frame, seconds, peak = measure(lambda: pd.read_parquet(path))
    add("read log", "pandas (for the paths below)", seconds, peak)
    repeat = args.repeat
    if n_transactions <= args.pandas_max:
        summary, seconds, peak = measure(lambda: rfm_summary(frame, observation_end=OBSERVATION_END, time_unit="W"),
                                         repeat)
        add("summary", "crm_lib pandas (log as written)", seconds, peak,
            f"{len(summary):,} customers; dates unsorted within a customer; best of {repeat}")
        # The log as crm_lib.data.load_transactions hands it over: sorted by customer and date (the
        # sort is paid once at load, shown here). lifetimes gets this same frame below.
        frame, seconds, peak = measure(lambda: frame.sort_values(["customer_id", "date"], kind="stable",
                                                                 ignore_index=True))
        add("sort log", "pandas (as load_transactions does)", seconds, peak)
        summary, seconds, peak = measure(lambda: rfm_summary(frame, observation_end=OBSERVATION_END, time_unit="W"),
                                         repeat)
        add("summary", "crm_lib pandas (loaded log)", seconds, peak,
            f"{len(summary):,} customers; sorted by customer and date; best of {repeat}")
    if n_transactions > args.lifetimes_max:
        add("(all steps)", "lifetimes", 0, 0, f"skipped: above --lifetimes-max {args.lifetimes_max:,.0f}")
        return
    from lifetimes import BetaGeoFitter, GammaGammaFitter
    from lifetimes.utils import summary_data_from_transaction_data

    lt, seconds, peak = measure(lambda: summary_data_from_transaction_data(
        frame, "customer_id", "date", "amount", freq="W", observation_period_end=OBSERVATION_END), repeat)
    add("summary", "lifetimes", seconds, peak, f"the loaded log; best of {repeat}")
    bgf, seconds, peak = measure(lambda: BetaGeoFitter().fit(lt["frequency"], lt["recency"], lt["T"]))
    add("BG/NBD fit", "lifetimes", seconds, peak, "r, alpha, a, b = " +
        ", ".join(f"{v:.3f}" for v in bgf.params_[["r", "alpha", "a", "b"]]))
    buyers = lt[(lt["frequency"] > 0) & (lt["monetary_value"] > 0)]
    ggf, seconds, peak = measure(lambda: GammaGammaFitter().fit(buyers["frequency"], buyers["monetary_value"]))
    add("Gamma-Gamma fit", "lifetimes", seconds, peak, "p, q, gamma = " +
        ", ".join(f"{v:.2f}" for v in ggf.params_[["p", "q", "v"]]))
    _, seconds, peak = measure(lambda: ggf.customer_lifetime_value(
        bgf, lt["frequency"], lt["recency"], lt["T"], lt["monetary_value"], time=12, discount_rate=discount, freq="W"))
    add("CLV", "lifetimes", seconds, peak)


def with_ratios(table: pd.DataFrame) -> pd.DataFrame:
    """Add ``lifetimes_s``, ``ratio`` (lifetimes' wall time / ours) and ``cpu_ratio`` (CPU seconds) per crm_lib step."""
    measured = table[(table["engine"] == "lifetimes") & (table["seconds"] > 0)]
    theirs = measured.set_index(["size", "step"])["seconds"]
    ours = table[table["engine"].str.startswith("crm_lib")]
    table = table.copy()
    table["lifetimes_s"] = np.nan
    for index, row in ours.iterrows():
        if (row["size"], row["step"]) in theirs.index:
            table.loc[index, "lifetimes_s"] = theirs[(row["size"], row["step"])]
    table["ratio"] = (table["lifetimes_s"] / table["seconds"]).round(1)
    cpu = measured.set_index(["size", "step"])["cpu_s"]
    table["cpu_ratio"] = np.nan
    for index, row in ours.iterrows():
        if (row["size"], row["step"]) in cpu.index and row["cpu_s"] > 0:
            table.loc[index, "cpu_ratio"] = round(cpu[(row["size"], row["step"])] / row["cpu_s"], 1)
    return table


def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=float, nargs="+", default=[1e6], help="transactions per log")
    parser.add_argument("--lifetimes-max", type=float, default=1e6, help="largest log given to lifetimes")
    parser.add_argument("--pandas-max", type=float, default=1e7, help="largest log read into pandas")
    parser.add_argument("--report-max", type=float, default=1e7, help="largest log given the full report (0: none)")
    parser.add_argument("--notebooks", nargs="+", default=DEFAULT_NOTEBOOKS, help="notebooks of the full report")
    parser.add_argument("--steps", action=argparse.BooleanOptionalAction, default=True,
                        help="time summary, fits and CLV beside lifetimes")
    parser.add_argument("--memory-limit", default="2GB", help="DuckDB memory_limit (it spills past it)")
    parser.add_argument("--threads", type=int, default=2, help="DuckDB threads")
    parser.add_argument("--repeat", type=int, default=3,
                        help="in-memory summaries (crm_lib's and lifetimes') are timed as the best of this many calls")
    parser.add_argument("--workdir", default="/tmp/crm-bench-scale", help="where the logs, scores and reports go")
    args = parser.parse_args(argv)
    rows: list[dict] = []
    for size in args.sizes:
        print(f"load: {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} cores", flush=True)
        run_size(int(size), args, rows)
    table = with_ratios(pd.DataFrame(rows))
    with pd.option_context("display.width", 250, "display.max_colwidth", 60):
        print("\n" + table.to_string(index=False))
    load = os.getloadavg()
    print(f"load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores")
    return table


if __name__ == "__main__":
    main()
