"""Size and power of the calibrated loyalty battery (issue 15, item 7), measured by simulation.

Each run simulates a transaction log (``crm_lib.simulate.simulate_stationary_log``: the
stationary null at CDNOW's fitted parameters, or one planted loyalty effect), then does
what the report does: fits the Pareto/NBD and the Gamma-Gamma to that log, and compares
each statistic of H1-H4 and the matrix with ``--draws`` bases simulated from the fitted
models (``crm_lib.loyalty.calibrated_tests``). A run records each raw calibrated
p-value and each verdict. The script prints, per scenario and statistic, the rejection
rate (raw calibrated p < 0.05, and a verdict other than "no evidence either way" after
Holm) with its Monte-Carlo standard error sqrt(rate (1 - rate) / runs).

Resumable: every finished run is appended to ``--out`` (JSON lines) and skipped when the
script starts again. Uses ``--workers`` processes (2 by default: the machine's cores).
Run outside CI, e.g.::

    .venv/bin/python validation/loyalty_size_power.py --scenario null --customers 2000 --seeds 500
    .venv/bin/python validation/loyalty_size_power.py --scenario null --customers 20000 --seeds 100
    .venv/bin/python validation/loyalty_size_power.py --scenario all-effects --customers 2000 --seeds 200
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from crm_lib import loyalty  # noqa: E402
from crm_lib.clv import fit_model, fit_spend_model  # noqa: E402
from crm_lib.simulate import simulate_stationary_log  # noqa: E402
from crm_lib.summary import rfm_summary  # noqa: E402

#: Planted effects, each of a stated size (per year of tenure), and the statistic that should see it.
SCENARIOS = {
    "null": {},
    "spend_lift": {"spend_lift_per_year": 1.0},  # order value +100% per year of tenure: H2, H3 (and H4 via revenue)
    "cost_drop": {"cost_drop_per_year": 0.9},  # cost to serve -90% of its level per year of tenure: H4
    "rate_lift": {"rate_lift_per_year": 3.0},  # purchase rate x4 after a year of tenure: H2, H1
    "butterflies": {"butterfly_share": 0.3},  # 30% heavy (rate x6) short-lived (lifetime x0.15) buyers: H1, M
}
STATISTICS = ["H1", "H2", "H3", "H4", "M"]
SETTINGS = {"gross_margin": 0.3, "cost_per_order": 2.0}


def one_run(scenario: str, seed: int, customers: int, draws: int) -> dict:
    """Simulate one log, fit the models on it, calibrate: raw p-values and verdicts."""
    tx = simulate_stationary_log(customers, seed=seed, **SCENARIOS[scenario])
    summary = rfm_summary(tx, time_unit="D", observation_end=tx["date"].max())
    model = fit_model(summary, "pareto_nbd")
    spend = fit_spend_model(summary, nonpositive_spend="exclude")
    result = loyalty.calibrated_tests(tx, model, spend, null_draws=draws, seed=seed, **SETTINGS)
    frame = result.to_frame()
    return {
        "scenario": scenario, "seed": seed, "customers": customers, "draws": draws,
        **{f"p {h}": float(frame.loc[h, "p_value"]) for h in STATISTICS},
        **{f"verdict {h}": frame.loc[h, "verdict"] for h in STATISTICS},
    }


def _task(args: tuple) -> dict:
    return one_run(*args)


def rejection_table(runs: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """Rejection rate of each statistic with its Monte-Carlo standard error, per scenario."""
    rows = []
    for (scenario, customers, draws), group in runs.groupby(["scenario", "customers", "draws"]):
        n = len(group)
        for h in STATISTICS:
            p = group[f"p {h}"].dropna()
            rate = float((p < alpha).mean()) if len(p) else float("nan")
            verdict = float((group[f"verdict {h}"] != "no evidence either way").mean())
            rows.append({
                "scenario": scenario, "customers": customers, "draws": draws, "runs": n, "statistic": h,
                "rejection rate (p < 0.05)": rate, "MC s.e.": math.sqrt(rate * (1 - rate) / max(len(p), 1)),
                "verdict rate (Holm)": verdict, "verdict MC s.e.": math.sqrt(verdict * (1 - verdict) / n),
            })
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", default="null", choices=[*SCENARIOS, "all-effects"])
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--seeds", type=int, default=500)
    parser.add_argument("--draws", type=int, default=99, help="calibration draws per run (the report uses 249)")
    parser.add_argument("--workers", type=int, default=2)
    # Under reports/*/ (git-ignored): results are not committed.
    parser.add_argument("--out", type=Path, default=REPO / "reports" / "validation" / "loyalty_size_power.jsonl")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    scenarios = [s for s in SCENARIOS if s != "null"] if args.scenario == "all-effects" else [args.scenario]
    done = set()
    if args.out.exists():
        for line in args.out.read_text().splitlines():
            r = json.loads(line)
            done.add((r["scenario"], r["seed"], r["customers"], r["draws"]))
    todo = [(s, seed, args.customers, args.draws) for s in scenarios for seed in range(args.seeds)
            if (s, seed, args.customers, args.draws) not in done]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with Pool(args.workers) as pool, args.out.open("a") as out:
        for record in pool.imap_unordered(_task, todo):
            out.write(json.dumps(record) + "\n")
            out.flush()
    runs = pd.DataFrame([json.loads(line) for line in args.out.read_text().splitlines()])
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.float_format", "{:.3f}".format):
        print(rejection_table(runs).to_string(index=False))


if __name__ == "__main__":
    main()
