# Quick start: `make report` renders the default report, `make test` runs the tests.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Every params file is a run; `make report PARAMS=params/cdnow.yaml` renders one.
PARAMS ?= $(sort $(wildcard params/*.yaml))
BENCH_CUSTOMERS ?= 1000000
# Transactions per simulated log of `make bench-scale` (full report up to 1e7; 1e8 runs the summary + fit + scoring path).
BENCH_SCALE_SIZES ?= 1e6
PIP    := $(BIN)/python -m pip --disable-pip-version-check

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Versions are pinned by constraints.txt so that a report re-rendered later uses the same libraries.
# The test extras (pytest, hypothesis) come with it, so a researcher can run a test from the
# same .venv that renders the reports.
$(VENV)/.installed: pyproject.toml constraints.txt | $(BIN)/python
	$(PIP) install -q -c constraints.txt -e '.[dev]'
	@touch $@

# `make test` also needs PySpark for the Spark engine's tests (the `spark` extra, 490 MB).
$(VENV)/.installed-dev: $(VENV)/.installed
	$(PIP) install -q -c constraints.txt -e '.[dev,spark]'
	@touch $@

$(VENV)/.installed-mutation: $(VENV)/.installed
	$(PIP) install -q -c constraints.txt -e '.[dev,mutation]'
	@touch $@

install: $(VENV)/.installed notebook-filter  ## create .venv and install the project with its test tools (pinned)

install-dev: $(VENV)/.installed-dev  ## install plus PySpark, for the whole test suite

report: install  ## render the reports of every params file (or PARAMS=...) into reports/<run name>/
	@status=0; for params in $(PARAMS); do $(BIN)/crm-workbench run $$params || status=1; done; exit $$status

test: install-dev  ## run the whole test suite, slow tests included
	$(BIN)/python -m pytest

test-fast: install-dev  ## run the tests that take seconds (skip notebook rendering)
	$(BIN)/python -m pytest -m "not slow"

# JupyterLab rooted at the project (params/, data, reports/ reachable) with notebooks/ open first;
# LAB_ARGS passes options through: make lab LAB_ARGS="--port 8899 --no-browser".
# --allow-root only when running as root (Jupyter refuses root without it).
LAB_ARGS ?=
LAB_ROOT_FLAG = $(if $(filter 0,$(shell id -u 2>/dev/null)),--allow-root)
lab: install  ## JupyterLab on the project, notebooks/ open, crm_lib importable (LAB_ARGS="--port 8899 --no-browser")
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/jupyter lab --ServerApp.root_dir="$(CURDIR)" \
		--LabApp.default_url=/lab/tree/notebooks $(LAB_ROOT_FLAG) $(LAB_ARGS)

# Notebooks are committed without outputs: .gitattributes routes *.ipynb through git's clean
# filter tools/notebook_filter.py (standard library only), so git stores and compares the stripped
# notebook while the working copy keeps its outputs. Set up in this checkout only (nothing outside one);
# the fallback to `cat` keeps git working in a checkout of an older commit without the script.
NOTEBOOK_FILTER = test -f tools/notebook_filter.py && exec $(PYTHON) tools/notebook_filter.py || exec cat
notebook-filter:  ## install the git filter that commits notebooks without outputs (part of make install)
	@if [ "$$(git rev-parse --show-toplevel 2>/dev/null)" = "$(CURDIR)" ]; then \
		git config filter.notebook-clean.clean '$(NOTEBOOK_FILTER)' && \
		git config filter.notebook-clean.smudge cat && \
		git config filter.notebook-clean.required true && \
		echo "git filter notebook-clean installed: notebooks are committed without outputs"; \
	else echo "not a git checkout: notebook filter not installed (make clean-notebooks strips outputs)"; fi

clean-notebooks:  ## strip outputs and execution counts from notebooks/*.ipynb in place
	$(PYTHON) tools/notebook_filter.py --in-place notebooks/*.ipynb

bench: install  ## print the speed benchmarks against lifetimes (BENCH_CUSTOMERS scales the CLV one)
	$(BIN)/python benchmarks/bench_summary.py
	$(BIN)/python benchmarks/bench_clv.py --customers $(BENCH_CUSTOMERS)
	$(BIN)/python benchmarks/bench_loyalty.py

# `make mutation` tests a seeded sample of MUTATE_SAMPLE mutants, stratified by module group
# (MUTATE_SAMPLE=0: every mutant, about 14,500, many hours); MUTATE_ONLY=glob narrows the summary.
MUTATE        ?= crm_lib/models crm_lib/clv crm_lib/survival crm_lib/retention.py crm_lib/loyalty
MUTATE_SAMPLE ?= 400
MUTATE_SEED   ?= 16
mutation: $(VENV)/.installed-mutation  ## mutation run (mutmut, sampled) over MUTATE with the fast tests; kill rate per module with 95% interval, survivors (~1 h; not CI)
	nice -n 15 $(BIN)/python tools/mutation.py --modules $(MUTATE) --sample $(MUTATE_SAMPLE) --seed $(MUTATE_SEED) \
		$(if $(MUTATE_ONLY),--only $(MUTATE_ONLY))

bench-scale: install  ## summary, BG/NBD and Gamma-Gamma fits, CLV at BENCH_SCALE_SIZES transactions, beside lifetimes
	$(BIN)/python benchmarks/bench_scale.py --sizes $(BENCH_SCALE_SIZES)

lock: install-dev  ## re-pin constraints.txt from the current .venv
	$(PIP) freeze --exclude-editable | grep -v '^crm-workbench' > constraints.txt

clean:  ## remove the virtual environment, rendered reports and the private run folders (not the cache)
	rm -rf $(VENV) reports/*/ reports/*.failed reports/.[!.]* .crm_private/runs
	find reports -maxdepth 1 -type l -delete
