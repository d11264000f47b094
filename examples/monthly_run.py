#!/usr/bin/env python3
"""Run the month's reports from cron, a systemd timer or CI: no edited YAML, silent on success.

    examples/monthly_run.py params/cdnow.yaml [params/my_shop.yaml ...] [--keep-runs 24] [--project DIR]

Each run uses the data up to its last day (``observation_end: latest``), calibrates on
all but the last 26 weeks (``calibration_end: -26w``), keeps the last ``--keep-runs``
reports as ``reports/<run>/<observation end>/`` with ``reports/<run>/latest`` at the
newest, and prints nothing when it worked. Exit status, as ``crm-workbench run``:

    0  published            1  a notebook failed (last good report kept)
    2  bad params or data   3  the machine (disk, permission, another run)
    4  no rows after the latest kept run: the export is late, truncated or not new;
       nothing was run (the scheduler's mail says so in one line)

Extra arguments after ``--`` go to ``crm-workbench run`` as they are.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

#: The window of a monthly run: the data up to its last day, the last 26 weeks as holdout.
MONTHLY_KNOBS = ("observation_end=latest", "calibration_end=-26w")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("params", nargs="+", type=Path, help="params file(s) of the month's runs")
    parser.add_argument("--keep-runs", type=int, default=24, help="reports kept per run name (default: %(default)s)")
    parser.add_argument("--project", type=Path, help="the project folder (default: found from the params file)")
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    args = parser.parse_args(argv[: len(argv) - len(extra) - (1 if "--" in argv else 0)])
    from crm_lib.cli import main as workbench

    command = ["run", *map(str, args.params), "-q", "--keep-runs", str(args.keep_runs), "--no-progress-bar"]
    for knob in MONTHLY_KNOBS:
        command += ["--set", knob]
    if args.project:
        command += ["--project", str(args.project)]
    return workbench(command + extra)


if __name__ == "__main__":
    sys.exit(main())
