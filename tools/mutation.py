"""Mutation run over crm_lib modules with the fast tests (``make mutation``), and its summary.

mutmut 3 changes the code one small edit at a time (a ``+`` to a ``-``, a constant to
another, a keyword argument dropped ...) and runs the tests that reach the changed
function; a mutant that no test notices *survives*. The kill rate is the share of
non-equivalent mutants the tests notice. Not part of CI: a full run over the models takes
hours on two cores, so ``--sample N`` tests a seeded random sample of N mutants instead,
stratified by module group (proportional allocation, so the pooled sample is
self-weighting) and reports each group's kill rate with a Wilson 95% interval.

Test selection: mutmut first runs the fast tests once with every mutated function wrapped
in a trampoline that records which tests call it; each mutant then runs only those tests,
with ``-x`` (stop at the first failure). A mutant no test reaches is "no tests" and counts
as a survivor.

Two limits of that selection: a function called only while a module-scoped fixture is built is
mapped to the first test that uses the fixture (build what a test checks in a function-scoped
fixture), and mutmut records the calls of a test only once, under its name: after changing what an
existing test calls, pass its file to ``--restat`` so that the next run records it again.

The run happens in a scratch copy (``.mutation/``, git-ignored) so that mutmut's
``mutants/`` folder and its config never touch the working tree; the copy is refreshed on
every call and mutmut re-tests only what changed, so a run can be stopped and resumed.

Equivalent mutants (a change no correct test can see, e.g. a log message or a default
that every caller overrides) are listed in ``tools/mutation_equivalent.txt``, one line per
mutant name followed by the reason; they leave the denominator.

Usage::

    python tools/mutation.py --sample 400 --seed 16        # stratified sample, all groups
    python tools/mutation.py --sample 400 --seed 16 --survivors   # re-test last survivors
    python tools/mutation.py --modules crm_lib/retention.py          # every mutant of a file
    python tools/mutation.py --summary-only [--show 5]     # summarise the last run again
    python tools/mutation.py --fresh 18                    # fresh kill rate of every sample, pooled from seed 18

A sample's *fresh* kill rate is measured before any test is written against its survivors (later
re-tests with new tests only show that those tests work). The first complete result listing of each
sample is kept as ``.mutation/fresh-<N>-seed<S>.txt``; ``--fresh`` tabulates them (for samples run
before that file existed, the first complete listing saved by ``--survivors``), judged against the
current equivalents list.

``--only`` takes mutmut's mutant-name globs (``<module>.x_<function>__mutmut_<n>``;
methods are ``<module>.xǁ<Class>ǁ<method>__mutmut_<n>``) to restrict a run to some functions.
"""
from __future__ import annotations

import argparse
import fnmatch
import math
import random
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DETECTED = {"killed", "timeout", "caught by type check", "segfault"}
# Module groups of issue 16: the model, CLV, survival, retention and loyalty code.
GROUPS = {
    "models": "crm_lib/models/*",
    "clv": "crm_lib/clv/*",
    "survival": "crm_lib/survival/*",
    "retention": "crm_lib/retention.py",
    "loyalty": "crm_lib/loyalty/*",
}
# What the tests read besides crm_lib (notebooks, params, the Makefile and tools they check).
COPY_DIRS = ("crm_lib", "tests", "params", "notebooks", "tools", "validation", "benchmarks", "examples")
COPY_FILES = ("environment.yml", "constraints.txt", "Makefile", "README.md")
# Tests that reach none of the mutated modules and would only slow every run (a JVM, a browser)
# or that check the repository itself (git, the environment files) rather than crm_lib.
IGNORE = [f"--ignore=tests/test_{name}.py" for name in (
    "engine_spark", "lab_browser", "report_browser", "source_postgres", "notebooks_clean",
    "environment", "schedule")]
EQUIVALENT_FILE = REPO / "tools" / "mutation_equivalent.txt"
Z95 = 1.959963984540054

GENERATE = """
import os, sys
from mutmut.__main__ import (copy_also_copy_files, copy_src_dir, create_mutants,
                             set_mutant_under_test, setup_source_paths)
set_mutant_under_test("mutant_generation")
os.makedirs("mutants", exist_ok=True)
copy_src_dir(); copy_also_copy_files(); setup_source_paths()
print(create_mutants(int(sys.argv[1])))
"""


def prepare(workdir: Path, modules: list[str]) -> None:
    """Copy crm_lib, tests and pyproject.toml into ``workdir`` with a [tool.mutmut] section."""
    workdir.mkdir(exist_ok=True)
    for name in COPY_DIRS:
        # copy2 keeps modification times, so mutmut regenerates only the files that changed
        shutil.rmtree(workdir / name, ignore_errors=True)
        shutil.copytree(REPO / name, workdir / name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in COPY_FILES:
        shutil.copy2(REPO / name, workdir / name)
    # mutmut copies crm_lib's other files (templates, data) into mutants/ only when missing, so a
    # changed template would stay stale there and fail the report tests: refresh them here.
    mutated_copy = workdir / "mutants" / "crm_lib"
    if mutated_copy.exists():
        for source in (REPO / "crm_lib").rglob("*"):
            if source.is_file() and source.suffix not in (".py", ".pyc"):
                target = mutated_copy / source.relative_to(REPO / "crm_lib")
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
    only = [m if m.endswith((".py", "*")) else m.rstrip("/") + "/*" for m in modules]
    config = (REPO / "pyproject.toml").read_text()
    config += (
        "\n[tool.mutmut]\n"
        'source_paths = ["crm_lib"]\n'
        f"only_mutate = {only!r}\n".replace("'", '"')
        + 'pytest_add_cli_args = ["-m", "not slow", "-p", "no:warnings", "-q"]\n'
        # a mutant that loops is stopped after 2 x 4 x (its tests' CPU time + 1 s), not 2 x 15 x
        + "timeout_multiplier = 4.0\n"
        + f"pytest_add_cli_args_test_selection = {['tests/'] + IGNORE!r}\n".replace("'", '"')
        + f"also_copy = {[n for n in COPY_DIRS + COPY_FILES if n not in ('crm_lib', 'tests')]!r}\n".replace("'", '"')
    )
    (workdir / "pyproject.toml").write_text(config)


def generate(workdir: Path, max_children: int) -> None:
    """Write the mutated copies (and their name lists) without running any test."""
    subprocess.run([sys.executable, "-c", GENERATE, str(max_children)], cwd=workdir, check=True,
                   stdout=subprocess.DEVNULL)


def forget_tests(workdir: Path, test_files: list[str]) -> None:
    """Drop the recorded calls of the tests in ``test_files``: mutmut records them again as new tests."""
    import json

    path = workdir / "mutants" / "mutmut-stats.json"
    if not path.exists():
        return
    stats = json.loads(path.read_text())
    drop = lambda test: any(test.startswith(f"{f}::") or test.startswith(f"tests/{Path(f).name}::")  # noqa: E731
                            for f in test_files)
    stats["duration_by_test"] = {k: v for k, v in stats["duration_by_test"].items() if not drop(k)}
    stats["tests_by_mangled_function_name"] = {
        k: [t for t in v if not drop(t)] for k, v in stats["tests_by_mangled_function_name"].items()}
    path.write_text(json.dumps(stats))


def run(workdir: Path, only: list[str], max_children: int) -> float:
    start = time.perf_counter()
    command = [sys.executable, "-m", "mutmut", "run", "--max-children", str(max_children), *only]
    subprocess.run(command, cwd=workdir, check=False)
    return time.perf_counter() - start


def results(workdir: Path, saved: Path | None = None) -> dict[str, str]:
    """Mutant name -> status, from mutmut (or from a saved ``mutmut results --all true`` listing)."""
    out = saved.read_text() if saved else subprocess.run(
        [sys.executable, "-m", "mutmut", "results", "--all", "true"], cwd=workdir,
        capture_output=True, text=True, check=False).stdout
    status = {}
    for line in out.splitlines():
        match = re.match(r"\s+(\S+): (.+)$", line)
        if match:
            status[match.group(1)] = match.group(2).strip()
    return status


def module_of(mutant: str) -> str:
    return mutant.split(".x_")[0].split(".xǁ")[0]


def group_of(mutant: str) -> str:
    stem = module_of(mutant).replace(".", "/")
    # a package's own __init__.py gives names without a file part (crm_lib.models.x_fit_model)
    path = stem + ".py" if (REPO / (stem + ".py")).exists() else stem + "/__init__.py"
    for group, pattern in GROUPS.items():
        if fnmatch.fnmatch(path, pattern):
            return group
    return "other"


def stratified_sample(names: list[str], size: int, seed: int) -> list[str]:
    """A seeded sample of ``size`` names, allocated to the groups in proportion to their size.

    Largest-remainder rounding, so the pooled sample stays (almost exactly) self-weighting
    and its overall kill rate estimates the population one.
    """
    by_group: dict[str, list[str]] = {}
    for name in sorted(names):
        by_group.setdefault(group_of(name), []).append(name)
    total = len(names)
    size = min(size, total)
    quotas = {g: size * len(v) / total for g, v in by_group.items()}
    alloc = {g: int(q) for g, q in quotas.items()}
    for g in sorted(quotas, key=lambda g: quotas[g] - alloc[g], reverse=True)[: size - sum(alloc.values())]:
        alloc[g] += 1
    rng = random.Random(seed)
    sample = []
    for g in sorted(by_group):
        sample += rng.sample(by_group[g], alloc[g])
    return sorted(sample)


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion k/n (Wilson 1927, eq. for the 95% bounds)."""
    if n == 0:
        return (math.nan, math.nan)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (max(0.0, centre - half), min(1.0, centre + half))


def load_equivalent(path: Path = EQUIVALENT_FILE) -> dict[str, str]:
    """Mutant name -> reason, from lines ``<name> <reason>`` (``#`` starts a comment)."""
    if not path.exists():
        return {}
    out = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, reason = line.partition(" ")
            out[name] = reason.strip()
    return out


def summarise(workdir: Path, only: list[str], show: int, sample: list[str] | None = None,
              saved: Path | None = None) -> list[str]:
    """Print kill rates per group and per file (Wilson 95%), survivors and equivalents."""
    status = results(workdir, saved)
    if sample is not None:
        status = {k: v for k, v in status.items() if k in set(sample)}
    if only:
        status = {k: v for k, v in status.items() if any(fnmatch.fnmatch(k, p) for p in only)}
    equivalent = load_equivalent()
    checked = {k: v for k, v in status.items() if v != "not checked"}
    for title, key in (("group", group_of), ("file", module_of)):
        print(f"\n{title:<32} {'mutants':>7} {'equiv':>6} {'killed':>7} {'surv':>5} "
              f"{'no test':>7} {'kill rate':>9}  95% interval (Wilson)")
        rows: dict[str, Counter] = {}
        for name, s in checked.items():
            rows.setdefault(key(name), Counter())["equivalent" if name in equivalent else s] += 1
        total: Counter = Counter()
        for label, counts in sorted(rows.items()):
            total += counts
            _row(label, counts)
        _row("all", total)
    if len(checked) < len(status):
        print(f"({len(status) - len(checked)} mutants not checked yet: run again to resume)")
    survivors = sorted(k for k, v in checked.items() if v not in DETECTED and k not in equivalent)
    print(f"\nSurviving non-equivalent mutants ({len(survivors)}):")
    for name in survivors:
        print(f"  {name}: {checked[name]}")
    judged = sorted(k for k in checked if k in equivalent)
    print(f"\nEquivalent mutants in this set ({len(judged)}, from {EQUIVALENT_FILE.name}):")
    for name in judged:
        print(f"  {name}: {equivalent[name]}")
    for name in survivors[:show]:
        diff = subprocess.run([sys.executable, "-m", "mutmut", "show", name], cwd=workdir,
                              capture_output=True, text=True, check=False).stdout
        print(diff)
    return survivors


def save_fresh(workdir: Path, sample_file: Path, sample: list[str], status: dict[str, str]) -> None:
    """Keep the sample's first complete result listing (its fresh result) as ``fresh-<N>-seed<S>.txt``."""
    fresh = workdir / sample_file.name.replace("sample-", "fresh-", 1)
    if fresh.exists() or any(status.get(n) == "not checked" for n in sample):
        return
    drawn = sample_file.stat().st_mtime
    if any(saved.stat().st_mtime >= drawn for saved in workdir.glob("before-survivors-*.txt")):
        return  # its survivors were re-tested already (perhaps with new tests): not fresh any more
    fresh.write_text("".join(f"    {n}: {status[n]}\n" for n in sample if n in status))


def _fresh_listing(workdir: Path, sample_file: Path, sample: list[str]) -> dict[str, str] | None:
    fresh = workdir / sample_file.name.replace("sample-", "fresh-", 1)
    if fresh.exists():
        return results(workdir, fresh)
    # older samples: the first listing saved by --survivors after the sample was drawn, once it covered
    # (nearly) the whole sample (names of since-changed functions are missing from later listings)
    for saved in sorted(workdir.glob("before-survivors-*.txt")):
        if saved.stat().st_mtime < sample_file.stat().st_mtime:
            continue
        status = results(workdir, saved)
        checked = {n: status[n] for n in sample if status.get(n, "not checked") != "not checked"}
        if len(checked) >= 0.9 * len(sample):
            return checked
    return None


def fresh_table(workdir: Path, pool_from: int) -> None:
    """Print the fresh kill rate (Wilson 95%) of each sample of seed >= ``pool_from``, and pooled.

    Pass the first seed whose sample counts as fresh (18 in issue 16: seed 16 was the development
    sample, and the fresh series starts at 18)."""
    equivalent = load_equivalent()
    print(f"{'sample':<18} {'mutants':>7} {'equiv':>6} {'killed':>7} {'surv':>5} {'kill rate':>9}  95% interval (Wilson)")
    pooled = [0, 0]
    seed_of = lambda f: int(f.stem.rsplit("seed", 1)[1])  # noqa: E731
    files = sorted((f for f in workdir.glob("sample-*-seed*.txt") if seed_of(f) >= pool_from), key=seed_of)
    for sample_file in files:
        sample = sample_file.read_text().split()
        status = _fresh_listing(workdir, sample_file, sample)
        if status is None:
            continue
        judged = [n for n in sample if n in status and n not in equivalent]
        killed = sum(status[n] in DETECTED for n in judged)
        low, high = wilson(killed, len(judged))
        print(f"{sample_file.stem:<18} {len(status):>7} {len(status) - len(judged):>6} {killed:>7} "
              f"{len(judged) - killed:>5} {killed / len(judged):>9.1%}  [{low:.1%}, {high:.1%}]")
        pooled[0] += killed
        pooled[1] += len(judged)
    if pooled[1]:
        low, high = wilson(*pooled)
        print(f"{f'pooled seeds {pool_from}+':<18} {'':>7} {'':>6} {pooled[0]:>7} {pooled[1] - pooled[0]:>5} "
              f"{pooled[0] / pooled[1]:>9.1%}  [{low:.1%}, {high:.1%}]")


def _row(label: str, counts: Counter) -> None:
    n = sum(v for k, v in counts.items() if k != "equivalent")
    detected = sum(counts[s] for s in DETECTED)
    low, high = wilson(detected, n)
    rate = f"{detected / n:.1%}" if n else "n/a"
    interval = f"[{low:.1%}, {high:.1%}]" if n else ""
    print(f"{label:<32} {n + counts['equivalent']:>7} {counts['equivalent']:>6} {detected:>7} "
          f"{counts['survived']:>5} {counts['no tests']:>7} {rate:>9}  {interval}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modules", nargs="+", default=[p.removesuffix("*") for p in GROUPS.values()],
                        help="files or folders of crm_lib to mutate (default: the five issue-16 groups)")
    parser.add_argument("--only", nargs="*", default=[], help="mutmut mutant-name globs to restrict the run")
    parser.add_argument("--sample", type=int, default=0,
                        help="test a seeded stratified random sample of this many mutants (0: all)")
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--survivors", action="store_true",
                        help="re-test only the sample's mutants that survived last time")
    parser.add_argument("--restat", nargs="*", default=[], metavar="TEST_FILE",
                        help="test files whose calls mutmut must record again (they changed)")
    parser.add_argument("--max-children", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=REPO / ".mutation")
    parser.add_argument("--show", type=int, default=0, help="print the diff of the first N survivors")
    parser.add_argument("--summary-only", action="store_true")
    parser.add_argument("--saved", type=Path, default=None,
                        help="with --summary-only: summarise a saved `mutmut results --all true` listing "
                             "(e.g. the one written before --survivors, to compare before and after)")
    parser.add_argument("--fresh", type=int, metavar="FROM_SEED", default=None,
                        help="print every sample's fresh kill rate and the rate pooled over seeds >= FROM_SEED")
    args = parser.parse_args(argv)
    if args.fresh is not None:
        fresh_table(args.workdir, args.fresh)
        return
    sample_file = args.workdir / f"sample-{args.sample}-seed{args.seed}.txt"
    sample = sample_file.read_text().split() if args.sample and sample_file.exists() else None
    if not args.summary_only:
        prepare(args.workdir, args.modules)
        forget_tests(args.workdir, args.restat)
        names = list(args.only)
        if args.sample:
            generate(args.workdir, args.max_children)
            if sample is None:
                sample = stratified_sample(list(results(args.workdir)), args.sample, args.seed)
                sample_file.write_text("\n".join(sample) + "\n")
            status = results(args.workdir)
            if args.survivors:  # mutmut re-tests a mutant it is given by name, whatever its result
                before = args.workdir / f"before-survivors-{time.strftime('%Y%m%d-%H%M%S')}.txt"
                before.write_text("".join(f"    {k}: {v}\n" for k, v in status.items()))
                print(f"results before this re-test saved in {before}")
                equivalent = load_equivalent()
                names = [n for n in sample if status.get(n) not in DETECTED and n not in equivalent]
            else:  # resume: only the mutants without a result yet
                names = [n for n in sample if status.get(n, "not checked") == "not checked"]
            print(f"testing {len(names)} mutants (sample of {args.sample}, seed {args.seed}, list in {sample_file})")
        seconds = run(args.workdir, names, args.max_children) if names or not args.sample else 0.0
        print(f"\nmutation run took {seconds / 60:.1f} min")
        if args.sample and not args.survivors:
            save_fresh(args.workdir, sample_file, sample, results(args.workdir))
    summarise(args.workdir, args.only, args.show, sample, args.saved)


if __name__ == "__main__":
    main()
