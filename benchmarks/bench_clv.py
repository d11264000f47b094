"""Speed of crm_lib.clv against plain lifetimes on the same simulated base, in the same run.

    python benchmarks/bench_clv.py                      # 1,000,000 customers (Pareto/NBD: 100,000)
    python benchmarks/bench_clv.py --customers 100000   # scaled down (Pareto/NBD: a tenth)

The base is simulated (seeded) from the published CDNOW estimates: BG/NBD (FHL 2005a) for
the BG/NBD fit and CLV, Pareto/NBD for the Pareto/NBD fit, Gamma-Gamma spend; ages are
whole weeks (1..max_age) and recency is rounded down to whole weeks, as a weekly summary
is. Prints one table: task, lifetimes seconds, crm_lib seconds, ratio, and the maximum
relative difference of the results (parameters for fits, per-customer values for CLV).
"""
from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd

warnings.filterwarnings("ignore")

import lifetimes  # noqa: E402

from crm_lib import clv  # noqa: E402
from crm_lib.simulate import simulate_base  # noqa: E402

PARETO_CDNOW = (0.553, 10.578, 0.606, 11.669)


REPEAT = 1


def timed(function):
    """Result and best wall time of REPEAT runs (the machine may be shared)."""
    best = np.inf
    for _ in range(REPEAT):
        start = time.perf_counter()
        result = function()
        best = min(best, time.perf_counter() - start)
    return result, best


def max_relative_difference(ours, reference) -> float:
    ours, reference = np.asarray(ours, dtype=float), np.asarray(reference, dtype=float)
    return float(np.max(np.abs(ours - reference) / np.maximum(np.abs(reference), 1e-300)))


def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000, help="customers for BG/NBD and CLV")
    parser.add_argument("--pareto-customers", type=int, default=None, help="customers for Pareto/NBD (default a tenth)")
    parser.add_argument("--max-age", type=int, default=130, help="oldest customer, in weeks")
    parser.add_argument("--months", type=int, default=12, help="CLV horizon in months")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--repeat", type=int, default=1, help="time each task this many times, keep the best")
    parser.add_argument("--skip-weighted", action="store_true", help="skip lifetimes on collapsed rows")
    args = parser.parse_args(argv)
    global REPEAT
    REPEAT = max(args.repeat, 1)
    n_pareto = args.pareto_customers or max(args.customers // 10, 1000)

    # Warm up both libraries (imports, first calls of the special functions) off the clock.
    warm = simulate_base(2000, max_age=args.max_age, seed=args.seed + 99)
    lifetimes.BetaGeoFitter().fit(warm["frequency"], warm["recency"], warm["T"])
    lifetimes.ParetoNBDFitter().fit(warm["frequency"], warm["recency"], warm["T"])
    clv.fit_model(warm, "bg_nbd")
    clv.fit_model(warm, "pareto_nbd")

    base = simulate_base(args.customers, max_age=args.max_age, seed=args.seed)
    f, r, T, m = (base[c] for c in ("frequency", "recency", "T", "monetary_value"))
    n_histories = len(base[["frequency", "recency", "T"]].drop_duplicates())
    print(f"BG/NBD base: {len(base):,} customers, {int(f.sum() + len(base)):,} transactions, "
          f"{n_histories:,} distinct (frequency, recency, T)")
    rows = []

    # BG/NBD fit.
    reference, t_ref = timed(lambda: lifetimes.BetaGeoFitter().fit(f, r, T))
    ours, t_ours = timed(lambda: clv.fit_model(base, "bg_nbd"))
    rows.append(("BG/NBD fit", t_ref, t_ours, max_relative_difference(ours.params_, reference.params_)))
    if not args.skip_weighted:
        def lifetimes_weighted():
            (uf, ur, uT), w, _ = clv.collapse_histories(f, r, T)
            return lifetimes.BetaGeoFitter().fit(uf, ur, uT, weights=w)
        weighted, t_weighted = timed(lifetimes_weighted)
        rows.append(("BG/NBD fit (lifetimes given collapsed rows + weights)", t_weighted, t_ours,
                     max_relative_difference(ours.params_, weighted.params_)))

    # Per-customer CLV with the same parameters in both.
    spend = clv.fit_spend_model(base)
    reference_gg = lifetimes.GammaGammaFitter()
    reference_gg.params_ = spend.params_.copy()
    reference_bg = lifetimes.BetaGeoFitter()
    reference_bg.params_ = ours.params_.copy()
    reference_bg.predict = reference_bg.conditional_expected_number_of_purchases_up_to_time
    clv_ref, t_ref = timed(lambda: reference_gg.customer_lifetime_value(
        reference_bg, f, r, T, m, time=args.months, discount_rate=0.01, freq="W"))
    clv_ours, t_ours = timed(lambda: clv.customer_lifetime_value(
        ours, spend, base, horizon_months=args.months, discount_rate_monthly=0.01, time_unit="W"))
    rows.append((f"CLV per customer ({args.months} months)", t_ref, t_ours, max_relative_difference(clv_ours, clv_ref)))

    # Pareto/NBD fit.
    pareto_base = simulate_base(n_pareto, max_age=args.max_age, params=PARETO_CDNOW, model="pareto_nbd",
                                seed=args.seed + 1)
    pf, pr, pT = (pareto_base[c] for c in ("frequency", "recency", "T"))
    print(f"Pareto/NBD base: {len(pareto_base):,} customers, {int(pf.sum() + len(pareto_base)):,} transactions")
    reference, t_ref = timed(lambda: lifetimes.ParetoNBDFitter().fit(pf, pr, pT))
    ours_p, t_ours = timed(lambda: clv.fit_model(pareto_base, "pareto_nbd"))
    rows.append(("Pareto/NBD fit", t_ref, t_ours, max_relative_difference(ours_p.params_, reference.params_)))
    scale = 1 / pT.max()
    scaled = ours_p.params_.to_numpy() * [1, scale, 1, scale]
    ll_ours = lifetimes.ParetoNBDFitter._negative_log_likelihood(
        scaled, pf.to_numpy().astype(int), pr.to_numpy() * scale, pT.to_numpy() * scale, np.ones(len(pf)), 0.0)
    print(f"Pareto/NBD mean negative log-likelihood on lifetimes' objective: lifetimes "
          f"{reference._negative_log_likelihood_:.10f}, crm_lib {ll_ours:.10f}")

    table = pd.DataFrame(rows, columns=["task", "lifetimes_s", "crm_lib_s", "max_rel_diff"])
    table["ratio"] = table["lifetimes_s"] / table["crm_lib_s"]
    table = table[["task", "lifetimes_s", "crm_lib_s", "ratio", "max_rel_diff"]]
    print(table.to_string(index=False, formatters={"lifetimes_s": "{:.2f}".format, "crm_lib_s": "{:.3f}".format,
                                                   "ratio": "{:.1f}x".format, "max_rel_diff": "{:.1e}".format}))
    return table


if __name__ == "__main__":
    main()
