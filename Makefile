# access-audit — `make help` lists the targets.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DEMO   ?= demo
STAFF  ?= 300
DAYS   ?= 14
SEED   ?= 7
# The public independent force (../shared relative to the repo root here and in CI).
NORTHSHIRE ?= ../shared/forces/northshire.py
EVALUATE_ARGS ?=
# The demo force's days end yesterday, so `flag --since 7d` shows them.
START  ?= $(shell date -u -d "$(DAYS) days ago" +%F)

.DEFAULT_GOAL := help
.PHONY: help venv install browser lint format test test-all demo notebooks bench evaluate clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-10s %s\n", $$1, $$2}'

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/activate
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

venv: $(VENV)/.installed ## Create .venv and install access-audit with its dev tools

install: venv ## Same as venv

lint: venv ## ruff check, ruff format --check, mypy (strict on src/)
	$(BIN)/ruff check src tests pipelines benchmarks
	$(BIN)/ruff format --check src tests pipelines benchmarks
	$(BIN)/mypy

format: venv ## Apply ruff's formatting and safe fixes
	$(BIN)/ruff format src tests pipelines benchmarks
	$(BIN)/ruff check --fix src tests pipelines benchmarks

browser: ## Install Debian's chromium, chromium-driver and poppler-utils for the browser, report and evidence tests (needs root or sudo)
	@{ command -v chromium && command -v chromedriver && command -v pdftotext; } >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null 2>&1; then SUDO=sudo; \
	  else echo "chromium, chromedriver or pdftotext is missing and there is no root to install them: apt-get install chromium chromium-driver poppler-utils" >&2; exit 1; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium chromium-driver poppler-utils >/dev/null; }

test: lint browser ## Lint, then the fast test suite (what CI runs)
	$(BIN)/python -m pytest

test-all: lint browser ## Lint, then every test, the ingest property test at 500 examples
	ACCESS_AUDIT_HYPOTHESIS=thorough $(BIN)/python -m pytest -m ''

demo: venv ## Generate a synthetic force, run the nightly job over it, show the top flags
	rm -rf $(DEMO)
	$(BIN)/access-audit generate $(DEMO)/drops --staff $(STAFF) --days $(DAYS) --seed $(SEED) --start $(START) --no-progress
	$(BIN)/access-audit --home $(DEMO)/home nightly --no-progress $(DEMO)/drops/*/ > $(DEMO)/nightly.txt
	tail -n 16 $(DEMO)/nightly.txt
	$(BIN)/access-audit --home $(DEMO)/home flag --since $(START) --limit 10
	@echo "Next: access-audit --home $(DEMO)/home explain FLAG_ID   (README: 'The morning: working the queue')"

notebooks: venv ## Run notebooks/ against the demo home; executed copies, owner-only, in demo/notebooks
	@test -d $(DEMO)/home || { echo 'make notebooks: no demo home in $(DEMO)/home; run make demo first' >&2; exit 2; }
	$(BIN)/python -m access_audit.notebooks --home $(DEMO)/home --out $(DEMO)/notebooks \
	  --truth $(DEMO)/drops/truth.csv notebooks/*.ipynb

bench: venv ## Run the benchmark scripts (not tests; they print timings; several minutes)
	$(BIN)/python benchmarks/bench_ingest.py --staff 3000 --days 30
	$(BIN)/python benchmarks/bench_score.py --staff 10000 --days 70
	$(BIN)/python benchmarks/bench_night.py --staff 10000 --days 31
	$(BIN)/python benchmarks/learning_from_decisions.py --staff 3000 --weeks 6 --reviewed-weeks 3
	$(BIN)/python benchmarks/bench_verify.py --staff 1000 --days 14

evaluate: venv ## Northshire and our own force, nightly per drop, evaluated side by side (minutes)
	$(BIN)/python benchmarks/evaluate_forces.py --northshire $(NORTHSHIRE) $(EVALUATE_ARGS)

clean: ## Remove the virtual environment, caches and demo data
	rm -rf $(VENV) $(DEMO) .mypy_cache .ruff_cache .pytest_cache
