# Quick start: `make report` renders the default report, `make test` runs the tests.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Every params file is a run; `make report PARAMS=params/cdnow.yaml` renders one.
PARAMS ?= $(sort $(wildcard params/*.yaml))
BENCH_CUSTOMERS ?= 1000000
# Transactions per simulated log of `make bench-scale` (1e8 adds the 100 M summary + fit + scoring path).
BENCH_SCALE_SIZES ?= 1e6 1e7
PIP    := $(BIN)/python -m pip --disable-pip-version-check

.PHONY: help install install-dev report test test-fast lab bench bench-scale lock clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Versions are pinned by constraints.txt so that a report re-rendered later uses the same libraries.
$(VENV)/.installed: pyproject.toml constraints.txt | $(BIN)/python
	$(PIP) install -q -c constraints.txt -e .
	@touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PIP) install -q -c constraints.txt -e '.[dev]'
	@touch $@

install: $(VENV)/.installed  ## create .venv and install the project (pinned)

install-dev: $(VENV)/.installed-dev  ## install the project with the test extras

report: install  ## render the reports of every params file (or PARAMS=...) into reports/<run name>/
	@status=0; for params in $(PARAMS); do $(BIN)/crm-workbench run $$params || status=1; done; exit $$status

test: install-dev  ## run the whole test suite, slow tests included
	$(BIN)/python -m pytest

test-fast: install-dev  ## run the tests that take seconds (skip notebook rendering)
	$(BIN)/python -m pytest -m "not slow"

lab: install  ## open JupyterLab on notebooks/ with crm_lib importable
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/jupyter lab --notebook-dir=notebooks

bench: install  ## print the speed benchmarks against lifetimes (BENCH_CUSTOMERS scales the CLV one)
	$(BIN)/python benchmarks/bench_summary.py
	$(BIN)/python benchmarks/bench_clv.py --customers $(BENCH_CUSTOMERS)
	$(BIN)/python benchmarks/bench_loyalty.py

bench-scale: install  ## summary, BG/NBD and Gamma-Gamma fits, CLV at BENCH_SCALE_SIZES transactions, beside lifetimes
	$(BIN)/python benchmarks/bench_scale.py --sizes $(BENCH_SCALE_SIZES)

lock: install-dev  ## re-pin constraints.txt from the current .venv
	$(PIP) freeze --exclude-editable | grep -v '^crm-workbench' > constraints.txt

clean:  ## remove the virtual environment and rendered reports
	rm -rf $(VENV) reports/*/ reports/*.failed
