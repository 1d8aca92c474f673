"""An INV crossbar that must deliver 16-bit solutions within 8 passes at every corner of its
op-amps, cells and wires: a 16 x 16 K-FAC-like factor on the default preset's crossbar, solved
in ngspice.

The corners stay where this design can meet the spec: with 3 % programming error, or a 1 mV
op-amp offset, the residual VMM itself is that far off and the loop converges to the wrong
answer (status ``unverified``, about 5-8 bits); try it with ``--rerinv-set device.sigma_rel=0.03``.

Run: ``pytest circuits/testbenches``; with transistor-level amplifiers at their process
corners: ``pytest --rerinv-preset sky130`` and ``rerinv_corners("tt", "ss", "ff")``.
"""

import pytest

from rerinv.matrices import wishart_factor
from rerinv.testing import assert_bits

#: Corners of a macro-model design: named sets of configuration overrides.
CORNERS = {
    "typical": [],
    "slow": ["opamp.gain=3e4", "opamp.gbw=50e6", "opamp.offset=1e-4", "device.sigma_rel=0.01"],
    "fast": ["opamp.gain=3e5", "opamp.gbw=200e6", "opamp.offset=-1e-4", "device.sigma_rel=0.003"],
    "wires": ["array.r_wire=1.73"],  # 40-nm 1T1R segments
}


@pytest.mark.rerinv_corners(**CORNERS)
def test_inv_crossbar_meets_16_bits(rerinv):
    a = wishart_factor(16, seed=7)
    b = rerinv.rng.standard_normal(16)
    result = rerinv.solve(a, b, target_bits=16, max_passes=8)
    assert_bits(result, 16)
