"""Mutation run over crm_lib modules with the fast tests (``make mutation``), and its summary.

mutmut 3 changes the code one small edit at a time (a ``+`` to a ``-``, a constant to
another, a keyword argument dropped ...) and runs the tests that reach the changed
function; a mutant that no test notices *survives*. The kill rate is the share of mutants
the tests notice. Not part of CI: a full run over the models takes hours on two cores.

The run happens in a scratch copy (``.mutation/``, git-ignored) so that mutmut's
``mutants/`` folder and its config never touch the working tree; the copy is refreshed on
every call and mutmut re-tests only what changed, so a run can be stopped and resumed.

Usage::

    python tools/mutation.py --modules crm_lib/retention.py crm_lib/clv.py \
        [--only 'crm_lib.clv.x_holdout_validation*'] [--max-children 2]
    python tools/mutation.py --summary-only          # summarise the last run again

``--only`` takes mutmut's mutant-name globs (``<module>.x_<function>__mutmut_<n>``;
methods are ``<module>.xǁ<Class>ǁ<method>__mutmut_<n>``) to restrict a run to some functions.
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DETECTED = {"killed", "timeout", "caught by type check", "segfault"}


def prepare(workdir: Path, modules: list[str]) -> None:
    """Copy crm_lib, tests and pyproject.toml into ``workdir`` with a [tool.mutmut] section."""
    workdir.mkdir(exist_ok=True)
    for name in ("crm_lib", "tests", "params", "notebooks"):
        shutil.copytree(REPO / name, workdir / name, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("environment.yml", "constraints.txt"):
        shutil.copy2(REPO / name, workdir / name)
    only = [m if m.endswith((".py", "*")) else m.rstrip("/") + "/*" for m in modules]
    config = (REPO / "pyproject.toml").read_text()
    config += (
        "\n[tool.mutmut]\n"
        'source_paths = ["crm_lib"]\n'
        f"only_mutate = {only!r}\n".replace("'", '"')
        + 'pytest_add_cli_args = ["-m", "not slow", "-p", "no:warnings", "-q"]\n'
        + 'pytest_add_cli_args_test_selection = ["tests/"]\n'
        + 'also_copy = ["environment.yml", "constraints.txt", "params", "notebooks"]\n'
    )
    (workdir / "pyproject.toml").write_text(config)


def run(workdir: Path, only: list[str], max_children: int) -> float:
    start = time.perf_counter()
    command = [sys.executable, "-m", "mutmut", "run", "--max-children", str(max_children), *only]
    subprocess.run(command, cwd=workdir, check=False)
    return time.perf_counter() - start


def results(workdir: Path) -> dict[str, str]:
    out = subprocess.run([sys.executable, "-m", "mutmut", "results", "--all", "true"], cwd=workdir,
                         capture_output=True, text=True, check=False).stdout
    status = {}
    for line in out.splitlines():
        match = re.match(r"\s+(\S+): (.+)$", line)
        if match:
            status[match.group(1)] = match.group(2).strip()
    return status


def module_of(mutant: str) -> str:
    name = mutant.split(".x_")[0].split(".xǁ")[0]
    return name


def summarise(workdir: Path, only: list[str], show: int) -> None:
    import fnmatch

    status = results(workdir)
    if only:
        status = {k: v for k, v in status.items() if any(fnmatch.fnmatch(k, p) for p in only)}
    checked = {k: v for k, v in status.items() if v != "not checked"}
    print(f"\n{'module':<28} {'mutants':>8} {'killed':>8} {'survived':>9} {'no tests':>9} {'kill rate':>10}")
    by_module: dict[str, Counter] = {}
    for name, s in checked.items():
        by_module.setdefault(module_of(name), Counter())[s] += 1
    total = Counter()
    for module, counts in sorted(by_module.items()):
        total += counts
        _row(module, counts)
    _row("all", total)
    if len(checked) < len(status):
        print(f"({len(status) - len(checked)} mutants not checked yet: run again to resume)")
    survivors = sorted(k for k, v in checked.items() if v not in DETECTED)
    print(f"\nSurviving mutants ({len(survivors)}):")
    for name in survivors:
        print(f"  {name}: {checked[name]}")
    for name in survivors[:show]:
        diff = subprocess.run([sys.executable, "-m", "mutmut", "show", name], cwd=workdir,
                              capture_output=True, text=True, check=False).stdout
        print(diff)


def _row(module: str, counts: Counter) -> None:
    n = sum(counts.values())
    detected = sum(counts[s] for s in DETECTED)
    rate = f"{detected / n:.1%}" if n else "n/a"
    print(f"{module:<28} {n:>8} {detected:>8} {counts['survived']:>9} {counts['no tests']:>9} {rate:>10}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modules", nargs="+", default=["crm_lib/retention.py"],
                        help="files or folders of crm_lib to mutate")
    parser.add_argument("--only", nargs="*", default=[], help="mutmut mutant-name globs to restrict the run")
    parser.add_argument("--max-children", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=REPO / ".mutation")
    parser.add_argument("--show", type=int, default=0, help="print the diff of the first N survivors")
    parser.add_argument("--summary-only", action="store_true")
    args = parser.parse_args(argv)
    if not args.summary_only:
        prepare(args.workdir, args.modules)
        seconds = run(args.workdir, args.only, args.max_children)
        print(f"\nmutation run took {seconds / 60:.1f} min")
    summarise(args.workdir, args.only, args.show)


if __name__ == "__main__":
    main()
