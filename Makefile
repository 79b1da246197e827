# Two commands do everything on a fresh machine (see README.md):
#   make run    create .venv if missing, install, run the default workflow (config.yaml) and its report
#   make test   same set-up, then the test suite
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= all
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: setup run test lint format clean

setup: $(STAMP)

# One pip resolution of every pinned dependency (bpy 5.0.1 needs numpy<2; separate pip calls would
# silently upgrade numpy and break bpy), then `pip check` and an import smoke test.
$(STAMP): pyproject.toml
	@tools/check-system-libraries.sh
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: bpy 5.0.1 needs Python 3.11 (set PYTHON=...)" >&2; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "Installing the pinned dependencies into $(VENV) (one pip resolution; a few minutes the first time)..."
	$(BIN)/python -m pip install --quiet --quiet --editable '.[dev]'
	$(BIN)/python -m pip check
	$(BIN)/python -c "import bpy, torch, snakemake, sie.cli; print('bpy', bpy.app.version_string, '| torch', torch.__version__)"
	@touch $@

# The default workflow (config.yaml) end to end, then the HTML report of what it produced.
run: setup
	$(BIN)/snakemake --cores $(CORES)
	$(BIN)/snakemake --report results/report.html

test: setup
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/snakefmt --check Snakefile workflow
	$(BIN)/snakemake --lint --configfile configs/test.yaml

format: setup
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench
	$(BIN)/snakefmt Snakefile workflow

clean:
	rm -rf .snakemake results/* && touch results/.gitkeep
