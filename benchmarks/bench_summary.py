"""Benchmark: crm_lib.summary against lifetimes.utils on a large simulated log.

Prints a table of wall times (best of --repeat runs), the ratio and the largest
difference between the two results. Issue 2 asks for crm_lib to be at least as fast as
lifetimes on 2.5 million transactions.

    python benchmarks/bench_summary.py                      # 2.5M transactions
    python benchmarks/bench_summary.py --transactions 200000
"""
from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd

from crm_lib.summary import calibration_holdout_summary, rfm_summary

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from lifetimes.utils import calibration_and_holdout_data, summary_data_from_transaction_data


def simulate_log(n_transactions: int, seed: int = 0) -> pd.DataFrame:
    """A log of ``n_transactions`` over 2 years: ~2.5 transactions per customer, gamma spend."""
    rng = np.random.default_rng(seed)
    n_customers = max(1, int(n_transactions / 2.5))
    customers = rng.integers(0, n_customers, n_transactions)
    start = rng.integers(0, 365, n_customers)  # acquisition day of each customer
    offset = np.minimum(start[customers] + rng.exponential(120, n_transactions).astype(int), 729)
    return pd.DataFrame(
        {
            "customer_id": customers.astype(str),
            "date": pd.Timestamp("2020-01-01") + pd.to_timedelta(offset, unit="D"),
            "amount": np.round(rng.gamma(2.0, 18.0, n_transactions), 2),
        }
    )


def best_time(function, repeat: int):
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - started)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--transactions", type=int, default=2_500_000, help="size of the simulated log")
    parser.add_argument("--repeat", type=int, default=3, help="runs per task; the best time is shown")
    args = parser.parse_args()

    tx = simulate_log(args.transactions)
    END = tx["date"].max()  # the window rule: the end is explicit, here the last purchase day
    print(f"simulated log: {len(tx):,} transactions, {tx['customer_id'].nunique():,} customers\n")
    tasks = {
        "summary, days": (
            lambda: rfm_summary(tx, time_unit="D", observation_end=END),
            lambda: summary_data_from_transaction_data(tx, "customer_id", "date", "amount", freq="D"),
        ),
        "summary, weeks": (
            lambda: rfm_summary(tx, time_unit="W", observation_end=END),
            lambda: summary_data_from_transaction_data(tx, "customer_id", "date", "amount", freq="W"),
        ),
        "calibration/holdout, weeks": (
            lambda: calibration_holdout_summary(tx, calibration_end="2021-03-31", observation_end=END, time_unit="W"),
            lambda: calibration_and_holdout_data(
                tx, "customer_id", "date", calibration_period_end="2021-03-31", freq="W", monetary_value_col="amount"
            ),
        ),
    }
    header = f"{'task':<28} {'lifetimes s':>12} {'crm_lib s':>10} {'speed-up':>9} {'max abs diff':>13}"
    print(header)
    print("-" * len(header))
    for name, (ours, theirs) in tasks.items():
        t_ours, r_ours = best_time(ours, args.repeat)
        t_theirs, r_theirs = best_time(theirs, args.repeat)
        diff = float(np.nanmax(np.abs(r_ours.to_numpy() - r_theirs[r_ours.columns].to_numpy())))
        print(f"{name:<28} {t_theirs:>12.2f} {t_ours:>10.2f} {t_theirs / t_ours:>8.1f}x {diff:>13.2e}")


if __name__ == "__main__":
    main()
