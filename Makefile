# Every target bootstraps .venv itself: a fresh machine needs only Python 3.11+ and make.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP_BASE := $(VENV)/.installed-base
STAMP_DEV := $(VENV)/.installed-dev
PYTEST_ARGS ?=

.PHONY: demo test lint format bench docs clean help

help:
	@echo "make demo   - install mloop into .venv and run 'mloop demo'"
	@echo "make test   - install mloop[dev] into .venv and run the whole test suite"
	@echo "make lint   - ruff (lint + format check), mypy --strict, import-linter"
	@echo "make bench  - benchmarks against the peers (MLflow, ...), writes bench/RESULTS.md"
	@echo "make docs   - regenerate docs/cli.md from the CLI"

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "mloop needs Python >= 3.11; set PYTHON=/path/to/python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP_BASE): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(STAMP_DEV): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@ $(STAMP_BASE)

demo: $(STAMP_BASE)
	$(BIN)/mloop demo

test: $(STAMP_DEV)
	$(BIN)/python -m pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

lint: $(STAMP_DEV)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(STAMP_DEV)
	$(BIN)/ruff check --fix src tests bench
	$(BIN)/ruff format src tests bench

bench: $(STAMP_DEV)
	$(BIN)/python bench/run.py $(BENCH_ARGS)

docs: $(STAMP_DEV)
	$(BIN)/python -m mloop.cli._docs > docs/cli.md

clean:
	rm -rf $(VENV) .venv-bench build dist .mypy_cache .ruff_cache .pytest_cache
