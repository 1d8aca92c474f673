"""Settling of an INV loop under mismatch: with 1 % mismatch between the two resistors of
every inverter stage and 2 % programming error, the closed loop of an 8 x 8 crossbar must
settle to half an ADC step within 600 ns (100 MHz op-amps) on at least 90 % of the chips.
ngspice integrates the transient of every trial.

With transistor-level amplifiers and their device mismatch (every trial another chip):
``pytest --rerinv-preset sky130 --rerinv-set opamp.mismatch=true``.
"""

import pytest

from rerinv.matrices import wishart_factor
from rerinv.testing import assert_settles


@pytest.mark.rerinv_yield(0.9, trials=20)
@pytest.mark.rerinv_config("array.inverter_mismatch=0.01", "device.sigma_rel=0.02")
def test_inv_loop_settles_within_600_ns(rerinv, rerinv_trial):
    a = wishart_factor(8, seed=5)
    settled = rerinv.settle("inv", a)
    assert_settles(settled, within=600e-9)
