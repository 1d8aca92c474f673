"""What the README states as a number is what the code does, and every command explains itself
in ``--help``: a newcomer reads the README and the help first."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np
import pytest

from rerinv.cli import build_parser
from rerinv.config import Config
from rerinv.engines.ngspice_lib import KLU_FIRST_VERSION
from rerinv.matrices import load_matrix_set

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _commands() -> dict[str, argparse.ArgumentParser]:
    (sub,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def _default(command: str, dest: str):
    (action,) = [a for a in _commands()[command]._actions if a.dest == dest]
    return action.default


@pytest.mark.parametrize("name", sorted(_commands()))
def test_every_command_has_a_description(name):
    parser = _commands()[name]
    assert parser.description and len(parser.description) > 40, f"rerinv {name} --help"


def test_stated_defaults_are_the_code_defaults():
    sim, array = Config().simulation, Config().array
    assert f"[--target-bits {sim.target_bits:g}]" in README
    assert f"[--max-passes {sim.max_passes}]" in README
    assert f"`array.max_size` ({array.max_size})" in README
    trials, sizes = _default("verify", "trials"), _default("verify", "sizes")
    assert f"rerinv verify [--trials {trials}] [--n {' '.join(map(str, sizes))}]" in README
    assert f"(N = {sizes[0]} and {sizes[1]}, {trials} trials each)" in README
    assert f"ngspice >= {KLU_FIRST_VERSION}" in README


def _round(value: float) -> str:
    mantissa, exponent = f"{value:.1e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def test_stated_factor_conditions_are_the_shipped_factors():
    factors = load_matrix_set(ROOT / "tests/data/kfac_factors/digits_mlp512-256_damping1e-2.h5")
    wide = [(m.shape[0], np.linalg.cond(m)) for _, m, _ in factors if m.shape[0] >= 256]
    sizes, conds = [n for n, _ in wide], [c for _, c in wide]
    claim = re.search(r"real training \((\d+)-(\d+) wide, cond ([\d.e]+)-([\d.e]+),", README)
    assert claim, "the README's sentence on the captured factors changed"
    assert (int(claim[1]), int(claim[2])) == (min(sizes), max(sizes))
    assert (claim[3], claim[4]) == (_round(min(conds)), _round(max(conds)))
    stated_256 = re.search(
        r"the 256-wide one captured from training .*?\(cond ([\d.e]+),", README, re.S
    )
    assert stated_256 and stated_256[1] in {_round(c) for n, c in wide if n == 256}
