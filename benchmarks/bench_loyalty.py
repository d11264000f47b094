"""Benchmark: lifetimes from P(alive) on the full CDNOW log, three ways.

1. ``crm_lib.loyalty.lifetime_durations``: bisection on the integer grid of every gap
   between purchases, all gaps at once (about log2(longest gap) model calls);
2. the dense grid: P(alive) at every day of every customer's history in chunks of
   vectorised calls, then the first day below the threshold after the last purchase;
3. the per-customer loop: one vectorised call per customer (on a subset, extrapolated).

All three must give the same durations (1 and 2 on every customer, 1 and 3 on the
subset). Prints a table of wall times, then the cost of the calibrated battery
(``crm_lib.loyalty.calibrated_tests``): the observed statistics and ``--null-draws``
bases with no loyalty effect, per draw.

    python benchmarks/bench_loyalty.py                  # full CDNOW, Pareto/NBD in days
    python benchmarks/bench_loyalty.py --loop-customers 500

``--scale N`` times instead what report 05 computes on a simulated stationary log of N
customers (``crm_lib.simulate.simulate_stationary_log``, CDNOW's fitted parameters, 540
days): the models fitted in weeks on every customer, then ``loyalty_analysis`` (249 null
draws, 1,000 bootstrap resamples) and the robustness table (29 draws), which run on a
random sample of ``crm_lib.loyalty.analysis.MAX_CUSTOMERS`` customers when N is larger::

    python benchmarks/bench_loyalty.py --scale 1000000
"""
from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd

from crm_lib import loyalty
from crm_lib.clv import fit_model, fit_spend_model
from crm_lib.data import load_transactions
from crm_lib.datasets import CDNOW_COLUMN_MAP
from crm_lib.summary import rfm_summary

END = pd.Timestamp("1998-06-30")


def histories(tx: pd.DataFrame) -> pd.DataFrame:
    """Per customer: distinct purchase days since the first, as arrays, and the age at END."""
    days = tx.assign(day=tx["date"].dt.normalize()).drop_duplicates(["customer_id", "day"])
    first = days.groupby("customer_id")["day"].transform("min")
    days = days.assign(age=(days["day"] - first).dt.days)
    grouped = days.groupby("customer_id")
    return pd.DataFrame(
        {
            "x": grouped["age"].size() - 1.0,
            "t_x": grouped["age"].max().astype(float),
            "T": (END - grouped["day"].min()).dt.days.astype(float),
        }
    )


def dense_grid(model, h: pd.DataFrame, threshold: float, chunk: int = 2_000_000) -> pd.Series:
    """Every day from the last purchase to END, for every customer, in chunks."""
    length = (h["T"] - h["t_x"] + 1).astype(int).to_numpy()
    owner = np.repeat(np.arange(len(h)), length)
    age = h["t_x"].to_numpy()[owner] + (np.arange(length.sum()) - np.repeat(np.cumsum(length) - length, length))
    below = np.empty(len(age), dtype=bool)
    x, t_x = h["x"].to_numpy()[owner], h["t_x"].to_numpy()[owner]
    for start in range(0, len(age), chunk):
        part = slice(start, start + chunk)
        p = model.conditional_probability_alive(x[part], t_x[part], age[part].astype(float))
        p = np.where(np.isnan(p) & (age[part] == t_x[part]), 1.0, p)
        below[part] = p < threshold
    first_below = np.full(len(h), np.inf)
    np.minimum.at(first_below, owner[below], age[below])
    return pd.Series(np.where(np.isfinite(first_below), first_below, h["T"].to_numpy()), index=h.index), len(age)


def per_customer(model, h: pd.DataFrame, threshold: float) -> pd.Series:
    out = {}
    for customer, row in h.iterrows():
        ages = np.arange(row["t_x"], row["T"] + 1)
        p = model.conditional_probability_alive(np.full(len(ages), row["x"]), np.full(len(ages), row["t_x"]), ages)
        p = np.where(np.isnan(p) & (ages == row["t_x"]), 1.0, p)
        below = np.flatnonzero(p < threshold)
        out[customer] = ages[below[0]] if len(below) else row["T"]
    return pd.Series(out)


def scale(n_customers: int, null_draws: int = 249, seed: int = 42) -> None:
    """Report 05's loyalty computation on a simulated log of ``n_customers``, timed step by step."""
    from crm_lib.simulate import simulate_stationary_log

    times, cpu = {}, {}
    started, cpu_started = time.perf_counter(), time.process_time()

    def lap(step: str) -> None:
        nonlocal started, cpu_started
        times[step], cpu[step] = time.perf_counter() - started, time.process_time() - cpu_started
        started, cpu_started = time.perf_counter(), time.process_time()

    tx = simulate_stationary_log(n_customers, seed=seed)
    lap("simulate the log")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summary = rfm_summary(tx, time_unit="W", observation_end=tx["date"].max())
        model = fit_model(summary, "pareto_nbd")
        spend = fit_spend_model(summary, nonpositive_spend="exclude")
        lap("summary and fits (every customer)")
        analysis = loyalty.loyalty_analysis(tx, model, time_unit="W", gross_margin=0.3, cost_per_order=2.0, seed=seed,
                                            spend_model=spend, null_draws=null_draws, n_bootstrap=1000)
        lap(f"loyalty_analysis ({null_draws} null draws)")
        table = loyalty.robustness_table(tx, {"Pareto/NBD": model}, spend_model=spend, null_draws=29, time_unit="W",
                                         gross_margin=0.3, cost_per_order=2.0, seed=seed)
        lap("robustness table (29 null draws)")
    print(f"simulated log: {n_customers:,} customers, {len(tx):,} transactions")
    # CPU time (this process) beside wall time: on a shared machine the wall time mostly measures the others.
    print(f"{'step':<42} {'wall s':>9} {'CPU s':>9}")
    for step, seconds in times.items():
        print(f"{step:<42} {seconds:>9.1f} {cpu[step]:>9.1f}")
    print(f"{'loyalty total (report 05)':<42} {sum(list(times.values())[2:]):>9.1f} {sum(list(cpu.values())[2:]):>9.1f}")
    print(analysis.sample_note or "(whole base used)")
    print(analysis.calibration.verdicts()[["verdict"]].T.to_string())
    print(table[[c for c in table.columns if c.endswith("verdict")]].to_string())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--loop-customers", type=int, default=1000, help="customers in the per-customer loop")
    parser.add_argument("--null-draws", type=int, default=50, help="null bases of the calibration timing")
    parser.add_argument("--scale", type=int, default=0, help="time report 05 on a simulated log of this many customers")
    args = parser.parse_args()
    if args.scale:
        scale(args.scale)
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        log = load_transactions("embedded:CDNOW_master.txt", column_map=CDNOW_COLUMN_MAP, sep=r"\s+",
                                date_format="%Y%m%d", observation_end=END)
        tx = log.transactions
        model = fit_model(rfm_summary(tx, observation_end=END), "pareto_nbd")
        h = histories(tx)

        started = time.perf_counter()
        fast = loyalty.lifetime_durations(tx, model, p_alive_threshold=args.threshold, observation_end=END)["duration"]
        t_fast = time.perf_counter() - started

        started = time.perf_counter()
        dense, evaluations = dense_grid(model, h, args.threshold)
        t_dense = time.perf_counter() - started

        subset = h.iloc[:: max(1, len(h) // args.loop_customers)]
        started = time.perf_counter()
        loop = per_customer(model, subset, args.threshold)
        t_loop = (time.perf_counter() - started) * len(h) / len(subset)

    same_dense = bool((fast.reindex(h.index) == dense).all())
    same_loop = bool((fast.reindex(subset.index) == loop).all())
    print(f"CDNOW: {len(h):,} customers, {len(tx):,} transactions, threshold {args.threshold}")
    print(f"{'method':<42} {'seconds':>9}  same durations")
    print(f"{'bisection per gap (lifetime_durations)':<42} {t_fast:>9.2f}  -")
    print(f"{f'dense grid ({evaluations:,} P(alive) values)':<42} {t_dense:>9.2f}  {same_dense}")
    print(f"{f'per-customer loop (from {len(subset):,} customers)':<42} {t_loop:>9.2f}  {same_loop}")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        spend = fit_spend_model(rfm_summary(tx, observation_end=END), nonpositive_spend="exclude")
        started = time.perf_counter()
        result = loyalty.calibrated_tests(tx, model, spend, null_draws=args.null_draws, observation_end=END,
                                          gross_margin=0.3, cost_per_order=2.0)
        t_cal = time.perf_counter() - started
    print(f"calibrated battery, {args.null_draws} null bases: {t_cal:.2f} s ({t_cal / args.null_draws * 1000:.0f} ms a base)")
    print(result.summary())


if __name__ == "__main__":
    main()
