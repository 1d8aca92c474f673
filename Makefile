# Two commands on a fresh Debian machine: `make demo` and `make test`.
# Each bootstraps first: ngspice from apt when missing, a .venv, the package in editable mode.
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
	$(BIN)/ruff check rerinv tests benchmarks
	$(BIN)/ruff format --check rerinv tests benchmarks

bench: setup
	$(BIN)/python benchmarks/engine.py

setup: ngspice $(STAMP)

# ngspice + its shared library (libngspice.so.0) from Debian, only when missing.
ngspice:
	@if ! command -v ngspice >/dev/null 2>&1 || ! ls /usr/lib/*/libngspice.so* /usr/lib/libngspice.so* >/dev/null 2>&1; then \
		echo "installing ngspice from Debian packages"; \
		SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		$$SUDO apt-get update && $$SUDO apt-get install -y ngspice libngspice0; \
	fi

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) .pytest_cache results
