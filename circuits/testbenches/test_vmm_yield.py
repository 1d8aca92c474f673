"""Accuracy yield of a VMM tile under programming error: a 32 x 32 tile whose cells are
programmed with 2 % proportional error must read ``A^T v`` within 1.5 ADC steps of the exact
product (of the DAC-quantised input) on at least 90 % of the chips. Every trial is another
chip (another programming draw) and another input.

Run: ``pytest circuits/testbenches --rerinv-trials 200 -n 4`` for a tighter interval.
"""

import pytest

from rerinv.matrices import wishart_factor
from rerinv.testing import assert_matches_reference


@pytest.mark.rerinv_yield(0.9, trials=40)
@pytest.mark.rerinv_config("device.sigma_rel=0.02")
def test_vmm_tile_reads_within_one_and_a_half_steps(rerinv, rerinv_trial):
    a = wishart_factor(32, seed=3)  # the tile's weights: the same on every chip
    v = rerinv.rng.uniform(-1.0, 1.0, 32)
    read = rerinv.vmm(a, v)
    assert_matches_reference(read, within=1.5)
