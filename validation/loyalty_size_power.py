"""Size and power of the calibrated loyalty battery (issue 15, item 7), measured by simulation.

Each run simulates a transaction log (``crm_lib.simulate.simulate_stationary_log``: the
stationary null at CDNOW's fitted parameters, or one planted loyalty effect), then does
what the report does: fits the Pareto/NBD and the Gamma-Gamma to that log, and compares
each statistic of H1-H4 and the matrix with ``--draws`` bases simulated from the fitted
models (``crm_lib.loyalty.calibrated_tests``). A run records each raw calibrated
p-value and each verdict. The script prints, per scenario and statistic, the rejection
rate (raw calibrated p < 0.05, and a verdict "supported" or "contradicted" after
Holm) with its Monte-Carlo standard error sqrt(rate (1 - rate) / runs).

Resumable: every finished run is appended to ``--out`` (JSON lines) and skipped when the
script starts again. Uses ``--workers`` processes (2 by default: the machine's cores).
Run outside CI, e.g.::

    .venv/bin/python validation/loyalty_size_power.py --scenario null --customers 2000 --seeds 500
    .venv/bin/python validation/loyalty_size_power.py --scenario null --customers 20000 --seeds 100
    .venv/bin/python validation/loyalty_size_power.py --scenario all-effects --customers 2000 --seeds 200
    .venv/bin/python validation/loyalty_size_power.py --scenario robustness --customers 2000 --seeds 200 --draws 29
    .venv/bin/python validation/loyalty_size_power.py --scenario table --table validation/results/loyalty_size_power.md

``all-effects`` runs the four planted effects of ``SEEN_BY``; a ``_weak`` variant runs by
its name. ``--any-version`` resumes without recomputing runs of an older pipeline version
(``VERSION``; their H4, another statistic then, stays out of the tables). ``robustness`` measures the size of the report's robustness table (normal-theory
p-values from 29 shared null draws) on stationary logs.
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
#: The sizes are those at which that statistic rejects in at least 80% of the logs of 2,000
#: customers (screened on 12 seeds, measured over 200 in validation/results/); the ``_weak``
#: variants are the first sizes tried, kept to show how power falls.
SCENARIOS = {
    "null": {},
    # Order value x3 after a year of tenure: H3 (long-lived pay more per order) and H2.
    "spend_lift": {"spend_lift_per_year": 2.0},
    # Cost to serve -90% of its level per year of tenure: H4.
    "cost_drop": {"cost_drop_per_year": 0.9},
    # Purchase rate x11 after a year of tenure: H2 (profit per period rises with tenure).
    "rate_lift": {"rate_lift_per_year": 10.0},
    # Half the customers heavy (rate x15) and short-lived (mean lifetime x0.05): H1 below the null ("contradicted").
    "butterflies": {"butterfly_share": 0.5, "butterfly_rate_factor": 15.0, "butterfly_lifetime_factor": 0.05},
    "spend_lift_weak": {"spend_lift_per_year": 1.0},
    "rate_lift_weak": {"rate_lift_per_year": 3.0},
    "butterflies_weak": {"butterfly_share": 0.3},  # rate x6, mean lifetime x0.15
}
#: The statistic each planted effect is meant to move (the power the slow test asserts).
SEEN_BY = {"spend_lift": "H3", "cost_drop": "H4", "rate_lift": "H2", "butterflies": "H1"}
STATISTICS = ["H1", "H2", "H3", "H4", "M"]
#: Verdicts that decide ("not testable" and "no evidence either way" do not).
DECIDED = ("supported", "contradicted")
SETTINGS = {"gross_margin": 0.3, "cost_per_order": 2.0}
#: Version of the pipeline a run was made with: 1 had H4 = the mean cost-share difference
#: (its H4 results are left out of the tables), 2 compares ranks (P(long > short) - 0.5).
VERSION = 2
OLD_H4 = "H4 v1"


def _fitted_log(scenario: str, seed: int, customers: int) -> tuple[pd.DataFrame, object, object]:
    """A simulated log with the Pareto/NBD and Gamma-Gamma fitted on it (as the report does)."""
    tx = simulate_stationary_log(customers, seed=seed, **SCENARIOS[scenario])
    summary = rfm_summary(tx, time_unit="D", observation_end=tx["date"].max())
    return tx, fit_model(summary, "pareto_nbd"), fit_spend_model(summary, nonpositive_spend="exclude")


def one_run(scenario: str, seed: int, customers: int, draws: int) -> dict:
    """Simulate one log, fit the models on it, calibrate: raw p-values and verdicts."""
    tx, model, spend = _fitted_log(scenario, seed, customers)
    result = loyalty.calibrated_tests(tx, model, spend, null_draws=draws, seed=seed, **SETTINGS)
    frame = result.to_frame()
    return {
        "scenario": scenario, "seed": seed, "customers": customers, "draws": draws, "version": VERSION,
        **{f"p {h}": float(frame.loc[h, "p_value"]) for h in STATISTICS},
        **{f"verdict {h}": frame.loc[h, "verdict"] for h in STATISTICS},
    }


def robustness_run(seed: int, customers: int, draws: int) -> dict:
    """The report's robustness table on one stationary log: every row's p-values and verdicts.

    The rows of notebook 05 (P(alive) thresholds 0.3 and 0.7, splits at the 33% and 67%
    quantiles, the 'first' crossing rule, the H2 panel up to the last purchase), each
    against the same ``draws`` null bases with normal-theory p-values
    (:func:`crm_lib.loyalty.calibration.normal_theory_p_value`).
    """
    tx, model, spend = _fitted_log("null", seed, customers)
    table = loyalty.robustness_table(tx, {"Pareto/NBD": model}, spend_model=spend, null_draws=draws, seed=seed,
                                     split_quantiles=(0.33, 0.67), **SETTINGS)
    p = table.attrs["p_values"]
    return {
        "scenario": "robustness", "seed": seed, "customers": customers, "draws": draws, "version": VERSION,
        "p": {variant: {h: float(p.loc[variant, h]) for h in STATISTICS} for variant in p.index},
        "verdict": {variant: {h: table.loc[variant, f"{h} verdict"] for h in STATISTICS} for variant in table.index},
    }


def _task(args: tuple) -> dict:
    if args[0] == "robustness":
        return robustness_run(*args[1:])
    return one_run(*args)


def robustness_rates(runs: list[dict], alpha: float = 0.05) -> pd.DataFrame:
    """Per row of the robustness table and statistic: rejection rate of the raw p-value and verdict rate."""
    rows = []
    for variant in runs[0]["p"]:
        for h in STATISTICS + [OLD_H4]:
            measured = [r for r in runs if r["verdict"][variant].get(h) is not None]
            if not measured:
                continue
            p = np.array([r["p"][variant][h] for r in measured], dtype=float)
            p = p[np.isfinite(p)]
            rate = float((p < alpha).mean()) if len(p) else float("nan")
            verdict = float(np.mean([r["verdict"][variant][h] in DECIDED for r in measured])) if measured else float("nan")
            rows.append({
                "variant": variant, "statistic": h, "runs": len(measured), "rejection rate (p < 0.05)": rate,
                "MC s.e.": math.sqrt(rate * (1 - rate) / max(len(p), 1)), "verdict rate (Holm)": verdict,
                "verdict MC s.e.": math.sqrt(verdict * (1 - verdict) / max(len(measured), 1)),
            })
    return pd.DataFrame(rows)


def rejection_table(runs: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """Rejection rate of each statistic with its Monte-Carlo standard error, per scenario."""
    rows = []
    for (scenario, customers, draws), group in runs.groupby(["scenario", "customers", "draws"]):
        for h in STATISTICS + [OLD_H4]:
            if f"verdict {h}" not in group or group[f"verdict {h}"].isna().all():
                continue
            measured = group[group[f"verdict {h}"].notna()]  # H4 of version 1 runs is blank
            n = len(measured)
            p = measured[f"p {h}"].dropna()
            rate = float((p < alpha).mean()) if len(p) else float("nan")
            verdict = float(measured[f"verdict {h}"].isin(DECIDED).mean()) if n else float("nan")
            rows.append({
                "scenario": scenario, "customers": customers, "draws": draws, "runs": n, "statistic": h,
                "rejection rate (p < 0.05)": rate, "MC s.e.": math.sqrt(rate * (1 - rate) / max(len(p), 1)),
                "verdict rate (Holm)": verdict, "verdict MC s.e.": math.sqrt(verdict * (1 - verdict) / max(n, 1)),
            })
    return pd.DataFrame(rows)


def _key(run: dict) -> tuple:
    return run["scenario"], run["seed"], run["customers"], run["draws"]


def read_runs(path: Path) -> list[dict]:
    """Every finished run of the results file, the latest version of each; H4 of version 1 runs blanked.

    JSON lines; a line cut short by a kill is skipped. Version 1 runs measured another H4
    statistic (the mean cost-share difference), so their H4 p-value and verdict are set
    to None; their other statistics are those of the current pipeline.
    """
    latest: dict[tuple, dict] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                run = json.loads(line)
            except json.JSONDecodeError:
                continue
            run.setdefault("version", 1)
            if run["version"] < VERSION:  # kept apart as "H4 v1", the evidence for the change
                if "p" in run:
                    for variant in run["p"]:
                        p, v = run["p"][variant], run["verdict"][variant]
                        p[OLD_H4], v[OLD_H4], p["H4"], v["H4"] = p["H4"], v["H4"], None, None
                else:
                    run[f"p {OLD_H4}"], run[f"verdict {OLD_H4}"] = run["p H4"], run["verdict H4"]
                    run["p H4"], run["verdict H4"] = None, None
            previous = latest.get(_key(run))
            if previous is None or run["version"] >= previous["version"]:
                latest[_key(run)] = _keep_old_h4(run, previous) if previous else run
            else:
                _keep_old_h4(previous, run)
    return list(latest.values())


def _keep_old_h4(run: dict, other: dict) -> dict:
    """``run`` with the "H4 v1" results of ``other`` (the same log run by the older pipeline), if any."""
    if "p" in run:
        for variant in run["p"]:
            if other["verdict"].get(variant, {}).get(OLD_H4) is not None:
                run["p"][variant][OLD_H4] = other["p"][variant][OLD_H4]
                run["verdict"][variant][OLD_H4] = other["verdict"][variant][OLD_H4]
    elif other.get(f"verdict {OLD_H4}") is not None:
        run[f"p {OLD_H4}"], run[f"verdict {OLD_H4}"] = other[f"p {OLD_H4}"], other[f"verdict {OLD_H4}"]
    return run


def _markdown(frame: pd.DataFrame) -> str:
    """A Markdown table (floats to 3 decimals) without the optional tabulate package."""
    cells = frame.map(lambda v: f"{v:.3f}" if isinstance(v, float) else str(v))
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in cells.to_numpy()])


def write_tables(runs: list[dict], table: Path | None) -> str:
    """The rejection tables as text; also Markdown + CSV next to ``table`` when given."""
    main_runs = pd.DataFrame([r for r in runs if r["scenario"] != "robustness"])
    robust_runs = [r for r in runs if r["scenario"] == "robustness"]
    parts = []
    frames = {}
    if len(main_runs):
        frames["size_power"] = rejection_table(main_runs)
    if robust_runs:
        for draws in sorted({r["draws"] for r in robust_runs}):
            same = [r for r in robust_runs if r["draws"] == draws]
            frames[f"robustness_{draws}_draws"] = robustness_rates(same).assign(customers=same[0]["customers"], draws=draws)
    with pd.option_context("display.width", 200, "display.max_columns", 20, "display.float_format", "{:.3f}".format):
        for name, frame in frames.items():
            parts.append(f"{name}\n{frame.to_string(index=False)}")
    if table is not None and frames:
        table.parent.mkdir(parents=True, exist_ok=True)
        sections = [f"## {name}\n\n{_markdown(frame)}\n" for name, frame in frames.items()]
        scenarios = "\n".join(f"- `{name}`: {kwargs or 'the stationary null'}" for name, kwargs in SCENARIOS.items())
        table.write_text(
            "# Size and power of the calibrated loyalty battery\n\nWritten by validation/loyalty_size_power.py "
            f"from {len(runs):,} finished runs. Settings: {SETTINGS}. Scenarios (planted effect per year of tenure):\n"
            f"{scenarios}\n\nRates are shares of runs with the raw calibrated p-value below 5% (size under `null`, "
            "power under an effect) and with a verdict after Holm over the five statistics, each with its Monte-Carlo "
            "standard error sqrt(rate (1 - rate) / runs). With B draws the smallest two-sided p-value is 2 / (B + 1), "
            "so the smallest Holm p-value is 10 / (B + 1): with the sweep's 99 draws (0.1) no verdict is possible and "
            "the verdict rate is 0 by construction; the report uses 249 draws (0.04). The robustness tables use "
            "29 shared draws and normal-theory p-values, as the report does. `H4 v1` rows are the mean cost-share "
            "difference that H4 used before (runs of version 1; replaced by P(long > short) - 0.5 because it did not "
            "hold its size); H4 rows are the current statistic.\n\n" + "\n".join(sections)
        )
        pd.concat([f.assign(table=name) for name, f in frames.items()]).to_csv(table.with_suffix(".csv"), index=False)
    return "\n\n".join(parts)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", default="null", choices=[*SCENARIOS, "all-effects", "robustness", "table"])
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--seeds", type=int, default=500)
    parser.add_argument("--draws", type=int, default=99, help="calibration draws per run (the report uses 249; its robustness table 29)")
    parser.add_argument("--workers", type=int, default=2)
    # Under reports/*/ (git-ignored): the raw runs are not committed; the tables (--table) are small.
    parser.add_argument("--out", type=Path, default=REPO / "reports" / "validation" / "loyalty_size_power.jsonl")
    parser.add_argument("--table", type=Path, default=None, help="also write the tables here (Markdown) and beside it (CSV)")
    parser.add_argument("--any-version", action="store_true",
                        help="count runs of an older pipeline version as done (their H4 stays out of the tables)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.scenario == "table":
        scenarios = []
    elif args.scenario == "all-effects":
        scenarios = list(SEEN_BY)
    else:
        scenarios = [args.scenario]
    done = {_key(r) for r in read_runs(args.out) if args.any_version or r["version"] == VERSION}
    # Seed by seed across the scenarios, so that a sweep stopped early covers them evenly.
    todo = [(s, seed, args.customers, args.draws) for seed in range(args.seeds) for s in scenarios
            if (s, seed, args.customers, args.draws) not in done]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with Pool(args.workers) as pool, args.out.open("a") as out:
        for record in pool.imap_unordered(_task, todo):
            out.write(json.dumps(record) + "\n")
            out.flush()
    print(write_tables(read_runs(args.out), args.table))


if __name__ == "__main__":
    main()
