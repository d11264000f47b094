# Quick start: `make report` renders the default report, `make test` runs the tests.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Every params file is a run; `make report PARAMS=params/cdnow.yaml` renders one.
PARAMS ?= $(sort $(wildcard params/*.yaml))
BENCH_CUSTOMERS ?= 1000000
# Modules `make mutation` mutates: whichever of these paths exist, so the list follows the
# files as they move (crm_lib/clv.py -> crm_lib/models/ + crm_lib/clv/, loyalty.py -> loyalty/).
MUTATE ?= $(wildcard crm_lib/models crm_lib/clv crm_lib/clv.py crm_lib/survival crm_lib/survival.py \
                     crm_lib/retention.py crm_lib/loyalty crm_lib/loyalty.py)
# Optional mutmut mutant-name globs to restrict a run, e.g. 'crm_lib.clv.x_customer_equity*'.
MUTATE_ONLY ?=
PIP    := $(BIN)/python -m pip --disable-pip-version-check

.PHONY: help install install-dev report test test-fast lab notebook-filter clean-notebooks bench bench-scale mutation lock clean

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

$(VENV)/.installed-dev: $(VENV)/.installed
	@touch $@

$(VENV)/.installed-mutation: $(VENV)/.installed
	$(PIP) install -q -c constraints.txt -e '.[dev,mutation]'
	@touch $@

install: $(VENV)/.installed notebook-filter  ## create .venv and install the project with its test tools (pinned)

install-dev: $(VENV)/.installed-dev  ## same as install (kept for old instructions)

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
		git config filter.notebook-clean.required true && \
		echo "git filter notebook-clean installed: notebooks are committed without outputs"; \
	else echo "not a git checkout: notebook filter not installed (make clean-notebooks strips outputs)"; fi

clean-notebooks:  ## strip outputs and execution counts from notebooks/*.ipynb in place
	$(PYTHON) tools/notebook_filter.py --in-place notebooks/*.ipynb

bench: install  ## print the speed benchmarks against lifetimes (BENCH_CUSTOMERS scales the CLV one)
	$(BIN)/python benchmarks/bench_summary.py
	$(BIN)/python benchmarks/bench_clv.py --customers $(BENCH_CUSTOMERS)
	$(BIN)/python benchmarks/bench_loyalty.py

mutation: $(VENV)/.installed-mutation  ## mutation run (mutmut) over MUTATE with the fast tests; prints kill rate and survivors (hours; not CI)
	$(BIN)/python tools/mutation.py --modules $(MUTATE) $(if $(MUTATE_ONLY),--only $(MUTATE_ONLY))

lock: install-dev  ## re-pin constraints.txt from the current .venv
	$(PIP) freeze --exclude-editable | grep -v '^crm-workbench' > constraints.txt

clean:  ## remove the virtual environment, rendered reports and the private run folders (not the cache)
	rm -rf $(VENV) reports/*/ reports/*.failed reports/.[!.]* .crm_private/runs
	find reports -maxdepth 1 -type l -delete
